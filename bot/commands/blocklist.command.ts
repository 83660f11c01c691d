/** Moderator blocklist commands. Patterns are validated before they are stored; changes are audited. */
import { PictalkError } from '../../common/errors.js';
import type { CommandContext } from '../context.js';
import { parseBlockPattern } from '../policy/content.policy.js';
import { requireModerator } from '../policy/permissions.js';
import type { Reply } from '../types.js';

export async function blocklistAddCommand(ctx: CommandContext, pattern: string): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'blocklist.add');
  const parsed = parseBlockPattern(pattern);
  const now = ctx.clock.now();
  const added = await ctx.store.addBlockPattern(actor.spaceId, parsed.source, actor.userId, now);
  if (!added) return { text: `\`${parsed.source}\` is already on the blocklist.`, ephemeral: true };
  await ctx.store.audit({ spaceId: actor.spaceId, actorId: actor.userId, action: 'blocklist.add', target: parsed.source, before: null, after: { pattern: parsed.source }, at: now });
  return { text: `Added \`${parsed.source}\` to the blocklist (${parsed.kind}).`, ephemeral: true };
}

export async function blocklistRemoveCommand(ctx: CommandContext, pattern: string): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'blocklist.remove');
  // Normalise the way `add` did, so `Foo` removes the stored `foo`; a pattern that no longer parses is removed verbatim.
  let source = typeof pattern === 'string' ? pattern.trim() : '';
  try {
    source = parseBlockPattern(pattern).source;
  } catch {
    // keep the trimmed text
  }
  if (source === '') throw new PictalkError('input.invalid', 'Expected a blocklist pattern to remove, got an empty one');
  const now = ctx.clock.now();
  if (!(await ctx.store.removeBlockPattern(actor.spaceId, source))) {
    return { text: `\`${source}\` is not on the blocklist.`, ephemeral: true };
  }
  await ctx.store.audit({ spaceId: actor.spaceId, actorId: actor.userId, action: 'blocklist.remove', target: source, before: { pattern: source }, after: null, at: now });
  return { text: `Removed \`${source}\` from the blocklist.`, ephemeral: true };
}

export async function blocklistListCommand(ctx: CommandContext): Promise<Reply> {
  const { actor } = ctx.request;
  requireModerator(actor, ctx.config, 'blocklist.list');
  const entries = await ctx.store.listBlockPatterns(actor.spaceId);
  if (entries.length === 0) return { text: 'The blocklist is empty.', ephemeral: true };
  return { text: ['Blocklist:', ...entries.map((entry) => `• \`${entry.pattern}\` (added by ${entry.addedBy})`)].join('\n'), ephemeral: true };
}
