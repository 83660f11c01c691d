/**
 * Moderator safety commands: what an image the model folder's safety checker flags becomes. `withhold` (the default)
 * never posts it and refunds its quota; `spoiler` sends it behind a spoiler, but only in an age-restricted channel
 * (Discord's `channel.nsfw`), and withholds it everywhere else. Kept per space under `safety.mode`, and per channel
 * under `safety.mode.channel:<channelId>`, which wins over the space's; changes are audited.
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { CommandContext } from '../context.js';
import { requireModerator } from '../policy/permissions.js';
import type { BotStore } from '../store.js';
import { SAFETY_MODES, type Reply, type SafetyMode } from '../types.js';

const SPACE_KEY = 'safety.mode';
const CHANNEL_PREFIX = 'safety.mode.channel:';

const asMode = (value: string | undefined): SafetyMode | undefined => (SAFETY_MODES as readonly string[]).includes(value ?? '') ? value as SafetyMode : undefined;

/** The mode for a channel: its own setting, else the space's, else `withhold`. */
export async function safetyModeFor(store: BotStore, spaceId: string, channelId: string): Promise<SafetyMode> {
  const channel = asMode(await store.getSetting(spaceId, `${CHANNEL_PREFIX}${channelId}`));
  return channel ?? asMode(await store.getSetting(spaceId, SPACE_KEY)) ?? 'withhold';
}

/** What a flagged image becomes in this request's channel: a spoiler only in spoiler mode and an age-restricted channel. */
export async function flaggedImagesBecome(ctx: CommandContext, ageRestricted: boolean): Promise<'withheld' | 'spoiler'> {
  const mode = await safetyModeFor(ctx.store, ctx.request.actor.spaceId, ctx.request.channelId);
  return mode === 'spoiler' && ageRestricted ? 'spoiler' : 'withheld';
}

/** One line on the protection in force: the model folder's checker (or none, or unknown here) and the mode. */
export function describeProtection(checker: boolean | undefined, mode: SafetyMode, ageRestricted: boolean): string {
  const what = mode === 'spoiler'
    ? `flagged images are sent as spoilers in age-restricted channels and withheld elsewhere${ageRestricted ? ' (this channel is age-restricted)' : ''}`
    : 'flagged images are withheld and their quota refunded';
  if (checker === false) return 'Safety: the model has no safety checker, so images are not checked.';
  if (checker === undefined) return `Safety: the inference workers' model folder decides whether images are checked; ${what}.`;
  return `Safety: the model's safety checker is on; ${what}.`;
}

export async function safetySetCommand(ctx: CommandContext, mode: SafetyMode, channelId?: string): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'safety.set');
  if (!asMode(mode)) throw new PictalkError('input.invalid', `Expected \`mode\` to be one of ${SAFETY_MODES.join(', ')}, got ${describe(mode)}`);
  if (channelId !== undefined && (typeof channelId !== 'string' || channelId.trim() === '')) {
    throw new PictalkError('input.invalid', `Expected a channel id, got ${describe(channelId)}`);
  }
  const channel = channelId?.trim();
  const key = channel ? `${CHANNEL_PREFIX}${channel}` : SPACE_KEY;
  const now = ctx.clock.now();
  const before = asMode(await ctx.store.getSetting(actor.spaceId, key)) ?? null;
  await ctx.store.setSetting(actor.spaceId, key, mode, actor.userId, now);
  await ctx.store.audit({
    spaceId: actor.spaceId, actorId: actor.userId, action: 'safety.set', target: channel ? `channel ${channel}` : 'space',
    before: { mode: before }, after: { mode }, at: now,
  });
  const where = channel ? `in channel ${channel}` : 'in this space';
  const what = mode === 'spoiler' ? 'sent as spoilers when the channel is age-restricted, and withheld otherwise' : 'withheld, and their quota refunded';
  return { text: `Images the safety checker flags are now ${what}, ${where}${before === mode ? ' (unchanged)' : ''}.`, ephemeral: true };
}

export async function safetyShowCommand(ctx: CommandContext): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'safety.show');
  const space = asMode(await ctx.store.getSetting(actor.spaceId, SPACE_KEY)) ?? 'withhold';
  const channels = (await ctx.store.listSettings(actor.spaceId, CHANNEL_PREFIX))
    .filter((entry) => asMode(entry.value))
    .map((entry) => `• channel ${entry.key.slice(CHANNEL_PREFIX.length)}: ${entry.value}`);
  const here = await safetyModeFor(ctx.store, actor.spaceId, ctx.request.channelId);
  return {
    text: [
      describeProtection(ctx.safetyChecker, here, ctx.request.ageRestricted === true),
      `Space mode: ${space}.`,
      ...(channels.length > 0 ? ['Channel modes:', ...channels] : ['No channel has its own mode.']),
    ].join('\n'),
    ephemeral: true,
  };
}
