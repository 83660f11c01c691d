/**
 * A server process (the private Redis and PostgreSQL of the tests and the cluster bench) that lives no longer than the
 * process that started it. The server runs under a small shell that holds a pipe from its owner: when the owner
 * closes it (`halt`) or dies in any way (a test worker killed, Ctrl-C in the terminal, an out-of-memory kill), the
 * shell stops the server with the server's own shutdown signal; when the owner died, it also removes the server's
 * folder once the server is gone. A server that stops by itself ends the shell too, so its owner sees it at once.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/**
 * $1 the shutdown signal, $2 the folder, the rest the server's command; stdin: the owner's pipe ("halt" keeps the
 * folder). A background list's stdin is /dev/null unless redirected, so the watcher gets the pipe through fd 3.
 */
const WRAPPER = `sig=$1 dir=$2
shift 2
exec 3<&0
"$@" 3<&- &
server=$!
(
  last=
  while IFS= read -r line; do last=$line; done
  kill -s "$sig" "$server" 2>/dev/null
  if [ "$last" != halt ]; then
    while kill -0 "$server" 2>/dev/null; do sleep 0.1; done
    rm -rf "$dir"
  fi
) <&3 &
exec 3<&-
wait "$server"`;

export interface OwnedServerOptions {
  /** How the server shuts down cleanly and promptly (Redis: TERM, flushing its append-only file; PostgreSQL: INT, "fast"). */
  stopSignal: 'INT' | 'TERM';
  /** The server's folder, removed when the owner dies without stopping it. */
  dir: string;
  /** Where the server's stdout and stderr go (an open file descriptor), else nowhere. */
  output?: number;
  /** Run the shell and the server as this user (PostgreSQL refuses to run as root). */
  user?: string;
}

export interface OwnedServer {
  readonly process: ChildProcess;
  /** Whether the server has stopped (halted, or by itself). */
  readonly exited: boolean;
  /** Stop the server and wait for it; its folder stays. */
  halt(): Promise<void>;
}

export function startOwned(command: string, args: readonly string[], options: OwnedServerOptions): OwnedServer {
  const shell = ['sh', '-c', WRAPPER, 'sh', options.stopSignal, options.dir, command, ...args];
  const [file, argv] = options.user ? ['runuser', ['-u', options.user, '--', ...shell]] : [shell[0]!, shell.slice(1)];
  const out = options.output ?? 'ignore';
  const child = spawn(file, argv, { stdio: ['pipe', out, out] as StdioOptions });
  child.stdin!.on('error', () => undefined);   // the shell may be gone already
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let done = false;
  void exited.then(() => { done = true; });
  return {
    process: child,
    get exited() { return done || child.exitCode !== null || child.signalCode !== null; },
    async halt() {
      if (!child.stdin!.writableEnded) child.stdin!.end('halt\n');
      await exited;
    },
  };
}

export interface RestartableServer {
  /** Start the server and wait until it answers; a server that never does is stopped, and its log's end thrown. */
  start(): Promise<void>;
  /** Stop the server and wait for it (its folder stays); nothing when it is not running. */
  halt(): Promise<void>;
}

/**
 * `launch` (a `startOwned`) made restartable: `start` polls `ready` every `everyMs` for up to `timeoutMs`, giving up
 * early when the server stops by itself.
 */
export function restartable(name: string, launch: () => OwnedServer, ready: () => Promise<boolean>,
  wait: { timeoutMs: number; everyMs: number; log: string }): RestartableServer {
  let running: OwnedServer | undefined;
  const halt = async (): Promise<void> => {
    const server = running;
    running = undefined;
    await server?.halt();
  };
  const start = async (): Promise<void> => {
    const server = running = launch();
    for (const until = Date.now() + wait.timeoutMs; Date.now() < until && !server.exited;) {
      if (await ready().catch(() => false)) return;
      await new Promise((resolve) => setTimeout(resolve, wait.everyMs));
    }
    await halt();
    throw new Error(`${name} did not start: ${existsSync(wait.log) ? readFileSync(wait.log, 'utf8').slice(-2000) : 'no log'}`);
  };
  return { start, halt };
}
