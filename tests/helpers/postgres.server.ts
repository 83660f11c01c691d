/**
 * A private PostgreSQL for tests: its own cluster in a temporary folder (initdb), on a free loopback port, no system
 * service; `stop()` shuts it down and removes the folder, and a test process that dies without calling it takes its
 * server and folder with it (scripts/owned.server.ts: the server runs as this process's child, not daemonised by
 * pg_ctl, which would outlive it). Debian's `postgresql` package provides the binaries
 * (scripts/setup.sh installs it); PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
 * user the package creates. Missing binaries fail the test with a message: the tests skip nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

import { restartable, startOwned } from '../../scripts/owned.server.js';
import { freePort } from '../../scripts/redis.server.js';

export { freePort };

export interface PostgresServer {
  port: number;
  /** Its temporary folder (data, socket, log); gone after `stop`. */
  dir: string;
  /** A URL of a fresh, empty database on this server (each call creates another). */
  createDatabase(name?: string, options?: { logStatements?: boolean }): Promise<string>;
  /** Stop the server and remove its folder. */
  stop(): Promise<void>;
  /** Stop the server (its connections cut, its data kept); `start` brings it back on the same port. */
  halt(): Promise<void>;
  start(): Promise<void>;
}

/** The folder of initdb and postgres: PICTALK_PG_BIN, Debian's newest /usr/lib/postgresql/N/bin, or PATH. */
function binDir(): string {
  if (process.env.PICTALK_PG_BIN) return process.env.PICTALK_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const found = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found.replace(/\/initdb$/, '');
  throw new Error('PostgreSQL is not installed (no initdb): run scripts/setup.sh, which installs Debian\'s postgresql package');
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  // root may not run PostgreSQL: the package's `postgres` user runs it, owning the folder
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const run = (tool: string, args: string[]): void => {
    const [command, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    const result = spawnSync(command, argv, { encoding: 'utf8', timeout: 60_000 });
    if (result.status !== 0) {
      const serverLog = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
      throw new Error(`${tool} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}\n${serverLog}`);
    }
  };
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'pictalk', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  const admin = `postgres://pictalk@127.0.0.1:${port}/postgres`;
  const options = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
    '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'];
  // INT: PostgreSQL's "fast" shutdown (connections cut, a clean stop), also when this process dies without stopping it
  const launch = () => {
    const output = openSync(log, 'a');
    try {
      return startOwned(join(bin, 'postgres'), options, { stopSignal: 'INT', dir, output, ...(asRoot ? { user: 'postgres' } : {}) });
    } finally {
      closeSync(output);
    }
  };
  const answers = async (): Promise<boolean> => {
    const client = new pg.Client({ connectionString: admin });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return true;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const { start, halt } = restartable(`postgres on port ${port}`, launch, answers, { timeoutMs: 60_000, everyMs: 50, log });
  await start();
  let databases = 0;
  return {
    port,
    dir,
    async createDatabase(name = `test_${(databases += 1)}_${process.pid}`, options: { logStatements?: boolean } = {}) {
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
        // every statement of every session on it goes to the server log (a measure counts them)
        if (options.logStatements) await client.query(`ALTER DATABASE ${name} SET log_statement = 'all'`);
      } finally {
        await client.end();
      }
      return `postgres://pictalk@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    halt,
    start,
  };
}
