/**
 * The BotStore contract on a real PostgreSQL (a private server in a temporary folder; tests/helpers/postgres.server.ts),
 * and what only PostgreSQL has to show: migrations that several processes start at once, and an unreachable server.
 */
import pg from 'pg';
import { PostgresStore, migratePostgres } from '../../bot/postgres.store.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import { PG_MIGRATIONS } from '../../bot/postgres.migrations.js';
import { freePort, startPostgres, type PostgresServer } from '../helpers/postgres.server.js';
import { storeContract } from './store.contract.js';

let server: PostgresServer;
beforeAll(async () => { server = await startPostgres(); }, 120_000);
afterAll(async () => { await server?.stop(); });

storeContract('PostgreSQL', async () => {
  const url = await server.createDatabase();
  return { store: await PostgresStore.open(url), another: () => PostgresStore.open(url) };
});

describe('PostgreSQL migrations and faults', () => {
  it('applies each migration once when several processes start at once, and again is a no-op', async () => {
    const url = await server.createDatabase();
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: url, max: 2 }));
    try {
      const applied = await Promise.all(pools.map((pool) => migratePostgres(pool)));
      expect(applied.flat().sort()).toEqual(PG_MIGRATIONS.map((m) => m.version));
      expect(await migratePostgres(pools[0]!)).toEqual([]);
      const rows = (await pools[0]!.query('SELECT version FROM schema_version ORDER BY version')).rows;
      expect(rows.map((r: { version: number }) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('rolls a failing migration back completely and refuses a database from a newer pictalk', async () => {
    const url = await server.createDatabase();
    const broken = { version: PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version + 1, name: 'half broken', sql: 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);' };
    await expect(PostgresStore.open(url, { migrations: [...PG_MIGRATIONS, broken] })).rejects.toThrow(/nowhere/);
    const store = await PostgresStore.open(url);
    expect((await store.pool.query("SELECT to_regclass('half') AS t")).rows[0].t).toBeNull();
    await store.close();
    await (await PostgresStore.open(url, { migrations: [...PG_MIGRATIONS, { version: 99, name: 'future', sql: 'SELECT 1' }] })).close();
    await expect(PostgresStore.open(url)).rejects.toMatchObject({ code: 'config.invalid', message: expect.stringMatching(/schema version 99/) });
  });

  it('has the tables and columns of the SQLite schema (the two dialects are written side by side)', async () => {
    const store = await PostgresStore.open(await server.createDatabase());
    const sqlite = new SqliteStore(':memory:');
    try {
      const pgColumns = (await store.pool.query<{ table_name: string; column_name: string }>(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position")).rows
        .map((r) => `${r.table_name}.${r.column_name}`);
      const tables = (sqlite.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
      const sqliteColumns = tables.flatMap((table) => (sqlite.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => `${table}.${c.name}`));
      expect(pgColumns).toEqual(sqliteColumns);
    } finally {
      await store.close();
      await sqlite.close();
    }
  });

  it('says the database cannot be reached, naming where, without the password', async () => {
    const port = await freePort();
    await expect(PostgresStore.open(`postgres://pictalk:secret@127.0.0.1:${port}/nowhere`, { connectTimeoutMs: 2000 }))
      .rejects.toMatchObject({ code: 'store.unavailable', message: expect.stringContaining(`127.0.0.1:${port}/nowhere`) });
    await expect(PostgresStore.open(`postgres://pictalk:secret@127.0.0.1:${port}/nowhere`, { connectTimeoutMs: 2000 }))
      .rejects.toMatchObject({ message: expect.not.stringContaining('secret') });
  });
});
