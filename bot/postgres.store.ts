/**
 * The BotStore on PostgreSQL (`pg`), for several processes sharing one store (PICTALK_DATABASE_URL). The same
 * contract as bot/sqlite.store.ts (tests/bot/store.contract.ts runs against both); what one SQLite transaction made
 * atomic is made atomic here by the database:
 *
 * - a reservation takes a transaction-scoped advisory lock on (space, user, kind, day) before it sums the day's
 *   units, so two reservations of one user never both see room for themselves (READ COMMITTED: the sum after the
 *   lock sees every reservation committed before it);
 * - a request id is claimed by `INSERT ... ON CONFLICT DO NOTHING`, a reservation settled by an `UPDATE` that only
 *   matches a `reserved` row;
 * - migrations run under a session advisory lock, so processes that start at once apply each exactly once.
 *
 * A database that cannot be reached gives `store.unavailable` (retryable): a command is answered "try again", and a
 * transaction that failed half way is rolled back, so nothing is half-written.
 */
import pg from 'pg';
import { PictalkError, isPictalkError } from '../common/errors.js';
import { PG_MIGRATIONS } from './postgres.migrations.js';
import type { Migration } from './sqlite.migrations.js';
import type {
  AuditEntry, BlockEntry, BotStore, JobRecord, JobState, NewAuditEntry, NewJob, PartialCharge, QuotaLimitRow, Reservation, UsageSummary,
} from './store.js';
import type { QuotaKind, QuotaTarget } from './types.js';
import { checkPartialCharge, jobFromRow, json, targetColumns, targetOf, unjson, type JobRow } from './store.rows.js';

export interface PostgresStoreOptions {
  /** Replaces the shipped migrations (tests of the migration runner). */
  migrations?: readonly Migration[];
  /** Connections in the pool (default 10). */
  maxConnections?: number;
  /** How long to wait for a connection before `store.unavailable` (default 5000 ms). */
  connectTimeoutMs?: number;
}

/** The lock key migrations hold: any constant that pictalk's other advisory locks (hashes of text) do not produce. */
const MIGRATION_LOCK = 7_151_447_453;
const INT8 = 20;
const NUMERIC = 1700;

/** BIGINT and NUMERIC (what SUM gives) as JavaScript numbers: times in ms and unit counts stay far below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) => (oid === INT8 || oid === NUMERIC
    ? (value: string) => Number(value)
    : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

/** Where a URL points, for messages: its host, port and database, never its password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'the configured database';
  }
}

/** Connection and server-side failures (not a constraint or a query of ours) as `store.unavailable`. */
function unavailable(error: unknown, where: string): unknown {
  if (isPictalkError(error)) return error;
  const code = (error as { code?: unknown })?.code;
  const message = (error as Error)?.message ?? String(error);
  // SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention: shutdown); node's socket errors
  const down = typeof code === 'string' && (/^(08|53|57)/.test(code) || /^E[A-Z]+$/.test(code))
    || /terminat|timeout|Connection|connect/i.test(message);
  if (!down) return error;
  return new PictalkError('store.unavailable', `The database at ${where} cannot be reached: ${message}`, { where }, { cause: error });
}

/**
 * A pooled connection the server ended by shutting down (SQLSTATE 57P01, an administrator's or a restart's fast stop):
 * the statement on it was not run, or its transaction rolled back, so it is safe to run once more on a new connection.
 * The pool may still hold such a connection for a moment after the server is back; without one more try, each of them
 * would fail a command with "temporarily unavailable" although the database answers.
 */
function shutDownUnder(error: unknown): boolean {
  return (error as { code?: unknown })?.code === '57P01';
}

/** Apply the migrations the database has not seen, under an advisory lock. Returns the versions applied. */
export async function migratePostgres(pool: pg.Pool, migrations: readonly Migration[] = PG_MIGRATIONS): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const current = (await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version')).rows[0]?.v ?? 0;
      const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
      if (current > known) {
        throw new PictalkError('config.invalid',
          `The database is at schema version ${current}, newer than this pictalk knows (${known}); use a newer pictalk or another PICTALK_DATABASE_URL`,
          { current, known });
      }
      const applied: number[] = [];
      for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
        if (migration.version <= current) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
        applied.push(migration.version);
      }
      return applied;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}

export class PostgresStore implements BotStore {
  readonly pool: pg.Pool;
  private readonly where: string;
  private closed = false;

  private constructor(pool: pg.Pool, where: string) {
    this.pool = pool;
    this.where = where;
  }

  /**
   * Connect to `url` and bring its schema up to date. A database that cannot be reached is `store.unavailable`
   * naming where it was looked for (the composition root adds the setting's name).
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const where = describeDatabaseUrl(url);
    const pool = new pg.Pool({
      connectionString: url, max: options.maxConnections ?? 10, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      types,
    });
    // An idle connection the server drops (a restart) must not crash the process; the next query reconnects.
    pool.on('error', () => undefined);
    try {
      await migratePostgres(pool, options.migrations);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw unavailable(error, where);
    }
    return new PostgresStore(pool, where);
  }

  private async query<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.pool.query<R>(sql, values);
      } catch (error) {
        if (attempt === 1 && shutDownUnder(error)) continue;
        throw unavailable(error, this.where);
      }
    }
  }

  /** Run `work` in one transaction on one connection; any error rolls it back. */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.begin();
    let broken = false;
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => { broken = true; });
      throw unavailable(error, this.where);
    } finally {
      client.release(broken);
    }
  }

  /** A connection with its transaction begun: on a new one once more when the server's shutdown had ended the first. */
  private async begin(): Promise<pg.PoolClient> {
    for (let attempt = 1; ; attempt += 1) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (error) {
        throw unavailable(error, this.where);
      }
      try {
        await client.query('BEGIN');
        return client;
      } catch (error) {
        client.release(true);
        if (attempt === 1 && shutDownUnder(error)) continue;
        throw unavailable(error, this.where);
      }
    }
  }

  async claimRequest(r: { id: string; spaceId: string; userId: string; command: string; receivedAt: number }): Promise<boolean> {
    const result = await this.query('INSERT INTO requests (id, space_id, user_id, command, received_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING',
      [r.id, r.spaceId, r.userId, r.command, r.receivedAt]);
    return result.rowCount === 1;
  }

  async pruneRequests(before: number): Promise<number> {
    return (await this.query('DELETE FROM requests WHERE received_at < $1', [before])).rowCount ?? 0;
  }

  async acceptJob(job: NewJob, r: Reservation): Promise<void> {
    await this.transaction(async (client) => {
      // one reservation at a time per user, kind and day, across every connection and process
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [JSON.stringify(['quota', r.spaceId, r.userId, r.kind, r.day])]);
      const used = (await client.query<{ units: number }>(
        "SELECT COALESCE(SUM(units), 0) AS units FROM usage_ledger WHERE space_id = $1 AND user_id = $2 AND kind = $3 AND day = $4 AND state IN ('reserved', 'charged')",
        [r.spaceId, r.userId, r.kind, r.day])).rows[0]?.units ?? 0;
      if (used + r.units > r.limit) {
        throw new PictalkError('quota.exceeded', `Daily ${r.kind} quota spent: ${used} of ${r.limit} used, ${r.units} asked`,
          { used, limit: r.limit, units: r.units, kind: r.kind, day: r.day });
      }
      await client.query(`INSERT INTO jobs (id, request_id, platform, requester_id, space_id, channel_id, kind, settings, state,
        parent_job_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $10)`,
      [job.id, job.requestId, job.platform, job.requesterId, job.spaceId, job.channelId, job.kind, JSON.stringify(job.settings),
        job.parentJobId ?? null, job.createdAt]);
      await client.query(`INSERT INTO usage_ledger (job_id, space_id, user_id, kind, day, units, state, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, 'reserved', $7)`, [job.id, r.spaceId, r.userId, r.kind, r.day, r.units, job.createdAt]);
    });
  }

  async settleJob(jobId: string, outcome: 'charged' | 'refunded', at: number, partly?: PartialCharge): Promise<boolean> {
    checkPartialCharge(outcome, partly);
    if (partly) {
      const charged = await this.query(`UPDATE usage_ledger SET state = 'charged', settled_at = $1, units = LEAST(units, $2), note = $3
        WHERE job_id = $4 AND state = 'reserved'`, [at, partly.units, partly.note, jobId]);
      return charged.rowCount === 1;
    }
    const result = await this.query("UPDATE usage_ledger SET state = $1, settled_at = $2 WHERE job_id = $3 AND state = 'reserved'", [outcome, at, jobId]);
    return result.rowCount === 1;
  }

  async refundCharge(jobId: string, at: number): Promise<boolean> {
    const result = await this.query("UPDATE usage_ledger SET state = 'refunded', settled_at = $1 WHERE job_id = $2 AND state = 'charged'", [at, jobId]);
    return result.rowCount === 1;
  }

  async updateJob(jobId: string, change: { state: JobState; errorCode?: string; settings?: Record<string, unknown> }, at: number): Promise<void> {
    if (change.settings) {
      await this.query('UPDATE jobs SET state = $1, error_code = $2, settings = $3, updated_at = $4 WHERE id = $5',
        [change.state, change.errorCode ?? null, JSON.stringify(change.settings), at, jobId]);
    } else {
      await this.query('UPDATE jobs SET state = $1, error_code = $2, updated_at = $3 WHERE id = $4', [change.state, change.errorCode ?? null, at, jobId]);
    }
  }

  async setJobMessages(jobId: string, messageIds: string[], at: number): Promise<void> {
    await this.query('UPDATE jobs SET message_ids = $1, updated_at = $2 WHERE id = $3', [JSON.stringify(messageIds), at, jobId]);
  }

  async markAnswered(jobId: string, at: number, messageIds?: string[]): Promise<void> {
    await this.query('UPDATE jobs SET answered_at = COALESCE(answered_at, $1), message_ids = COALESCE($2, message_ids) WHERE id = $3',
      [at, messageIds ? JSON.stringify(messageIds) : null, jobId]);
  }

  async setJobRoute(jobId: string, route: Record<string, unknown>): Promise<void> {
    await this.query("UPDATE jobs SET settings = jsonb_set(settings::jsonb, '{route}', $1::jsonb)::text WHERE id = $2", [JSON.stringify(route), jobId]);
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const row = (await this.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [jobId])).rows[0];
    return row ? jobFromRow(row) : undefined;
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    return (await this.query<JobRow>(`SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, id COLLATE "C"`)).rows.map(jobFromRow);
  }

  async unansweredJobs(since: number): Promise<JobRecord[]> {
    return (await this.query<JobRow>(`SELECT * FROM jobs WHERE answered_at IS NULL AND state NOT IN ('queued', 'running') AND updated_at >= $1
      ORDER BY created_at, id COLLATE "C"`, [since])).rows.map(jobFromRow);
  }

  async recoverInterrupted(at: number, only?: readonly string[]): Promise<JobRecord[]> {
    return this.transaction(async (client) => {
      // each job as it was left (its state then), oldest first
      const rows = (await client.query<JobRow>(`SELECT * FROM jobs WHERE state IN ('queued', 'running') AND ($1::text[] IS NULL OR id = ANY($1))
        ORDER BY created_at, id COLLATE "C" FOR UPDATE`, [only ?? null])).rows;
      const ids = rows.map((row) => row.id);
      if (ids.length > 0) {
        await client.query("UPDATE jobs SET state = 'failed', error_code = 'inference.failed', updated_at = $1, answered_at = $1 WHERE id = ANY($2)", [at, ids]);
        await client.query("UPDATE usage_ledger SET state = 'refunded', settled_at = $1 WHERE job_id = ANY($2) AND state = 'reserved'", [at, ids]);
      }
      return rows.map(jobFromRow);
    });
  }

  async usage(spaceId: string, userId: string, kind: QuotaKind, day: string): Promise<UsageSummary> {
    const summary: UsageSummary = { reserved: 0, charged: 0, refunded: 0 };
    const rows = (await this.query<{ state: string; units: number }>(
      'SELECT state, SUM(units) AS units FROM usage_ledger WHERE space_id = $1 AND user_id = $2 AND kind = $3 AND day = $4 GROUP BY state',
      [spaceId, userId, kind, day])).rows;
    for (const row of rows) summary[row.state as keyof UsageSummary] = row.units;
    return summary;
  }

  async resetUsage(spaceId: string, userId: string, day: string, note: string, at: number): Promise<number> {
    return (await this.query(`UPDATE usage_ledger SET state = 'refunded', note = $1, settled_at = $2
      WHERE space_id = $3 AND user_id = $4 AND day = $5 AND state = 'charged'`, [note, at, spaceId, userId, day])).rowCount ?? 0;
  }

  async getLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind): Promise<number | undefined> {
    const row = (await this.query<{ daily_limit: number }>(
      'SELECT daily_limit FROM quota_limits WHERE space_id = $1 AND target_kind = $2 AND target_id = $3 AND kind = $4',
      [spaceId, ...targetColumns(target), kind])).rows[0];
    return row?.daily_limit;
  }

  async setLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind, limit: number, by: string, at: number): Promise<void> {
    await this.query(`INSERT INTO quota_limits (space_id, target_kind, target_id, kind, daily_limit, updated_by, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (space_id, target_kind, target_id, kind)
      DO UPDATE SET daily_limit = excluded.daily_limit, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
    [spaceId, ...targetColumns(target), kind, limit, by, at]);
  }

  async listLimits(spaceId: string): Promise<QuotaLimitRow[]> {
    const rows = (await this.query<{ target_kind: string; target_id: string; kind: string; daily_limit: number; updated_by: string; updated_at: number }>(
      'SELECT * FROM quota_limits WHERE space_id = $1 ORDER BY target_kind COLLATE "C", target_id COLLATE "C", kind COLLATE "C"', [spaceId])).rows;
    return rows.map((row) => ({
      target: targetOf(row.target_kind, row.target_id), kind: row.kind as QuotaKind, limit: row.daily_limit,
      updatedBy: row.updated_by, updatedAt: row.updated_at,
    }));
  }

  async addBlockPattern(spaceId: string, pattern: string, by: string, at: number): Promise<boolean> {
    const result = await this.query('INSERT INTO blocklist (space_id, pattern, added_by, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
      [spaceId, pattern, by, at]);
    return result.rowCount === 1;
  }

  async removeBlockPattern(spaceId: string, pattern: string): Promise<boolean> {
    return (await this.query('DELETE FROM blocklist WHERE space_id = $1 AND pattern = $2', [spaceId, pattern])).rowCount === 1;
  }

  async listBlockPatterns(spaceId: string): Promise<BlockEntry[]> {
    const rows = (await this.query<{ pattern: string; added_by: string; added_at: number }>(
      'SELECT pattern, added_by, added_at FROM blocklist WHERE space_id = $1 ORDER BY added_at, pattern COLLATE "C"', [spaceId])).rows;
    return rows.map((row) => ({ pattern: row.pattern, addedBy: row.added_by, addedAt: row.added_at }));
  }

  async audit(entry: NewAuditEntry): Promise<void> {
    await this.query('INSERT INTO audit_log (space_id, actor_id, action, target, before, after, at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [entry.spaceId, entry.actorId, entry.action, entry.target, json(entry.before), json(entry.after), entry.at]);
  }

  async listAudit(spaceId: string, limit = 50): Promise<AuditEntry[]> {
    const rows = (await this.query<{ id: number; space_id: string; actor_id: string; action: string; target: string; before: string | null; after: string | null; at: number }>(
      'SELECT * FROM audit_log WHERE space_id = $1 ORDER BY id DESC LIMIT $2', [spaceId, limit])).rows;
    return rows.map((row) => ({
      id: row.id, spaceId: row.space_id, actorId: row.actor_id, action: row.action, target: row.target,
      before: unjson(row.before), after: unjson(row.after), at: row.at,
    }));
  }

  async getSetting(spaceId: string, key: string): Promise<string | undefined> {
    return (await this.query<{ value: string }>('SELECT value FROM settings WHERE space_id = $1 AND key = $2', [spaceId, key])).rows[0]?.value;
  }

  async setSetting(spaceId: string, key: string, value: string | undefined, by: string, at: number): Promise<void> {
    if (value === undefined) {
      await this.query('DELETE FROM settings WHERE space_id = $1 AND key = $2', [spaceId, key]);
      return;
    }
    await this.query(`INSERT INTO settings (space_id, key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (space_id, key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
    [spaceId, key, value, by, at]);
  }

  async listSettings(spaceId: string, prefix: string): Promise<Array<{ key: string; value: string }>> {
    return (await this.query<{ key: string; value: string }>(
      'SELECT key, value FROM settings WHERE space_id = $1 AND starts_with(key, $2) ORDER BY key COLLATE "C"', [spaceId, prefix])).rows;
  }

  async ping(): Promise<void> {
    try {
      await this.pool.query('SELECT 1');
    } catch (error) {
      // whatever the reason (down, closed), for a health check it does not answer
      const message = error instanceof Error ? error.message : String(error);
      throw new PictalkError('store.unavailable', `The database at ${this.where} does not answer: ${message}`, { where: this.where }, { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
