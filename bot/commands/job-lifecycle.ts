/**
 * The end of every accepted job: charge on success, refund on failure or cancel, the job row updated, and a reply.
 * Settling is idempotent in the store (only a `reserved` row changes), so a unit is never charged and refunded both.
 */
import { PictalkError, isAnsweredElsewhere, isPictalkError } from '../../common/errors.js';
import { routeOf, type CommandContext } from '../context.js';
import { errorReply } from '../replies.js';
import type { JobRecord, PartialCharge } from '../store.js';
import type { Reply } from '../types.js';

/**
 * Charge the job (`partly`: only the units delivered, e.g. when the safety checker withheld some images). Returns
 * false when the job was settled already: in a cluster, another front followed the same job to its result (this one's
 * lease lapsed while Redis was away, or it stalled) and settled it first, so that front answers and this one must not
 * (`answeredElsewhere`). The settlement is a conditional update of the shared store, so exactly one front wins it.
 */
export async function settleSuccess(ctx: CommandContext, jobId: string, settings?: Record<string, unknown>, partly?: PartialCharge): Promise<boolean> {
  // answered again: the front that stopped settled the job and wrote its state
  if (ctx.settledBefore) return true;
  const now = ctx.clock.now();
  if (!await ctx.store.settleJob(jobId, 'charged', now, partly)) return false;
  const update: Parameters<CommandContext['store']['updateJob']>[1] = settings ? { state: 'succeeded', settings: withRoute(ctx, settings) } : { state: 'succeeded' };
  try {
    await ctx.store.updateJob(jobId, update, now);
  } catch (error) {
    // charged: the reply goes out; the job's row follows once the store answers again
    if (!isStoreDown(error)) throw error;
    whenStoreIsBack(ctx, jobId, 'the job\'s state after its charge', async () => { await ctx.store.updateJob(jobId, update, now); });
  }
  return true;
}

/**
 * A settled job's settings, with the way back to its requester kept: a front that stops after settling and before
 * its reply is out leaves the job to another front, which answers through it.
 */
export const withRoute = (ctx: CommandContext, settings: Record<string, unknown>): Record<string, unknown> => ({ ...settings, ...routeOf(ctx) });

/**
 * Settle the job's reservation (`BotStore.settleJob`): false when it was settled already. A job being answered again
 * (`ctx.settledBefore`: its front settled it and stopped before the reply went out) counts as settled by this
 * command, and nothing is written: the quota moves once.
 */
export async function settleOnce(ctx: CommandContext, jobId: string, outcome: 'charged' | 'refunded', at: number, partly?: PartialCharge): Promise<boolean> {
  if (ctx.settledBefore) return true;
  return ctx.store.settleJob(jobId, outcome, at, partly);
}

const isStoreDown = (error: unknown): boolean => isPictalkError(error) && error.code === 'store.unavailable';

/**
 * A write the store could not take (it was unreachable) done again every few seconds until it answers, for up to an
 * hour, so a job's quota and row do not wait for a restart's recovery.
 */
function whenStoreIsBack(ctx: CommandContext, jobId: string, what: string, write: () => Promise<void>, everyMs = 2000, forMs = 3_600_000): void {
  const until = Date.now() + forMs;
  const attempt = (): void => {
    write().then(
      () => ctx.log.warn(`wrote ${what} once the store was back`, { jobId }),
      (error: unknown) => {
        if (isStoreDown(error) && Date.now() < until) setTimeout(attempt, everyMs).unref();
        else ctx.log.warn(`could not write ${what}; a restart's recovery settles the job`, { jobId, error: String(error) });
      },
    );
  };
  setTimeout(attempt, everyMs).unref();
}

/**
 * A job cut short because the store could not be reached when it was to be settled (the requester is told "temporarily
 * unavailable, nothing was done"): refund it as soon as the store answers again. A job settled meanwhile (another front,
 * a recovery) is left as it is: settling is idempotent.
 */
export function refundWhenStoreIsBack(ctx: CommandContext, jobId: string, error: unknown): void {
  if (!isStoreDown(error)) return;
  whenStoreIsBack(ctx, jobId, 'the refund of a job cut short', async () => {
    const now = ctx.clock.now();
    if (await ctx.store.settleJob(jobId, 'refunded', now)) await ctx.store.updateJob(jobId, { state: 'failed', errorCode: 'store.unavailable' }, now);
  });
}

/**
 * The reply of a front that lost the settlement of a job to another front (`settleSuccess` returned false): nothing is
 * sent, and the adapter leaves the platform's messages to the other front, so the job is answered once.
 */
export function answeredElsewhere(ctx: CommandContext, jobId: string): Reply {
  ctx.log.warn('another process settled this job first and answers it; this one stays quiet', { jobId });
  return { text: '', silent: true, answeredElsewhere: true, jobId };
}

export async function settleFailure(ctx: CommandContext, jobId: string, error: unknown): Promise<Reply> {
  // another front follows the job now and settles and answers it: nothing to write, nothing to say
  if (isAnsweredElsewhere(error)) return answeredElsewhere(ctx, jobId);
  const now = ctx.clock.now();
  const code = isPictalkError(error) ? error.code : 'inference.failed';
  // answered again: a failure the stopped front settled stands (refunded then); a job it charged whose reply cannot be
  // given after all (its starting picture no longer kept, the model changed) gives its charge back, once
  if (ctx.settledBefore) {
    if ((await ctx.store.getJob(jobId))?.state !== 'succeeded') return { ...errorReply(error, { refunded: true }), jobId };
    const refunded = await ctx.store.refundCharge(jobId, now);
    if (refunded) await ctx.store.updateJob(jobId, { state: 'failed', errorCode: code }, now);
    return { ...errorReply(error, { refunded }), jobId };
  }
  const refunded = await ctx.store.settleJob(jobId, 'refunded', now);
  // settled already, and delivered: another front followed the same job and answered with its result
  if (!refunded && (await ctx.store.getJob(jobId))?.state === 'succeeded') return answeredElsewhere(ctx, jobId);
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
