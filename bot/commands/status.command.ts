/** `/status`: the queue, your jobs in flight, your usage today, and the safety protection in force. Always ephemeral. */
import type { CommandContext } from '../context.js';
import { standing } from '../policy/quota.policy.js';
import { formatDuration, plural } from '../replies.js';
import type { Reply } from '../types.js';
import { describeProtection, safetyModeFor } from './safety.command.js';

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((sum, n) => sum + n, 0);

export async function statusCommand(ctx: CommandContext): Promise<Reply> {
  const { actor } = ctx.request;
  const now = ctx.clock.now();
  const lines: string[] = [];
  const stats = await ctx.core.stats?.();
  if (stats) lines.push(`Queue: ${total(stats.queued)} waiting, ${total(stats.running)} running.`);
  const mine = ctx.jobs.of(actor.spaceId, actor.userId);
  for (const job of mine) {
    const position = await job.handle?.position();
    const where = position === undefined || position < 0 ? 'finishing' : position === 0 ? 'running' : `waiting, position ${position}`;
    lines.push(`Your ${job.kind} job ${job.id}: ${where}.`);
  }
  if (mine.length === 0) lines.push('You have no jobs in the queue.');
  const [imagine, caption] = await Promise.all([
    standing(ctx.store, ctx.config, actor, 'imagine', now), standing(ctx.store, ctx.config, actor, 'caption', now),
  ]);
  lines.push(`Today you have used ${imagine.used} of ${plural(imagine.limit, 'imagine')} and ${caption.used} of ${plural(caption.limit, 'caption')}; ` +
    `it resets at 00:00 UTC (in ${formatDuration(imagine.resetsAt - now)}).`);
  const mode = await safetyModeFor(ctx.store, actor.spaceId, ctx.request.channelId);
  lines.push(describeProtection(ctx.safetyChecker, mode, ctx.request.ageRestricted === true));
  return { text: lines.join('\n'), ephemeral: true };
}
