/**
 * The end of every accepted job: charge on success, refund on failure or cancel, the job row updated, and a reply.
 * Settling is idempotent in the store (only a `reserved` row changes), so a unit is never charged and refunded both.
 */
import { PictalkError, isPictalkError } from '../../common/errors.js';
import type { CommandContext } from '../context.js';
import { errorReply } from '../replies.js';
import type { JobRecord, PartialCharge } from '../store.js';
import type { Reply } from '../types.js';

/** Charge the job (`partly`: only the units delivered, e.g. when the safety checker withheld some images). */
export async function settleSuccess(ctx: CommandContext, jobId: string, settings?: Record<string, unknown>, partly?: PartialCharge): Promise<void> {
  const now = ctx.clock.now();
  await ctx.store.settleJob(jobId, 'charged', now, partly);
  await ctx.store.updateJob(jobId, settings ? { state: 'succeeded', settings } : { state: 'succeeded' }, now);
}

export async function settleFailure(ctx: CommandContext, jobId: string, error: unknown): Promise<Reply> {
  const now = ctx.clock.now();
  const refunded = await ctx.store.settleJob(jobId, 'refunded', now);
  const code = isPictalkError(error) ? error.code : 'inference.failed';
  await ctx.store.updateJob(jobId, { state: code === 'job.cancelled' ? 'cancelled' : 'failed', errorCode: code }, now);
  if (!isPictalkError(error)) ctx.log.error('job failed with an unexpected error', { jobId, error: String((error as Error)?.stack ?? error) });
  return { ...errorReply(error, { refunded }), jobId };
}

/** A job of this space, or `input.invalid` (another space's job ids are not revealed). */
export async function findJob(ctx: CommandContext, jobId: string): Promise<JobRecord> {
  const job = typeof jobId === 'string' && jobId.length > 0 ? await ctx.store.getJob(jobId) : undefined;
  if (!job || job.spaceId !== ctx.request.actor.spaceId) {
    throw new PictalkError('input.invalid', `No job \`${String(jobId)}\` here`, { jobId });
  }
  return job;
}
