/**
 * Slack slash-command text into bot/'s commands. Pure: no network, no replies. Slack sends the text as typed, with
 * `&`, `<` and `>` escaped as HTML entities, and user mentions escaped as `<@U123|name>` when the command has
 * "Escape channels, users, and links" on (`should_escape: true` in the manifest).
 * @see https://docs.slack.dev/interactivity/implementing-slash-commands#app_command_handling
 */
import type { BotCommand, ImagineOptions, QuotaKind, QuotaTarget } from '../../bot/types.js';
import { PictalkError, describe } from '../../common/errors.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../../inference/types.js';

export const IMAGINE_USAGE =
  'Usage: `/imagine <prompt> [--seed N] [--steps N] [--guidance X] [--count N] [--scheduler NAME] [--negative "..."]`';
export const QUOTA_USAGE =
  'Usage: `/pictalk-quota set @user|default imagine|caption N`, `/pictalk-quota show [@user]`, `/pictalk-quota reset @user`';
export const CAPTION_USAGE = 'Usage: `/pictalk-caption on|off` (auto-captioning of images shared in this channel)';

/** Slack's three escaped characters. @see https://docs.slack.dev/messaging/formatting-message-text#escaping */
export const unescapeSlack = (text: string): string => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

interface Token { text: string; quoted: boolean }

/** Split on whitespace, keeping "double-quoted" and “curly-quoted” runs (macOS turns typed quotes curly) as one token. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const pattern = /"([^"]*)"|“([^”]*)”|(\S+)/g;
  for (const match of text.matchAll(pattern)) {
    const quoted = match[1] ?? match[2];
    tokens.push(quoted !== undefined ? { text: quoted, quoted: true } : { text: match[3]!, quoted: false });
  }
  return tokens;
}

type FlagKind = 'integer' | 'number' | 'scheduler' | 'text';
const IMAGINE_FLAGS: Record<string, { key: keyof ImagineOptions; kind: FlagKind }> = {
  seed: { key: 'seed', kind: 'integer' },
  steps: { key: 'steps', kind: 'integer' },
  guidance: { key: 'guidance', kind: 'number' },
  count: { key: 'count', kind: 'integer' },
  scheduler: { key: 'scheduler', kind: 'scheduler' },
  negative: { key: 'negative', kind: 'text' },
};
const FLAG_LIST = Object.keys(IMAGINE_FLAGS).map((name) => `--${name}`).join(', ');

function flagValue(flag: string, kind: FlagKind, raw: string): number | string {
  switch (kind) {
    case 'integer':
      if (!/^-?\d+$/.test(raw)) throw new PictalkError('input.invalid', `Expected \`--${flag}\` to be an integer, got ${describe(raw)}`, { option: flag });
      return Number(raw);
    case 'number': {
      const value = /^-?(\d+\.?\d*|\.\d+)$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isFinite(value)) throw new PictalkError('input.invalid', `Expected \`--${flag}\` to be a number, got ${describe(raw)}`, { option: flag });
      return value;
    }
    case 'scheduler': {
      const name = raw.toLowerCase();
      if (!(SCHEDULER_NAMES as readonly string[]).includes(name)) {
        throw new PictalkError('input.invalid', `Expected \`--${flag}\` to be one of ${SCHEDULER_NAMES.join(', ')}, got ${describe(raw)}`, { option: flag });
      }
      return name as SchedulerName;
    }
    case 'text':
      return raw;
  }
}

/**
 * `/imagine a red fox --seed 7 --negative "blurry, dark"`. Flags may come anywhere and as `--flag=value`; the words
 * that are not flags, in order, make the prompt. Ranges are bot/'s to check; this only checks types and names.
 */
export function parseImagine(rawText: string): ImagineOptions {
  const tokens = tokenize(unescapeSlack(rawText));
  const words: string[] = [];
  const options: Record<string, unknown> = {};
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i]!;
    // An em dash: Slack clients and macOS turn a typed `--` into `—`.
    const flagMatch = token.quoted ? null : /^(?:--|—)([A-Za-z-]+)(?:=(.*))?$/.exec(token.text);
    if (!flagMatch) {
      words.push(token.text);
      continue;
    }
    const flag = flagMatch[1]!.toLowerCase();
    const spec = IMAGINE_FLAGS[flag];
    if (!spec) throw new PictalkError('input.invalid', `Unknown option \`--${flag}\`; /imagine knows ${FLAG_LIST}. ${IMAGINE_USAGE}`, { option: flag });
    if (spec.key in options) throw new PictalkError('input.invalid', `The option \`--${flag}\` is given twice. ${IMAGINE_USAGE}`, { option: flag });
    let raw = flagMatch[2];
    if (raw === undefined) {
      const next = tokens[i + 1];
      if (!next || (!next.quoted && /^(--|—)[A-Za-z]/.test(next.text))) {
        throw new PictalkError('input.invalid', `The option \`--${flag}\` needs a value. ${IMAGINE_USAGE}`, { option: flag });
      }
      raw = next.text;
      i += 1;
    }
    options[spec.key] = flagValue(flag, spec.kind, raw);
  }
  const prompt = words.join(' ').trim();
  if (prompt === '') throw new PictalkError('input.invalid', `Expected a prompt to draw, got none. ${IMAGINE_USAGE}`);
  return { prompt, ...options } as ImagineOptions;
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

/** `/pictalk-caption on|off` for the channel the command was typed in. */
export function parseAutoCaption(rawText: string, channelId: string): BotCommand {
  const word = rawText.trim().toLowerCase();
  if (word === 'on' || word === 'off') return { name: 'autocaption.set', channelId, enabled: word === 'on' };
  throw new PictalkError('input.invalid', `Expected \`on\` or \`off\`, got ${describe(rawText.trim())}. ${CAPTION_USAGE}`);
}
