/**
 * Slack auto-caption: images shared in an enabled channel are captioned without a command.
 * The setting lives per space under the key `autocaption:<channelId>`.
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { CommandContext } from '../context.js';
import { requireModerator } from '../policy/permissions.js';
import type { BotStore } from '../store.js';
import type { Reply } from '../types.js';

const PREFIX = 'autocaption:';

export const isAutoCaptionChannel = async (store: BotStore, spaceId: string, channelId: string): Promise<boolean> =>
  (await store.getSetting(spaceId, `${PREFIX}${channelId}`)) === '1';

export async function autoCaptionSetCommand(ctx: CommandContext, channelId: string, enabled: boolean): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'autocaption.set');
  if (typeof channelId !== 'string' || channelId.trim() === '') {
    throw new PictalkError('input.invalid', `Expected a channel id, got ${describe(channelId)}`);
  }
  if (typeof enabled !== 'boolean') throw new PictalkError('input.invalid', `Expected \`enabled\` to be true or false, got ${describe(enabled)}`);
  const channel = channelId.trim();
  const now = ctx.clock.now();
  const before = await isAutoCaptionChannel(ctx.store, actor.spaceId, channel);
  await ctx.store.setSetting(actor.spaceId, `${PREFIX}${channel}`, enabled ? '1' : undefined, actor.userId, now);
  await ctx.store.audit({ spaceId: actor.spaceId, actorId: actor.userId, action: 'autocaption.set', target: `channel ${channel}`, before: { enabled: before }, after: { enabled }, at: now });
  return { text: `Auto-caption is now ${enabled ? 'on' : 'off'} in channel ${channel}${before === enabled ? ' (unchanged)' : ''}.`, ephemeral: true };
}
