/** Moderator quota commands: set a daily limit (space default, role, user), show limits, reset a user's day. Audited. */
import { PictalkError, describe } from '../../common/errors.js';
import type { CommandContext } from '../context.js';
import { QUOTA_KIND_OPTION, QUOTA_LIMIT_OPTION, checkOption } from './option.spec.js';
import { requireModerator } from '../policy/permissions.js';
import { targetLabel, utcDay } from '../policy/quota.policy.js';
import { plural } from '../replies.js';
import type { QuotaKind, QuotaTarget, Reply } from '../types.js';

const KINDS = QUOTA_KIND_OPTION.choices as readonly QuotaKind[];

function checkTarget(target: unknown): QuotaTarget {
  const t = target as QuotaTarget | undefined;
  if (t && t.kind === 'default') return { kind: 'default' };
  if (t && (t.kind === 'user' || t.kind === 'role') && typeof t.id === 'string' && t.id.trim() !== '') {
    return { kind: t.kind, id: t.id.trim() };
  }
  throw new PictalkError('input.invalid', `Expected a quota target (the space default, a role or a user), got ${describe(JSON.stringify(target))}`);
}

function checkKind(kind: unknown): QuotaKind {
  return checkOption(QUOTA_KIND_OPTION, kind) as QuotaKind;
}

export async function quotaSetCommand(ctx: CommandContext, target: QuotaTarget, kind: QuotaKind, limit: number): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'quota.set');
  const t = checkTarget(target);
  const k = checkKind(kind);
  checkOption(QUOTA_LIMIT_OPTION, limit);
  const now = ctx.clock.now();
  const before = await ctx.store.getLimit(actor.spaceId, t, k);
  await ctx.store.setLimit(actor.spaceId, t, k, limit, actor.userId, now);
  await ctx.store.audit({
    spaceId: actor.spaceId, actorId: actor.userId, action: 'quota.set', target: `${targetLabel(t)} ${k}`,
    before: before === undefined ? null : { limit: before }, after: { limit }, at: now,
  });
  const was = before === undefined ? 'not set before' : `was ${before}`;
  return { text: `Daily ${k} limit for ${targetLabel(t)} is now ${limit} (${was}).`, ephemeral: true };
}

export async function quotaShowCommand(ctx: CommandContext, target?: QuotaTarget): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'quota.show');
  const defaults = ctx.config.defaultDailyLimits;
  const lines: string[] = [];
  if (target === undefined) {
    const rows = await ctx.store.listLimits(actor.spaceId);
    lines.push(`Built-in defaults: ${plural(defaults.imagine, 'imagine')}, ${plural(defaults.caption, 'caption')} a day.`);
    if (rows.length === 0) lines.push('No limits are set in this space.');
    for (const row of rows) lines.push(`${targetLabel(row.target)}: ${plural(row.limit, row.kind)} a day (set by ${row.updatedBy}).`);
    return { text: lines.join('\n'), ephemeral: true };
  }
  const t = checkTarget(target);
  for (const kind of KINDS) {
    const limit = await ctx.store.getLimit(actor.spaceId, t, kind);
    lines.push(`${targetLabel(t)} ${kind}: ${limit === undefined ? 'not set' : `${plural(limit, kind)} a day`}.`);
  }
  if (t.kind === 'user') {
    const day = utcDay(ctx.clock.now());
    for (const kind of KINDS) {
      const usage = await ctx.store.usage(actor.spaceId, t.id, kind, day);
      lines.push(`Used today (${kind}): ${usage.charged} charged, ${usage.reserved} in flight, ${usage.refunded} refunded.`);
    }
  }
  return { text: lines.join('\n'), ephemeral: true };
}

export async function quotaResetCommand(ctx: CommandContext, target: { kind: 'user'; id: string }): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'quota.reset');
  const t = checkTarget(target);
  if (t.kind !== 'user') throw new PictalkError('input.invalid', `Expected a user to reset, got ${targetLabel(t)}`);
  const now = ctx.clock.now();
  const day = utcDay(now);
  const charged = async (): Promise<Record<QuotaKind, number>> => Object.fromEntries(await Promise.all(
    KINDS.map(async (kind) => [kind, (await ctx.store.usage(actor.spaceId, t.id, kind, day)).charged] as const))) as Record<QuotaKind, number>;
  const before = await charged();
  const rows = await ctx.store.resetUsage(actor.spaceId, t.id, day, `reset by ${actor.userId}`, now);
  const after = await charged();
  await ctx.store.audit({ spaceId: actor.spaceId, actorId: actor.userId, action: 'quota.reset', target: targetLabel(t), before, after, at: now });
  return {
    text: rows === 0 ? `User ${t.id} has used nothing today; nothing to reset.`
      : `Reset today's usage for user ${t.id} (${before.imagine} images, ${before.caption} captions given back).`,
    ephemeral: true,
  };
}
