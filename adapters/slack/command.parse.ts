/**
 * Slack slash-command text into bot/'s commands. Pure: no network, no replies. Slack sends the text as typed, with
 * `&`, `<` and `>` escaped as HTML entities, and user mentions escaped as `<@U123|name>` when the command has
 * "Escape channels, users, and links" on (`should_escape: true` in the manifest).
 * @see https://docs.slack.dev/interactivity/implementing-slash-commands#app_command_handling
 */
import { IMAGINE_USAGE, parseImagineText, tokenizeCommand } from '../../bot/commands/command.text.js';
import { parseSettingsText, settingsUsage } from '../../bot/commands/settings.text.js';
import type { BotCommand, ImagineOptions, QuotaKind, QuotaTarget } from '../../bot/types.js';
import { PictalkError, describe } from '../../common/errors.js';

export { IMAGINE_USAGE };
export const QUOTA_USAGE =
  'Usage: `/pictalk-quota set @user|default imagine|caption N`, `/pictalk-quota show [@user]`, `/pictalk-quota reset @user`';
export const PICTALK_USAGE = `Usage: \`/pictalk\` (queue status and your usage) or \`/pictalk settings ...\`. ${settingsUsage('/pictalk settings')}`;
export const SAFETY_USAGE = 'Usage: `/pictalk safety` (the protection in force) or `/pictalk safety set withhold [#channel]`';
export const CAPTION_USAGE = 'Usage: `/pictalk-caption on|off` (auto-captioning of images shared in this channel)';

/** Slack's three escaped characters. @see https://docs.slack.dev/messaging/formatting-message-text#escaping */
export const unescapeSlack = (text: string): string => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The shared tokenizer (bot/commands/command.text.ts), re-exported for the moderation commands here. */
export const tokenize = tokenizeCommand;

/** `/imagine a red fox --seed 7 --negative "blurry, dark"`: the shared grammar, after Slack's escapes are undone. */
export function parseImagine(rawText: string): ImagineOptions {
  return parseImagineText(unescapeSlack(rawText), IMAGINE_USAGE);
}

/** `<@U123|name>`, `<@U123>` (escaped mentions) or a bare user id. */
export function parseUserMention(text: string): string | undefined {
  const match = /^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$/.exec(text) ?? /^([UW][A-Z0-9]{2,})$/.exec(text);
  return match?.[1];
}

function userTarget(text: string | undefined, usage: string): string {
  const id = text === undefined ? undefined : parseUserMention(text);
  if (id) return id;
  const hint = text?.startsWith('@') ? ' (Slack sent a plain name: the command needs "Escape channels, users, and links" turned on)' : '';
  throw new PictalkError('input.invalid', `Expected a user mention like @someone, got ${describe(text)}${hint}. ${usage}`);
}

function quotaKind(text: string | undefined): QuotaKind {
  if (text === 'imagine' || text === 'caption') return text;
  throw new PictalkError('input.invalid', `Expected \`imagine\` or \`caption\`, got ${describe(text)}. ${QUOTA_USAGE}`);
}

/** `/pictalk-quota set @user|default imagine|caption N`, `show [@user]`, `reset @user`. */
export function parseQuota(rawText: string): BotCommand {
  const words = tokenize(unescapeSlack(rawText)).map((token) => token.text);
  const [sub, ...rest] = words;
  switch (sub?.toLowerCase()) {
    case 'set': {
      if (rest.length !== 3) throw new PictalkError('input.invalid', `Expected \`set\` with a target, a kind and a limit, got ${describe(rest.join(' '))}. ${QUOTA_USAGE}`);
      const [who, kindText, limitText] = rest as [string, string, string];
      const target: QuotaTarget = who.toLowerCase() === 'default' ? { kind: 'default' } : { kind: 'user', id: userTarget(who, QUOTA_USAGE) };
      if (!/^\d+$/.test(limitText)) throw new PictalkError('input.invalid', `Expected the limit to be a whole number, got ${describe(limitText)}. ${QUOTA_USAGE}`);
      return { name: 'quota.set', target, kind: quotaKind(kindText.toLowerCase()), limit: Number(limitText) };
    }
    case 'show': {
      if (rest.length > 1) throw new PictalkError('input.invalid', `Expected \`show\` with at most one user, got ${describe(rest.join(' '))}. ${QUOTA_USAGE}`);
      const command: BotCommand = { name: 'quota.show' };
      if (rest[0] !== undefined) command.target = { kind: 'user', id: userTarget(rest[0], QUOTA_USAGE) };
      return command;
    }
    case 'reset': {
      if (rest.length !== 1) throw new PictalkError('input.invalid', `Expected \`reset\` with one user, got ${describe(rest.join(' '))}. ${QUOTA_USAGE}`);
      return { name: 'quota.reset', target: { kind: 'user', id: userTarget(rest[0], QUOTA_USAGE) } };
    }
    default:
      throw new PictalkError('input.invalid', `Expected a subcommand set, show or reset, got ${describe(sub)}. ${QUOTA_USAGE}`);
  }
}

/** `/pictalk` alone: status; `/pictalk settings ...`: personal settings and, for admins, the workspace's. */
export function parsePictalk(rawText: string): BotCommand {
  const text = unescapeSlack(rawText).trim();
  if (text === '' || text.toLowerCase() === 'status') return { name: 'status' };
  const match = /^settings(?:\s+|$)(.*)$/is.exec(text);
  if (match) return parseSettingsText(match[1] ?? '', '/pictalk settings');
  const safety = /^safety(?:\s+|$)(.*)$/is.exec(text);
  if (safety) return parseSafety(safety[1] ?? '');
  throw new PictalkError('input.invalid', `Expected nothing, \`status\` or \`settings ...\`, got ${describe(text)}. ${PICTALK_USAGE}`);
}

/** `<#C123|name>`, `<#C123>` (an escaped channel mention) or a bare channel id. */
export function parseChannelMention(text: string): string | undefined {
  const match = /^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$/.exec(text) ?? /^([CG][A-Z0-9]{2,})$/.exec(text);
  return match?.[1];
}

/**
 * `/pictalk safety [show]` and `/pictalk safety set withhold [#channel]` (moderators). Slack has no spoilers, so an
 * image the safety checker flags is always withheld there: `spoiler` is refused with that reason.
 */
function parseSafety(text: string): BotCommand {
  const words = tokenize(text).map((token) => token.text);
  const [sub, mode, channel, ...extra] = words;
  if (sub === undefined || (sub.toLowerCase() === 'show' && mode === undefined)) return { name: 'safety.show' };
  if (sub.toLowerCase() !== 'set') throw new PictalkError('input.invalid', `Expected \`show\` or \`set\`, got ${describe(sub)}. ${SAFETY_USAGE}`);
  if (mode?.toLowerCase() === 'spoiler') {
    throw new PictalkError('input.invalid', `Slack has no spoilers, so images the safety checker flags are always withheld here. ${SAFETY_USAGE}`);
  }
  if (mode?.toLowerCase() !== 'withhold' || extra.length > 0) {
    throw new PictalkError('input.invalid', `Expected \`set withhold\` and at most one channel, got ${describe(words.slice(1).join(' '))}. ${SAFETY_USAGE}`);
  }
  if (channel === undefined) return { name: 'safety.set', mode: 'withhold' };
  const channelId = parseChannelMention(channel);
  if (!channelId) throw new PictalkError('input.invalid', `Expected a channel mention like #general, got ${describe(channel)}. ${SAFETY_USAGE}`);
  return { name: 'safety.set', mode: 'withhold', channelId };
}

/** `/pictalk-caption on|off` for the channel the command was typed in. */
export function parseAutoCaption(rawText: string, channelId: string): BotCommand {
  const word = rawText.trim().toLowerCase();
  if (word === 'on' || word === 'off') return { name: 'autocaption.set', channelId, enabled: word === 'on' };
  throw new PictalkError('input.invalid', `Expected \`on\` or \`off\`, got ${describe(rawText.trim())}. ${CAPTION_USAGE}`);
}
