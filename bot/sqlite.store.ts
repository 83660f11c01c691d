/**
 * The BotStore on SQLite (better-sqlite3 12): WAL mode, numbered migrations, prepared statements only.
 * The only bot/ module that imports better-sqlite3, besides its migration list.
 */
import Database from 'better-sqlite3';
import { PictalkError } from '../common/errors.js';
import { MIGRATIONS, type Migration } from './sqlite.migrations.js';
import type {
  AuditEntry, BlockEntry, BotStore, JobRecord, JobState, NewAuditEntry, NewJob, PartialCharge, QuotaLimitRow, Reservation, UsageSummary,
} from './store.js';
import type { QuotaKind, QuotaTarget } from './types.js';
import { checkPartialCharge, jobFromRow, json, targetColumns, targetOf, unjson, type JobRow } from './store.rows.js';

type Db = Database.Database;

export interface OpenStoreOptions {
  /** Replaces the shipped migrations (tests of the migration runner). */
  migrations?: readonly Migration[];
}

/** Apply the migrations the database has not seen, each in its own transaction. Returns the versions applied. */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0;
  const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  if (current > known) {
    throw new PictalkError('config.invalid',
      `The database is at schema version ${current}, newer than this pictalk knows (${known}); use a newer pictalk or another PICTALK_DB`,
      { current, known });
  }
  const record = db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)');
  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
    })();
    applied.push(migration.version);
  }
  return applied;
}

export function schemaVersion(db: Db): number {
  return (db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0;
}

function prepareStatements(db: Db) {
  return {
    claimRequest: db.prepare('INSERT OR IGNORE INTO requests (id, space_id, user_id, command, received_at) VALUES (?, ?, ?, ?, ?)'),
    pruneRequests: db.prepare('DELETE FROM requests WHERE received_at < ?'),
    used: db.prepare<[string, string, string, string], { units: number | null }>(
      "SELECT SUM(units) AS units FROM usage_ledger WHERE space_id = ? AND user_id = ? AND kind = ? AND day = ? AND state IN ('reserved', 'charged')"),
    usage: db.prepare<[string, string, string, string], { state: string; units: number }>(
      'SELECT state, SUM(units) AS units FROM usage_ledger WHERE space_id = ? AND user_id = ? AND kind = ? AND day = ? GROUP BY state'),
    insertJob: db.prepare(`INSERT INTO jobs (id, request_id, platform, requester_id, space_id, channel_id, kind, settings, state,
      parent_job_id, created_at, updated_at) VALUES (@id, @requestId, @platform, @requesterId, @spaceId, @channelId, @kind,
      @settings, 'queued', @parentJobId, @createdAt, @createdAt)`),
    insertReservation: db.prepare(`INSERT INTO usage_ledger (job_id, space_id, user_id, kind, day, units, state, created_at)
      VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?)`),
    settle: db.prepare("UPDATE usage_ledger SET state = ?, settled_at = ? WHERE job_id = ? AND state = 'reserved'"),
    refundCharge: db.prepare("UPDATE usage_ledger SET state = 'refunded', settled_at = ? WHERE job_id = ? AND state = 'charged'"),
    settlePartly: db.prepare(`UPDATE usage_ledger SET state = 'charged', settled_at = ?, units = MIN(units, ?), note = ?
      WHERE job_id = ? AND state = 'reserved'`),
    updateJob: db.prepare('UPDATE jobs SET state = ?, error_code = ?, updated_at = ? WHERE id = ?'),
    updateJobSettings: db.prepare('UPDATE jobs SET state = ?, error_code = ?, settings = ?, updated_at = ? WHERE id = ?'),
    setJobMessages: db.prepare('UPDATE jobs SET message_ids = ?, updated_at = ? WHERE id = ?'),
    setJobRoute: db.prepare("UPDATE jobs SET settings = json_set(settings, '$.route', json(?)) WHERE id = ?"),
    getJob: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    markAnswered: db.prepare('UPDATE jobs SET answered_at = COALESCE(answered_at, ?), message_ids = COALESCE(?, message_ids) WHERE id = ?'),
    interrupted: db.prepare<[], JobRow>("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, id"),
    unanswered: db.prepare<[number], JobRow>(`SELECT * FROM jobs WHERE answered_at IS NULL AND state NOT IN ('queued', 'running')
      AND updated_at >= ? ORDER BY created_at, id`),
    failInterrupted: db.prepare("UPDATE jobs SET state = 'failed', error_code = 'inference.failed', updated_at = ?, answered_at = ? WHERE id = ?"),
    resetUsage: db.prepare(`UPDATE usage_ledger SET state = 'refunded', note = ?, settled_at = ?
      WHERE space_id = ? AND user_id = ? AND day = ? AND state = 'charged'`),
    getLimit: db.prepare<[string, string, string, string], { daily_limit: number }>(
      'SELECT daily_limit FROM quota_limits WHERE space_id = ? AND target_kind = ? AND target_id = ? AND kind = ?'),
    setLimit: db.prepare(`INSERT INTO quota_limits (space_id, target_kind, target_id, kind, daily_limit, updated_by, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (space_id, target_kind, target_id, kind)
      DO UPDATE SET daily_limit = excluded.daily_limit, updated_by = excluded.updated_by, updated_at = excluded.updated_at`),
    listLimits: db.prepare<[string], { target_kind: string; target_id: string; kind: string; daily_limit: number; updated_by: string; updated_at: number }>(
      'SELECT * FROM quota_limits WHERE space_id = ? ORDER BY target_kind, target_id, kind'),
    addBlock: db.prepare('INSERT OR IGNORE INTO blocklist (space_id, pattern, added_by, added_at) VALUES (?, ?, ?, ?)'),
    removeBlock: db.prepare('DELETE FROM blocklist WHERE space_id = ? AND pattern = ?'),
    listBlocks: db.prepare<[string], { pattern: string; added_by: string; added_at: number }>(
      'SELECT pattern, added_by, added_at FROM blocklist WHERE space_id = ? ORDER BY added_at, pattern'),
    audit: db.prepare('INSERT INTO audit_log (space_id, actor_id, action, target, before, after, at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    listAudit: db.prepare<[string, number], { id: number; space_id: string; actor_id: string; action: string; target: string; before: string | null; after: string | null; at: number }>(
      'SELECT * FROM audit_log WHERE space_id = ? ORDER BY id DESC LIMIT ?'),
    getSetting: db.prepare<[string, string], { value: string }>('SELECT value FROM settings WHERE space_id = ? AND key = ?'),
    setSetting: db.prepare(`INSERT INTO settings (space_id, key, value, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (space_id, key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`),
    deleteSetting: db.prepare('DELETE FROM settings WHERE space_id = ? AND key = ?'),
    listSettings: db.prepare<{ spaceId: string; prefix: string }, { key: string; value: string }>(
      'SELECT key, value FROM settings WHERE space_id = @spaceId AND substr(key, 1, length(@prefix)) = @prefix ORDER BY key'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteStore implements BotStore {
  readonly db: Db;
  private readonly s: Statements;
  private readonly acceptTx: Database.Transaction<(job: NewJob, r: Reservation) => void>;
  private readonly recoverTx: Database.Transaction<(at: number, only: ReadonlySet<string> | undefined) => JobRecord[]>;

  /** Open (or create) the database at `path` (':memory:' for tests) and bring its schema up to date. */
  constructor(path: string, options: OpenStoreOptions = {}) {
    this.db = new Database(path);
    // WAL: readers never block the one writer; NORMAL sync is safe with WAL and much faster than FULL.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db, options.migrations);
    this.s = prepareStatements(this.db);

    // The quota check and the reservation in one IMMEDIATE transaction: exact even with a second process on the file.
    this.acceptTx = this.db.transaction((job: NewJob, r: Reservation) => {
      const used = this.s.used.get(r.spaceId, r.userId, r.kind, r.day)?.units ?? 0;
      if (used + r.units > r.limit) {
        throw new PictalkError('quota.exceeded', `Daily ${r.kind} quota spent: ${used} of ${r.limit} used, ${r.units} asked`,
          { used, limit: r.limit, units: r.units, kind: r.kind, day: r.day });
      }
      this.s.insertJob.run({ ...job, settings: JSON.stringify(job.settings), parentJobId: job.parentJobId ?? null });
      this.s.insertReservation.run(job.id, r.spaceId, r.userId, r.kind, r.day, r.units, job.createdAt);
    });
    this.recoverTx = this.db.transaction((at: number, only: ReadonlySet<string> | undefined) => {
      const rows = this.s.interrupted.all().filter((row) => !only || only.has(row.id));
      for (const row of rows) {
        this.s.failInterrupted.run(at, at, row.id);
        this.s.settle.run('refunded', at, row.id);
      }
      return rows.map(jobFromRow);
    });
  }

  async claimRequest(r: { id: string; spaceId: string; userId: string; command: string; receivedAt: number }): Promise<boolean> {
    return this.s.claimRequest.run(r.id, r.spaceId, r.userId, r.command, r.receivedAt).changes === 1;
  }

  async pruneRequests(before: number): Promise<number> {
    return this.s.pruneRequests.run(before).changes;
  }

  async acceptJob(job: NewJob, reservation: Reservation): Promise<void> {
    this.acceptTx.immediate(job, reservation);
  }

  async settleJob(jobId: string, outcome: 'charged' | 'refunded', at: number, partly?: PartialCharge): Promise<boolean> {
    checkPartialCharge(outcome, partly);
    if (partly) return this.s.settlePartly.run(at, partly.units, partly.note, jobId).changes === 1;
    return this.s.settle.run(outcome, at, jobId).changes === 1;
  }

  async refundCharge(jobId: string, at: number): Promise<boolean> {
    return this.s.refundCharge.run(at, jobId).changes === 1;
  }

  async updateJob(jobId: string, change: { state: JobState; errorCode?: string; settings?: Record<string, unknown> }, at: number): Promise<void> {
    if (change.settings) this.s.updateJobSettings.run(change.state, change.errorCode ?? null, JSON.stringify(change.settings), at, jobId);
    else this.s.updateJob.run(change.state, change.errorCode ?? null, at, jobId);
  }

  async setJobMessages(jobId: string, messageIds: string[], at: number): Promise<void> {
    this.s.setJobMessages.run(JSON.stringify(messageIds), at, jobId);
  }

  async markAnswered(jobId: string, at: number, messageIds?: string[]): Promise<void> {
    this.s.markAnswered.run(at, messageIds ? JSON.stringify(messageIds) : null, jobId);
  }

  async setJobRoute(jobId: string, route: Record<string, unknown>): Promise<void> {
    this.s.setJobRoute.run(JSON.stringify(route), jobId);
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const row = this.s.getJob.get(jobId);
    return row ? jobFromRow(row) : undefined;
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    return this.s.interrupted.all().map(jobFromRow);
  }

  async unansweredJobs(since: number): Promise<JobRecord[]> {
    return this.s.unanswered.all(since).map(jobFromRow);
  }

  async recoverInterrupted(at: number, only?: readonly string[]): Promise<JobRecord[]> {
    return this.recoverTx.immediate(at, only ? new Set(only) : undefined);
  }

  async usage(spaceId: string, userId: string, kind: QuotaKind, day: string): Promise<UsageSummary> {
    const summary: UsageSummary = { reserved: 0, charged: 0, refunded: 0 };
    for (const row of this.s.usage.all(spaceId, userId, kind, day)) summary[row.state as keyof UsageSummary] = row.units;
    return summary;
  }

  async resetUsage(spaceId: string, userId: string, day: string, note: string, at: number): Promise<number> {
    return this.s.resetUsage.run(note, at, spaceId, userId, day).changes;
  }

  async getLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind): Promise<number | undefined> {
    return this.s.getLimit.get(spaceId, ...targetColumns(target), kind)?.daily_limit;
  }

  async setLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind, limit: number, by: string, at: number): Promise<void> {
    this.s.setLimit.run(spaceId, ...targetColumns(target), kind, limit, by, at);
  }

  async listLimits(spaceId: string): Promise<QuotaLimitRow[]> {
    return this.s.listLimits.all(spaceId).map((row) => ({
      target: targetOf(row.target_kind, row.target_id), kind: row.kind as QuotaKind, limit: row.daily_limit,
      updatedBy: row.updated_by, updatedAt: row.updated_at,
    }));
  }

  async addBlockPattern(spaceId: string, pattern: string, by: string, at: number): Promise<boolean> {
    return this.s.addBlock.run(spaceId, pattern, by, at).changes === 1;
  }

  async removeBlockPattern(spaceId: string, pattern: string): Promise<boolean> {
    return this.s.removeBlock.run(spaceId, pattern).changes === 1;
  }

  async listBlockPatterns(spaceId: string): Promise<BlockEntry[]> {
    return this.s.listBlocks.all(spaceId).map((row) => ({ pattern: row.pattern, addedBy: row.added_by, addedAt: row.added_at }));
  }

  async audit(entry: NewAuditEntry): Promise<void> {
    this.s.audit.run(entry.spaceId, entry.actorId, entry.action, entry.target, json(entry.before), json(entry.after), entry.at);
  }

  async listAudit(spaceId: string, limit = 50): Promise<AuditEntry[]> {
    return this.s.listAudit.all(spaceId, limit).map((row) => ({
      id: row.id, spaceId: row.space_id, actorId: row.actor_id, action: row.action, target: row.target,
      before: unjson(row.before), after: unjson(row.after), at: row.at,
    }));
  }

  async getSetting(spaceId: string, key: string): Promise<string | undefined> {
    return this.s.getSetting.get(spaceId, key)?.value;
  }

  async setSetting(spaceId: string, key: string, value: string | undefined, by: string, at: number): Promise<void> {
    if (value === undefined) this.s.deleteSetting.run(spaceId, key);
    else this.s.setSetting.run(spaceId, key, value, by, at);
  }

  async listSettings(spaceId: string, prefix: string): Promise<Array<{ key: string; value: string }>> {
    return this.s.listSettings.all({ spaceId, prefix });
  }

  async ping(): Promise<void> {
    try {
      this.db.prepare('SELECT 1').get();
    } catch (error) {
      throw new PictalkError('store.unavailable', `The database cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
