/**
 * `cancel` and `delete` buttons/commands: allowed for the job's requester or a moderator of its space.
 * Cancel asks the core to stop; the job's own flow refunds and finishes its reply with "Cancelled".
 * Delete answers with a `delete` action: the adapter removes the messages it reported for the job.
 */
import { PictalkError } from '../../common/errors.js';
import type { CommandContext } from '../context.js';
import { isModerator } from '../policy/permissions.js';
import type { JobRecord } from '../store.js';
import type { Reply } from '../types.js';
import { findJob } from './job-lifecycle.js';

function requireRequesterOrModerator(ctx: CommandContext, job: JobRecord, verb: 'cancel' | 'delete'): boolean {
  const { actor } = ctx.request;
  if (job.requesterId === actor.userId) return false;
  if (isModerator(actor, ctx.config)) return true;
  throw new PictalkError('permission.denied', `Only the requester or a moderator may ${verb} job ${job.id}`, {
    command: verb, hint: `Only the person who asked for it or a moderator can ${verb} that.`,
  });
}

async function auditForeign(ctx: CommandContext, job: JobRecord, action: string): Promise<void> {
  await ctx.store.audit({
    spaceId: job.spaceId, actorId: ctx.request.actor.userId, action, target: `job ${job.id} of user ${job.requesterId}`,
    before: { state: job.state }, after: action === 'job.cancel' ? { state: 'cancelled' } : { deleted: true }, at: ctx.clock.now(),
  });
}

/**
 * Stop a job: through its handle when this process runs its command, else by its id through the port (a job another
 * process accepted; its own process then refunds it and finishes its reply).
 */
async function stop(ctx: CommandContext, job: JobRecord): Promise<boolean> {
  if (ctx.jobs.cancel(job.id)) return true;
  if (job.state !== 'queued' && job.state !== 'running') return false;
  return ctx.core.cancel(job.id);
}

export async function cancelCommand(ctx: CommandContext, jobId: string): Promise<Reply> {
  const job = await findJob(ctx, jobId);
  const asModerator = requireRequesterOrModerator(ctx, job, 'cancel');
  if (!(await stop(ctx, job))) {
    return { text: `Job ${job.id} has already finished (${job.state}); nothing to cancel.`, ephemeral: true };
  }
  if (asModerator) await auditForeign(ctx, job, 'job.cancel');
  return { text: `Cancelling job ${job.id}; its quota will be refunded.`, ephemeral: true };
}

export async function deleteCommand(ctx: CommandContext, jobId: string): Promise<Reply> {
  const job = await findJob(ctx, jobId);
  const asModerator = requireRequesterOrModerator(ctx, job, 'delete');
  // Deleting a job that is still running cancels it too: nobody should get the result of a message they removed.
  await stop(ctx, job);
  if (asModerator) await auditForeign(ctx, job, 'job.delete');
  return { text: 'Deleted.', ephemeral: true, action: { kind: 'delete', jobId: job.id, messageIds: [...job.messageIds] } };
}
