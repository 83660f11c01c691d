/**
 * What bot/ keeps: quotas, the usage ledger, jobs, seen request ids, blocklists, the audit log and settings.
 *
 * One implementation, SQLite (bot/sqlite.store.ts); tests open it on ':memory:' rather than keep a second, in-memory
 * store that could drift from it. The interface stays because bot logic should depend on what it needs, not on
 * better-sqlite3. Every method is synchronous (better-sqlite3 is), so each one is atomic inside one Node process:
 * no other request runs between a quota check and the reservation it guards.
 */
import type { JobKind } from '../inference/types.js';
import type { Platform, QuotaKind, QuotaTarget } from './types.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type ReservationState = 'reserved' | 'charged' | 'refunded';

export interface JobRecord {
  id: string;
  requestId: string;
  platform: Platform;
  requesterId: string;
  spaceId: string;
  channelId: string;
  kind: JobKind;
  /** Whatever the command needs to redo or explain the job (imagine: the validated options and the seed). */
  settings: Record<string, unknown>;
  state: JobState;
  errorCode?: string;
  messageIds: string[];
  parentJobId?: string;
  createdAt: number;
  updatedAt: number;
}

export type NewJob = Omit<JobRecord, 'state' | 'messageIds' | 'updatedAt' | 'errorCode'>;

export interface Reservation {
  spaceId: string;
  userId: string;
  kind: QuotaKind;
  day: string;   // YYYY-MM-DD in UTC
  units: number; // images for imagine, 1 for a caption
  /** The user's daily limit, resolved by the policy just before; the store checks used + units against it. */
  limit: number;
}

export interface QuotaLimitRow {
  target: QuotaTarget;
  kind: QuotaKind;
  limit: number;
  updatedBy: string;
  updatedAt: number;
}

export interface UsageSummary {
  reserved: number;
  charged: number;
  refunded: number;
}

export interface BlockEntry {
  pattern: string;
  addedBy: string;
  addedAt: number;
}

export interface AuditEntry {
  id: number;
  spaceId: string;
  actorId: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
  at: number;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

export interface BotStore {
  /** Record a request id; false when it was seen before (a retry or a double delivery). */
  claimRequest(request: { id: string; spaceId: string; userId: string; command: string; receivedAt: number }): boolean;
  /** Forget request ids received before `before` (platforms stop retrying within minutes). Returns how many. */
  pruneRequests(before: number): number;

  /**
   * Reserve quota and create the job in one transaction. Throws `quota.exceeded` (details: used, limit, units)
   * when used + units would pass the limit; nothing is written then.
   */
  acceptJob(job: NewJob, reservation: Reservation): void;
  /** reserved -> charged or refunded. Returns false if the reservation was already settled (settling is idempotent). */
  settleJob(jobId: string, outcome: 'charged' | 'refunded', at: number): boolean;
  updateJob(jobId: string, change: { state: JobState; errorCode?: string; settings?: Record<string, unknown> }, at: number): void;
  setJobMessages(jobId: string, messageIds: string[], at: number): void;
  getJob(jobId: string): JobRecord | undefined;
  /** Jobs left queued or running by a previous process: fail them and refund their reservations. Returns them. */
  recoverInterrupted(at: number): JobRecord[];

  /** Units reserved or charged today (what counts against the limit), by state. */
  usage(spaceId: string, userId: string, kind: QuotaKind, day: string): UsageSummary;
  /** Refund every charged unit of the day (a moderator's reset); reserved units stay so in-flight jobs settle exactly. */
  resetUsage(spaceId: string, userId: string, day: string, note: string, at: number): number;

  getLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind): number | undefined;
  setLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind, limit: number, by: string, at: number): void;
  listLimits(spaceId: string): QuotaLimitRow[];

  addBlockPattern(spaceId: string, pattern: string, by: string, at: number): boolean;
  removeBlockPattern(spaceId: string, pattern: string): boolean;
  listBlockPatterns(spaceId: string): BlockEntry[];

  audit(entry: NewAuditEntry): void;
  listAudit(spaceId: string, limit?: number): AuditEntry[];

  getSetting(spaceId: string, key: string): string | undefined;
  setSetting(spaceId: string, key: string, value: string | undefined, by: string, at: number): void;
  listSettings(spaceId: string, prefix: string): Array<{ key: string; value: string }>;

  close(): void;
}
