/**
 * The private servers the tests start (tests/helpers): each on a free loopback port in a temporary folder, no system
 * service, and nothing left running or on disk after `stop`.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { redisCommand, startRedis } from './redis.server.js';
import { startPostgres } from './postgres.server.js';

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
      server.halt();
      const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      probe.on('error', () => undefined);
      await expect(probe.connect()).rejects.toThrow();
      server.start();
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
