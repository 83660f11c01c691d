/**
 * What bot/ keeps: quotas, the usage ledger, jobs, seen request ids, blocklists, the audit log and settings.
 *
 * Two implementations, one contract (tests/bot/store.contract.ts runs against both): SQLite (bot/sqlite.store.ts), the
 * embedded default, and PostgreSQL (bot/postgres.store.ts) for several processes sharing one store. Tests open SQLite
 * on ':memory:' and a private PostgreSQL rather than keep an in-memory store that could drift from them.
 *
 * Every method is asynchronous, and what must be atomic is atomic in the database, not by the grace of one Node
 * process: the quota check and its reservation are one transaction (serialised per user, kind and day), a request id
 * is claimed by a conditional insert, and a reservation settles by a conditional update, so each holds across
 * connections and processes.
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
  /** When the job's reply was handed to the platform (`markAnswered`); absent while no front has answered it. */
  answeredAt?: number;
}

export type NewJob = Omit<JobRecord, 'state' | 'messageIds' | 'updatedAt' | 'errorCode' | 'answeredAt'>;

export interface Reservation {
  spaceId: string;
  userId: string;
  kind: QuotaKind;
  day: string;   // YYYY-MM-DD in UTC
  units: number; // images for imagine, 1 for a caption
  /** The user's daily limit, resolved by the policy just before; the store checks used + units against it. */
  limit: number;
}

/** A charge of fewer units than were reserved: the rest go back to the user's room for the day. */
export interface PartialCharge {
  units: number;
  note: string;
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
  claimRequest(request: { id: string; spaceId: string; userId: string; command: string; receivedAt: number }): Promise<boolean>;
  /** Forget request ids received before `before` (platforms stop retrying within minutes). Returns how many. */
  pruneRequests(before: number): Promise<number>;

  /**
   * Reserve quota and create the job in one transaction. Throws `quota.exceeded` (details: used, limit, units)
   * when used + units would pass the limit; nothing is written then.
   */
  acceptJob(job: NewJob, reservation: Reservation): Promise<void>;
  /**
   * reserved -> charged or refunded. Returns false if the reservation was already settled (settling is idempotent).
   * `partly` charges only some of the reserved units (the images the safety checker withheld are not charged): the
   * reservation's units become `partly.units` (at most what was reserved, at least 1) and `partly.note` says why.
   */
  settleJob(jobId: string, outcome: 'charged' | 'refunded', at: number, partly?: PartialCharge): Promise<boolean>;
  /**
   * charged -> refunded: a job charged when its result came, whose reply could not be given after all (answered again
   * after a restart or by another front, and that answer failed: its starting picture no longer kept, the model
   * changed). Its charged units are room again. Returns false when the job holds no charge (never charged, or given
   * back already), so two processes that try it give it back once.
   */
  refundCharge(jobId: string, at: number): Promise<boolean>;
  updateJob(jobId: string, change: { state: JobState; errorCode?: string; settings?: Record<string, unknown> }, at: number): Promise<void>;
  setJobMessages(jobId: string, messageIds: string[], at: number): Promise<void>;
  /**
   * The job's reply went out (or was handed to the platform and failed there): the job needs no front any more. Sets
   * `answeredAt` once (a later call leaves the first time), and the message ids when given.
   */
  markAnswered(jobId: string, at: number, messageIds?: string[]): Promise<void>;
  /** Replace `settings.route` of a job (the rest of its settings unchanged). */
  setJobRoute(jobId: string, route: Record<string, unknown>): Promise<void>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  /** The jobs queued or running now, oldest first (a restarting front asks the queue which of them it still runs). */
  unfinishedJobs(): Promise<JobRecord[]>;
  /**
   * Jobs settled (succeeded, failed or cancelled) at or after `since` whose reply never went out, oldest first: their
   * front stopped between settling and answering, and a cluster front answers them from the result the queue keeps.
   */
  unansweredJobs(since: number): Promise<JobRecord[]>;
  /**
   * Jobs left queued or running by a previous process: fail them and refund their reservations (they count as answered:
   * nobody can reach their requester now). Returns them. With
   * `only`, just those of these ids that are still queued or running (a cluster front fails the jobs it knows are lost).
   */
  recoverInterrupted(at: number, only?: readonly string[]): Promise<JobRecord[]>;

  /** Units reserved or charged today (what counts against the limit), by state. */
  usage(spaceId: string, userId: string, kind: QuotaKind, day: string): Promise<UsageSummary>;
  /** Refund every charged unit of the day (a moderator's reset); reserved units stay so in-flight jobs settle exactly. */
  resetUsage(spaceId: string, userId: string, day: string, note: string, at: number): Promise<number>;

  getLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind): Promise<number | undefined>;
  setLimit(spaceId: string, target: QuotaTarget, kind: QuotaKind, limit: number, by: string, at: number): Promise<void>;
  listLimits(spaceId: string): Promise<QuotaLimitRow[]>;

  addBlockPattern(spaceId: string, pattern: string, by: string, at: number): Promise<boolean>;
  removeBlockPattern(spaceId: string, pattern: string): Promise<boolean>;
  listBlockPatterns(spaceId: string): Promise<BlockEntry[]>;

  audit(entry: NewAuditEntry): Promise<void>;
  listAudit(spaceId: string, limit?: number): Promise<AuditEntry[]>;

  getSetting(spaceId: string, key: string): Promise<string | undefined>;
  setSetting(spaceId: string, key: string, value: string | undefined, by: string, at: number): Promise<void>;
  listSettings(spaceId: string, prefix: string): Promise<Array<{ key: string; value: string }>>;

  /** Resolves when the database answers a query now; rejects with `store.unavailable` otherwise (for /healthz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
