import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore, migrate, schemaVersion } from '../../bot/sqlite.store.js';
import { MIGRATIONS, type Migration } from '../../bot/sqlite.migrations.js';
import type { NewJob, Reservation } from '../../bot/store.js';

const job = (id: string, extra: Partial<NewJob> = {}): NewJob => ({
  id, requestId: `r-${id}`, platform: 'discord', requesterId: 'u1', spaceId: 's1', channelId: 'c1', kind: 'imagine',
  settings: { options: { prompt: 'a red circle' } }, createdAt: 1, ...extra,
});
const reservation = (units: number, limit: number): Reservation => ({ spaceId: 's1', userId: 'u1', kind: 'imagine', day: '2025-06-01', units, limit });

describe('SqliteStore migrations', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-store-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a fresh database at the latest version in WAL mode', async () => {
    const store = new SqliteStore(join(dir, 'fresh.sqlite'));
    expect(schemaVersion(store.db)).toBe(MIGRATIONS[MIGRATIONS.length - 1]!.version);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
    await store.close();
  });

  it('re-opens an existing database without re-applying migrations and keeps its data', async () => {
    const path = join(dir, 'reopen.sqlite');
    const first = new SqliteStore(path);
    await first.setLimit('s1', { kind: 'default' }, 'imagine', 7, 'mod', 1);
    await first.acceptJob(job('j1'), reservation(2, 10));
    await first.close();
    const second = new SqliteStore(path);
    expect(await second.getLimit('s1', { kind: 'default' }, 'imagine')).toBe(7);
    expect((await second.getJob('j1'))?.settings).toEqual({ options: { prompt: 'a red circle' } });
    expect(second.db.prepare('SELECT COUNT(*) AS n FROM schema_version').get()).toEqual({ n: MIGRATIONS.length });
    await second.close();
  });

  it('applies a later numbered migration to an existing database', async () => {
    const path = join(dir, 'upgrade.sqlite');
    await new SqliteStore(path).close();
    const next: Migration = { version: MIGRATIONS.length + 1, name: 'add a column', sql: 'ALTER TABLE jobs ADD COLUMN note TEXT' };
    const store = new SqliteStore(path, { migrations: [...MIGRATIONS, next] });
    expect(schemaVersion(store.db)).toBe(next.version);
    await store.close();
  });

  it('upgrades a version-1 database: its settled jobs count as answered, its unfinished ones do not', async () => {
    const path = join(dir, 'answered.sqlite');
    // a database written by the previous release: version 1 only, one job answered and one still running
    const old = new Database(path);
    migrate(old, MIGRATIONS.slice(0, 1));
    const insert = old.prepare(`INSERT INTO jobs (id, request_id, platform, requester_id, space_id, channel_id, kind, settings, state, created_at, updated_at)
      VALUES (?, ?, 'discord', 'u1', 's1', 'c1', 'imagine', '{}', ?, ?, ?)`);
    insert.run('done', 'r-done', 'succeeded', 1, 3);
    insert.run('running', 'r-running', 'running', 4, 4);
    old.close();
    const store = new SqliteStore(path);
    expect(await store.getJob('done')).toMatchObject({ state: 'succeeded', answeredAt: 3 });
    expect((await store.getJob('running'))?.answeredAt).toBeUndefined();
    expect(await store.unansweredJobs(0)).toEqual([]);
    await store.close();
  });

  it('rolls a failing migration back completely', async () => {
    const path = join(dir, 'broken.sqlite');
    const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    const broken: Migration = { version: latest + 1, name: 'half broken', sql: 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);' };
    expect(() => new SqliteStore(path, { migrations: [...MIGRATIONS, broken] })).toThrow(/nowhere/);
    const store = new SqliteStore(path);
    expect(schemaVersion(store.db)).toBe(latest);
    expect(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    await store.close();
  });

  it('refuses a database from a newer pictalk with config.invalid', async () => {
    const path = join(dir, 'newer.sqlite');
    const future = new SqliteStore(path, { migrations: [...MIGRATIONS, { version: 99, name: 'future', sql: 'SELECT 1' }] });
    await future.close();
    expect(() => new SqliteStore(path)).toThrow(expect.objectContaining({ code: 'config.invalid' }));
  });
});
