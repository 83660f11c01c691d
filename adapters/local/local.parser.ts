/**
 * The terminal's command language, the same commands as the chat platforms:
 *   /imagine <prompt> [--seed N] [--steps N] [--guidance X] [--count N] [--scheduler NAME] [--negative "text"]
 *     [--image FILE [--strength X]]  (image-to-image from a picture file; strength 0 < X <= 1)
 *   /caption <file> [--no-voice]      /status      /cancel <job>   /reroll <job>   /vary <job> [n]   /delete <job>
 *   /quota show [default|role:<id>|user:<id>]      /quota set <imagine|caption> <limit> [default|role:<id>|user:<id>]
 *   /quota reset <user>               /blocklist add|remove <pattern>   /blocklist list
 *   /autocaption <channel> on|off     /safety [show] | set withhold|spoiler [channel]     /help        /quit
 *   /settings [show] | set <key> <value> | reset [key] | server show|set <key> <value>|reset [key]
 * `/imagine` reads the grammar Slack reads too (bot/commands/command.text.ts); other values are passed on as typed.
 */
import { IMAGINE_FLAGS, IMAGINE_USAGE, parseFlags, tokenizeCommand } from '../../bot/commands/command.text.js';
import type { OptionSpec } from '../../bot/commands/option.spec.js';
import { parseSettingsText, settingsUsage } from '../../bot/commands/settings.text.js';
import type { BotCommand, ImagineOptions, QuotaKind, QuotaTarget } from '../../bot/types.js';
import { PictalkError, describe, isPictalkError } from '../../common/errors.js';

export type ParsedLine =
  | { kind: 'command'; command: BotCommand }
  | { kind: 'caption'; path: string; voice?: boolean }  // the adapter turns the file into an attachment; no flag: the `voice` setting
  | { kind: 'imagine'; options: ImagineOptions; imagePath: string }  // /imagine --image FILE: the file becomes `options.image`
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'empty' }
  | { kind: 'error'; message: string };

/** The terminal's own `/imagine` flags: a picture file to start from and the strength (a chat sends an attachment). */
const TERMINAL_FLAGS: readonly OptionSpec[] = [
  ...IMAGINE_FLAGS,
  { name: 'image', type: 'string', description: 'A picture file to start from (image-to-image)' },
  { name: 'strength', type: 'number', description: 'With --image: how far from the picture to go', min: 0, max: 1 },
];

const TERMINAL_IMAGINE_USAGE = IMAGINE_USAGE.replace(/`$/, ' [--image FILE [--strength X]]`');

export const HELP = [
  'Commands:',
  `  ${TERMINAL_IMAGINE_USAGE.replace(/^Usage: `|`$/g, '')}`,
  '  /caption <file> [--voice|--no-voice]   (default: your `voice` setting, else on)',
  '  /reroll <job>   /vary <job> [n]   /cancel <job>   /delete <job>   /status   (/vary: image-to-image from image n, default 1)',
  '  /quota show [default|role:<id>|user:<id>]',
  '  /quota set <imagine|caption> <limit> [default|role:<id>|user:<id>]   (default target: default)',
  '  /quota reset <user>',
  '  /blocklist add <pattern>   /blocklist remove <pattern>   /blocklist list',
  '  /autocaption <channel> on|off',
  '  /safety [show]   /safety set withhold|spoiler [channel]   (what images the safety checker flags become)',
  `  ${settingsUsage('/settings').replace(/^Usage: /, '')}`,
  '  /help   /quit',
].join('\n');

/** Split on spaces, keeping quoted parts together (the shared tokenizer of bot/commands/command.text.ts). */
export function tokenize(text: string): string[] {
  return tokenizeCommand(text).map((token) => token.text);
}

const numberOrText = (text: string): number | string => (/^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text);

/** `/imagine`: the grammar Slack uses too, with --image and --strength; its refusals become this line's error. */
function parseImagine(rest: string): ParsedLine {
  try {
    const { words, options } = parseFlags(rest, TERMINAL_FLAGS, '/imagine', TERMINAL_IMAGINE_USAGE);
    const prompt = words.join(' ').trim();
    if (prompt === '') throw new PictalkError('input.invalid', `Expected a prompt to draw, got none. ${TERMINAL_IMAGINE_USAGE}`, { option: 'prompt' });
    const { image, ...flags } = options;
    const imagine = { prompt, ...flags } as ImagineOptions;
    return typeof image === 'string' ? { kind: 'imagine', options: imagine, imagePath: image } : { kind: 'command', command: { name: 'imagine', options: imagine } };
  } catch (error) {
    if (isPictalkError(error)) return { kind: 'error', message: error.message };
    throw error;
  }
}

function parseTarget(text: string | undefined): QuotaTarget | string {
  if (text === undefined || text === 'default') return { kind: 'default' };
  const match = /^(user|role):(.+)$/.exec(text);
  if (!match) return `Expected a quota target \`default\`, \`role:<id>\` or \`user:<id>\`, got \`${text}\``;
  return { kind: match[1] as 'user' | 'role', id: match[2]! };
}

function parseQuota(args: string[]): ParsedLine {
  const [sub, ...rest] = args;
  if (sub === 'show') {
    if (rest[0] === undefined) return { kind: 'command', command: { name: 'quota.show' } };
    const target = parseTarget(rest[0]);
    return typeof target === 'string' ? { kind: 'error', message: target } : { kind: 'command', command: { name: 'quota.show', target } };
  }
  if (sub === 'set') {
    const [kind, limit, targetText] = rest;
    if (kind === undefined || limit === undefined) return { kind: 'error', message: 'Usage: /quota set <imagine|caption> <limit> [default|role:<id>|user:<id>]' };
    const target = parseTarget(targetText);
    if (typeof target === 'string') return { kind: 'error', message: target };
    return { kind: 'command', command: { name: 'quota.set', target, kind: kind as QuotaKind, limit: numberOrText(limit) as number } };
  }
  if (sub === 'reset') {
    const user = rest[0]?.replace(/^user:/, '');
    if (!user) return { kind: 'error', message: 'Usage: /quota reset <user>' };
    return { kind: 'command', command: { name: 'quota.reset', target: { kind: 'user', id: user } } };
  }
  return { kind: 'error', message: 'Usage: /quota show|set|reset ...' };
}

export function parseLine(line: string): ParsedLine {
  const text = line.trim();
  if (text === '') return { kind: 'empty' };
  const match = /^\/(\S+)\s*(.*)$/s.exec(text);
  if (!match) return { kind: 'error', message: 'Commands start with a slash; try /help' };
  const name = match[1]!.toLowerCase();
  const rest = match[2] ?? '';
  const args = tokenize(rest);
  const jobCommand = (command: 'cancel' | 'reroll' | 'delete'): ParsedLine =>
    args[0] === undefined ? { kind: 'error', message: `Usage: /${command} <job>` } : { kind: 'command', command: { name: command, jobId: args[0] } };
  switch (name) {
    case 'imagine': return parseImagine(rest);
    case 'caption': {
      const voice = args.includes('--no-voice') ? false : args.includes('--voice') ? true : undefined;
      const path = args.filter((arg) => arg !== '--no-voice' && arg !== '--voice')[0];
      if (path === undefined) return { kind: 'error', message: 'Usage: /caption <file> [--voice|--no-voice]' };
      return voice === undefined ? { kind: 'caption', path } : { kind: 'caption', path, voice };
    }
    case 'settings':
      try {
        return { kind: 'command', command: parseSettingsText(rest, '/settings') };
      } catch (error) {
        if (isPictalkError(error)) return { kind: 'error', message: error.message };
        throw error;
      }
    case 'status': return { kind: 'command', command: { name: 'status' } };
    case 'cancel': case 'reroll': case 'delete': return jobCommand(name);
    case 'vary': {
      if (args[0] === undefined || args.length > 2) return { kind: 'error', message: 'Usage: /vary <job> [n]   (n: which image of the job, default 1)' };
      if (args[1] === undefined) return { kind: 'command', command: { name: 'vary', jobId: args[0] } };
      const index = /^\d{1,3}$/.test(args[1]) ? Number(args[1]) : Number.NaN;
      if (!(index >= 1)) return { kind: 'error', message: `Expected the image number to be a whole number from 1, got ${describe(args[1])}. Usage: /vary <job> [n]` };
      return { kind: 'command', command: { name: 'vary', jobId: args[0], index } };
    }
    case 'quota': return parseQuota(args);
    case 'blocklist': {
      const sub = args[0];
      if (sub === 'list') return { kind: 'command', command: { name: 'blocklist.list' } };
      // The pattern is the raw rest of the line: a regex may contain quotes and spaces.
      const pattern = rest.replace(/^\s*\S+\s*/, '');
      if ((sub === 'add' || sub === 'remove') && pattern !== '') return { kind: 'command', command: { name: `blocklist.${sub}`, pattern } };
      return { kind: 'error', message: 'Usage: /blocklist add <pattern> | /blocklist remove <pattern> | /blocklist list' };
    }
    case 'autocaption': {
      const [channelId, state] = args;
      if (channelId === undefined || (state !== 'on' && state !== 'off')) return { kind: 'error', message: 'Usage: /autocaption <channel> on|off' };
      return { kind: 'command', command: { name: 'autocaption.set', channelId, enabled: state === 'on' } };
    }
    case 'safety': {
      const [sub, mode, channelId, ...extra] = args;
      if (sub === undefined || (sub === 'show' && mode === undefined)) return { kind: 'command', command: { name: 'safety.show' } };
      if (sub !== 'set' || (mode !== 'withhold' && mode !== 'spoiler') || extra.length > 0) {
        return { kind: 'error', message: 'Usage: /safety [show] | /safety set withhold|spoiler [channel]' };
      }
      return { kind: 'command', command: { name: 'safety.set', mode, ...(channelId !== undefined ? { channelId } : {}) } };
    }
    case 'help': return { kind: 'help' };
    case 'quit': case 'exit': return { kind: 'quit' };
    default: return { kind: 'error', message: `Unknown command /${name}; try /help` };
  }
}
