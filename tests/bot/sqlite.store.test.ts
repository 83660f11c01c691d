import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore, schemaVersion } from '../../bot/sqlite.store.js';
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

  it('creates a fresh database at the latest version in WAL mode', () => {
    const store = new SqliteStore(join(dir, 'fresh.sqlite'));
    expect(schemaVersion(store.db)).toBe(MIGRATIONS[MIGRATIONS.length - 1]!.version);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
    store.close();
  });

  it('re-opens an existing database without re-applying migrations and keeps its data', () => {
    const path = join(dir, 'reopen.sqlite');
    const first = new SqliteStore(path);
    first.setLimit('s1', { kind: 'default' }, 'imagine', 7, 'mod', 1);
    first.acceptJob(job('j1'), reservation(2, 10));
    first.close();
    const second = new SqliteStore(path);
    expect(second.getLimit('s1', { kind: 'default' }, 'imagine')).toBe(7);
    expect(second.getJob('j1')?.settings).toEqual({ options: { prompt: 'a red circle' } });
    expect(second.db.prepare('SELECT COUNT(*) AS n FROM schema_version').get()).toEqual({ n: MIGRATIONS.length });
    second.close();
  });

  it('applies a later numbered migration to an existing database', () => {
    const path = join(dir, 'upgrade.sqlite');
    new SqliteStore(path).close();
    const next: Migration = { version: MIGRATIONS.length + 1, name: 'add a column', sql: 'ALTER TABLE jobs ADD COLUMN note TEXT' };
    const store = new SqliteStore(path, { migrations: [...MIGRATIONS, next] });
    expect(schemaVersion(store.db)).toBe(next.version);
    store.close();
  });

  it('rolls a failing migration back completely', () => {
    const path = join(dir, 'broken.sqlite');
    const broken: Migration = { version: 2, name: 'half broken', sql: 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);' };
    expect(() => new SqliteStore(path, { migrations: [...MIGRATIONS, broken] })).toThrow(/nowhere/);
    const store = new SqliteStore(path);
    expect(schemaVersion(store.db)).toBe(1);
    expect(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    store.close();
  });

  it('refuses a database from a newer pictalk with config.invalid', () => {
    const path = join(dir, 'newer.sqlite');
    const future = new SqliteStore(path, { migrations: [...MIGRATIONS, { version: 99, name: 'future', sql: 'SELECT 1' }] });
    future.close();
    expect(() => new SqliteStore(path)).toThrow(expect.objectContaining({ code: 'config.invalid' }));
  });
});

describe('SqliteStore ledger', () => {
  it('reserves only within the limit and writes nothing when it refuses', () => {
    const store = new SqliteStore(':memory:');
    store.acceptJob(job('a'), reservation(3, 4));
    expect(() => store.acceptJob(job('b'), reservation(2, 4))).toThrow(expect.objectContaining({ code: 'quota.exceeded', details: expect.objectContaining({ used: 3, limit: 4, units: 2 }) }));
    expect(store.getJob('b')).toBeUndefined();
    store.acceptJob(job('c'), reservation(1, 4));
    expect(store.usage('s1', 'u1', 'imagine', '2025-06-01')).toEqual({ reserved: 4, charged: 0, refunded: 0 });
  });

  it('settles a reservation exactly once', () => {
    const store = new SqliteStore(':memory:');
    store.acceptJob(job('a'), reservation(2, 10));
    expect(store.settleJob('a', 'charged', 2)).toBe(true);
    expect(store.settleJob('a', 'refunded', 3)).toBe(false);
    expect(store.usage('s1', 'u1', 'imagine', '2025-06-01')).toEqual({ reserved: 0, charged: 2, refunded: 0 });
  });

  it('fails and refunds jobs a previous process left queued or running', () => {
    const store = new SqliteStore(':memory:');
    store.acceptJob(job('a'), reservation(2, 10));
    store.acceptJob(job('b'), reservation(1, 10));
    store.settleJob('b', 'charged', 2);
    store.updateJob('b', { state: 'succeeded' }, 2);
    expect(store.recoverInterrupted(5).map((j) => j.id)).toEqual(['a']);
    expect(store.getJob('a')?.state).toBe('failed');
    expect(store.usage('s1', 'u1', 'imagine', '2025-06-01')).toEqual({ reserved: 0, charged: 1, refunded: 2 });
  });

  it('claims a request id once', () => {
    const store = new SqliteStore(':memory:');
    const r = { id: 'evt-1', spaceId: 's1', userId: 'u1', command: 'imagine', receivedAt: 1 };
    expect(store.claimRequest(r)).toBe(true);
    expect(store.claimRequest(r)).toBe(false);
  });

  it('lists settings by prefix and deletes with undefined', () => {
    const store = new SqliteStore(':memory:');
    store.setSetting('s1', 'autocaption:C1', '1', 'mod', 1);
    store.setSetting('s1', 'autocaption:C2', '1', 'mod', 1);
    store.setSetting('s1', 'other', 'x', 'mod', 1);
    store.setSetting('s1', 'autocaption:C2', undefined, 'mod', 2);
    expect(store.listSettings('s1', 'autocaption:')).toEqual([{ key: 'autocaption:C1', value: '1' }]);
  });
});
