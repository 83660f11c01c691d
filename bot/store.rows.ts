/**
 * How both stores (bot/sqlite.store.ts, bot/postgres.store.ts) lay records out in rows: the same tables and columns,
 * so one mapping serves both. JSON values are kept as text in both, so each reads back exactly what it wrote.
 */
import { PictalkError, describe } from '../common/errors.js';
import type { JobKind } from '../inference/types.js';
import type { JobRecord, JobState, PartialCharge } from './store.js';
import type { Platform, QuotaTarget } from './types.js';

export const targetColumns = (target: QuotaTarget): [string, string] =>
  target.kind === 'default' ? ['default', ''] : [target.kind, target.id];

export const targetOf = (kind: string, id: string): QuotaTarget =>
  kind === 'default' ? { kind: 'default' } : { kind: kind as 'user' | 'role', id };

export interface JobRow {
  id: string; request_id: string; platform: string; requester_id: string; space_id: string; channel_id: string;
  kind: string; settings: string; state: string; error_code: string | null; message_ids: string;
  parent_job_id: string | null; created_at: number; updated_at: number; answered_at: number | null;
}

export function jobFromRow(row: JobRow): JobRecord {
  const job: JobRecord = {
    id: row.id, requestId: row.request_id, platform: row.platform as Platform, requesterId: row.requester_id,
    spaceId: row.space_id, channelId: row.channel_id, kind: row.kind as JobKind,
    settings: JSON.parse(row.settings) as Record<string, unknown>, state: row.state as JobState,
    messageIds: JSON.parse(row.message_ids) as string[], createdAt: row.created_at, updatedAt: row.updated_at,
  };
  if (row.error_code !== null) job.errorCode = row.error_code;
  if (row.parent_job_id !== null) job.parentJobId = row.parent_job_id;
  if (row.answered_at !== null && row.answered_at !== undefined) job.answeredAt = Number(row.answered_at);
  return job;
}

export const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));
export const unjson = (text: string | null): unknown => (text === null ? undefined : JSON.parse(text));

/** `partly`, checked the same way by every store: a positive integer number of units. */
export function checkPartialCharge(outcome: 'charged' | 'refunded', partly: PartialCharge | undefined): void {
  if (partly === undefined) return;
  if (outcome !== 'charged' || !Number.isInteger(partly.units) || partly.units < 1) {
    throw new PictalkError('input.invalid', `Expected a partial charge of at least 1 unit, got ${describe(partly.units)} units to be ${outcome}`);
  }
}
