/**
 * A private Redis for the tests and the cluster bench: its own server process in a temporary folder, on a free loopback port, with the
 * append-only file on (so a restart keeps what was written, as an operator's Redis would); `stop()` shuts it down and
 * removes the folder, and a process that dies without calling it takes its server and folder with it
 * (owned.server.ts). Debian's `redis-server` package provides the binary (scripts/setup.sh installs it); a missing
 * binary fails the test with a message: the tests skip nothing. `redisCommand` speaks RESP over a socket, enough for
 * a test to look inside without a client library.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restartable, startOwned } from './owned.server.js';

export interface RedisServer {
  port: number;
  /** Its temporary folder (append-only file, log); gone after `stop`. */
  dir: string;
  url: string;
  /** Stop the server, keeping its data (as a crash or an operator would); `start` brings it back on the same port. */
  halt(): Promise<void>;
  start(): Promise<void>;
  /** Stop the server and remove its folder. */
  stop(): Promise<void>;
}

function binary(): string {
  const found = process.env.PICTALK_REDIS_SERVER ?? spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!found || !existsSync(found)) {
    throw new Error('Redis is not installed (no redis-server): run scripts/setup.sh, which installs Debian\'s redis-server package');
  }
  return found;
}

/** A free loopback TCP port (the kernel's choice). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

type Reply = string | number | null | Reply[];

/**
 * One command, its reply (RESP 2: simple strings, errors thrown, integers, bulk strings, arrays). A connection that
 * closes before a whole reply (a server shutting down) or stays silent for five seconds rejects: a probe never hangs.
 */
export async function redisCommand(port: number, ...args: string[]): Promise<Reply> {
  const timeoutMs = 5000;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      fn();
    };
    socket.setTimeout(timeoutMs, () => settle(() => reject(new Error(`Redis on port ${port} did not answer ${args[0]} within ${timeoutMs} ms`))));
    socket.once('error', (error) => settle(() => reject(error)));
    socket.once('close', () => settle(() => reject(new Error(`Redis on port ${port} closed the connection before answering ${args[0]}`))));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parse(buffer, 0);
      if (parsed === undefined) return;
      settle(() => (parsed.value instanceof Error ? reject(parsed.value) : resolve(parsed.value as Reply)));
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

function parse(buffer: Buffer, at: number): { value: Reply | Error; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', at);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[at]!);
  const line = buffer.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+': return { value: line, end: next };
    case '-': return { value: new Error(line), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: Reply[] = [];
      let position = next;
      for (let i = 0; i < count; i += 1) {
        const item = parse(buffer, position);
        if (item === undefined) return undefined;
        if (item.value instanceof Error) return item;
        items.push(item.value);
        position = item.end;
      }
      return { value: items, end: position };
    }
    default: return { value: new Error(`unexpected RESP type ${type}`), end: next };
  }
}

export async function startRedis(): Promise<RedisServer> {
  const server = binary();
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-redis-'));
  const port = await freePort();
  const log = join(dir, 'server.log');
  // stopped with TERM (Redis flushes its append-only file and exits), also when this process dies without stopping it
  const { start, halt } = restartable(`redis-server on port ${port}`, () => startOwned(server, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', log, '--daemonize', 'no',
    '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--protected-mode', 'yes',
  ], { stopSignal: 'TERM', dir }), async () => (await redisCommand(port, 'PING')) === 'PONG', { timeoutMs: 10_000, everyMs: 20, log });

  await start();
  return {
    port,
    dir,
    url: `redis://127.0.0.1:${port}/0`,
    halt,
    start,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
