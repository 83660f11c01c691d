/**
 * pictalk processes for the cluster load tests: `pictalk start --role front|worker` from the TypeScript sources, each
 * in a working folder of the test's, on the test's Redis, with no platform setting of the environment leaking in.
 * `launch` resolves when the process says it is ready; `stopAll` stops every one still running (SIGTERM, then SIGKILL
 * after 15 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = process.cwd();
const MAIN = pathToFileURL(join(ROOT, 'adapters/main.ts')).href;
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
/** Each process ends with the test's process, whatever ends it (scripts/exit-with-owner.mjs). */
const OWNED = pathToFileURL(join(ROOT, 'scripts/exit-with-owner.mjs')).href;
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(DISCORD_|SLACK_|PICTALK_)/.test(key)));
/** What a worker, a Slack front and a Discord front print once they take work. */
const READY = /worker ready|Slack adapter started|Discord adapter started/;

export interface Proc { name: string; child: ChildProcess; log: string[] }

export class Processes {
  readonly all: Proc[] = [];

  constructor(private readonly options: { dir: () => string; redisUrl: () => string }) {}

  launch(name: string, role: 'front' | 'worker', env: Record<string, string>): Promise<Proc> {
    const script = `import(${JSON.stringify(MAIN)}).then((m) => m.start(['--role', '${role}'])).then((code) => process.exit(code));`;
    const child = spawn(process.execPath, ['--import', OWNED, '--import', TSX, '--input-type=module', '-e', script], {
      cwd: this.options.dir(),
      env: { ...CLEAN_ENV, ...env, PICTALK_REDIS_URL: this.options.redisUrl(), PICTALK_WORKER_LOCK_MS: '1500' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const proc: Proc = { name, child, log: [] };
    this.all.push(proc);
    return new Promise((ready, fail) => {
      const onData = (chunk: Buffer): void => {
        proc.log.push(chunk.toString());
        if (READY.test(chunk.toString())) ready(proc);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => fail(new Error(`${name} exited with ${code}:\n${proc.log.join('')}`)));
    });
  }

  /** The lines of each process's log that say something went wrong (and `also`), for a failing test's output. */
  print(also?: RegExp, last = 30): void {
    const pattern = also ? new RegExp(`warn|error|fail|${also.source}`, 'i') : /warn|error|fail/i;
    for (const proc of this.all) console.log(`--- ${proc.name}\n${proc.log.join('').split('\n').filter((line) => pattern.test(line)).slice(-last).join('\n')}`);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.map(async ({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }));
  }
}

/** Ask `probe` every 100 ms until it says yes (an error, a server restarting, counts as no); throws after `ms`. */
export async function waitUntil(probe: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // the server is restarting: ask again
    }
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
