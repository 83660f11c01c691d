/**
 * The private servers the tests start (tests/helpers): each on a free loopback port in a temporary folder, no system
 * service, and nothing left running or on disk after `stop`, nor after their owner dies without calling it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { redisCommand, startRedis } from './redis.server.js';
import { startPostgres } from './postgres.server.js';
import { until } from './until.js';

const refused = (port: number): Promise<boolean> => redisCommand(port, 'PING').then(() => false, () => true);

describe('a private Redis', () => {
  it('answers on loopback, keeps what was written across a restart, and leaves nothing behind', async () => {
    const redis = await startRedis();
    try {
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}/0`);
      expect(await redisCommand(redis.port, 'SET', 'pictalk:test', 'kept')).toBe('OK');
      expect(await redisCommand(redis.port, 'CONFIG', 'GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      await redis.halt();
      expect(await refused(redis.port)).toBe(true);
      await redis.start();
      expect(await redisCommand(redis.port, 'GET', 'pictalk:test')).toBe('kept');
    } finally {
      await redis.stop();
    }
    expect(await refused(redis.port)).toBe(true);
    expect(redis.dir.startsWith(tmpdir())).toBe(true);
    expect(existsSync(redis.dir)).toBe(false);
  }, 30_000);
});

describe('a private PostgreSQL', () => {
  it('creates databases on loopback, keeps them across a restart, and leaves nothing behind', async () => {
    const server = await startPostgres();
    let url = '';
    try {
      url = await server.createDatabase('servers_test');
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query('CREATE TABLE kept (x INTEGER); INSERT INTO kept VALUES (2)');
      await client.end();
      await server.halt();
      const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      probe.on('error', () => undefined);
      await expect(probe.connect()).rejects.toThrow();
      await server.start();
      const again = new pg.Client({ connectionString: url });
      await again.connect();
      expect((await again.query('SELECT x FROM kept')).rows).toEqual([{ x: 2 }]);
      await again.end();
    } finally {
      await server.stop();
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow();
    expect(server.dir.startsWith(tmpdir())).toBe(true);
    expect(existsSync(server.dir)).toBe(false);
  }, 120_000);
});

describe('servers whose owner dies', () => {
  it('stop, and their folders go, when the process that started them is killed', async () => {
    const root = process.cwd();
    const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    const script = `const { startRedis } = await import(${JSON.stringify(pathToFileURL(join(root, 'tests/helpers/redis.server.ts')).href)});
const { startPostgres } = await import(${JSON.stringify(pathToFileURL(join(root, 'tests/helpers/postgres.server.ts')).href)});
const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
process.stdout.write(JSON.stringify({ redis: [redis.port, redis.dir], postgres: [postgres.port, postgres.dir] }) + '\\n');
setInterval(() => undefined, 1000);`;
    const owner = spawn(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    owner.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    owner.stderr.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    // both servers start (initdb takes a while on a busy machine); a probe that cannot answer rejects, never hangs
    await until(() => out.includes('\n') || owner.exitCode !== null, 90_000, 50);
    if (!out.includes('\n')) throw new Error(`the owner did not start its servers: ${out.slice(-2000)}`);
    const started = JSON.parse(out.split('\n')[0]!) as { redis: [number, string]; postgres: [number, string] };
    const pgRefused = async (): Promise<boolean> => {
      const client = new pg.Client({ connectionString: `postgres://pictalk@127.0.0.1:${started.postgres[0]}/postgres`, connectionTimeoutMillis: 1000 });
      client.on('error', () => undefined);
      try { await client.connect(); await client.end(); return false; } catch { return true; }
    };
    expect(await refused(started.redis[0])).toBe(false);
    expect(await pgRefused()).toBe(false);

    const exited = owner.exitCode !== null || owner.signalCode !== null ? Promise.resolve() : new Promise((resolve) => owner.once('exit', resolve));
    owner.kill('SIGKILL');
    await exited;
    const gone = async (): Promise<boolean> => (await refused(started.redis[0])) && (await pgRefused())
      && !existsSync(started.redis[1]) && !existsSync(started.postgres[1]);
    const ok = await until(gone, 30_000, 100);
    expect({ redisRefused: await refused(started.redis[0]), postgresRefused: await pgRefused(),
      redisDir: existsSync(started.redis[1]), postgresDir: existsSync(started.postgres[1]) })
      .toEqual({ redisRefused: true, postgresRefused: true, redisDir: false, postgresDir: false });
    expect(ok).toBe(true);
  }, 180_000);
});
