/**
 * The terminal's command language, the same commands as the chat platforms:
 *   /imagine <prompt> [--seed N] [--steps N] [--guidance X] [--count N] [--scheduler NAME] [--negative "text"]
 *   /caption <file> [--no-voice]      /status      /cancel <job>   /reroll <job>   /delete <job>
 *   /quota show [default|role:<id>|user:<id>]      /quota set <imagine|caption> <limit> [default|role:<id>|user:<id>]
 *   /quota reset <user>               /blocklist add|remove <pattern>   /blocklist list
 *   /autocaption <channel> on|off     /help        /quit
 * `/imagine` reads the grammar Slack reads too (bot/commands/command.text.ts); other values are passed on as typed.
 */
import { IMAGINE_USAGE, parseImagineText, tokenizeCommand } from '../../bot/commands/command.text.js';
import type { BotCommand, QuotaKind, QuotaTarget } from '../../bot/types.js';
import { isPictalkError } from '../../common/errors.js';

export type ParsedLine =
  | { kind: 'command'; command: BotCommand }
  | { kind: 'caption'; path: string; voice: boolean }   // the adapter turns the file into an attachment
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'empty' }
  | { kind: 'error'; message: string };

export const HELP = [
  'Commands:',
  `  ${IMAGINE_USAGE.replace(/^Usage: `|`$/g, '')}`,
  '  /caption <file> [--no-voice]',
  '  /reroll <job>   /cancel <job>   /delete <job>   /status',
  '  /quota show [default|role:<id>|user:<id>]',
  '  /quota set <imagine|caption> <limit> [default|role:<id>|user:<id>]   (default target: default)',
  '  /quota reset <user>',
  '  /blocklist add <pattern>   /blocklist remove <pattern>   /blocklist list',
  '  /autocaption <channel> on|off',
  '  /help   /quit',
].join('\n');

/** Split on spaces, keeping quoted parts together (the shared tokenizer of bot/commands/command.text.ts). */
export function tokenize(text: string): string[] {
  return tokenizeCommand(text).map((token) => token.text);
}

const numberOrText = (text: string): number | string => (/^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text);

/** `/imagine`: the grammar Slack uses too; its refusals become this line's error. */
function parseImagine(rest: string): ParsedLine {
  try {
    return { kind: 'command', command: { name: 'imagine', options: parseImagineText(rest, IMAGINE_USAGE) } };
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
      const voice = !args.includes('--no-voice');
      const path = args.filter((arg) => arg !== '--no-voice')[0];
      return path === undefined ? { kind: 'error', message: 'Usage: /caption <file> [--no-voice]' } : { kind: 'caption', path, voice };
    }
    case 'status': return { kind: 'command', command: { name: 'status' } };
    case 'cancel': case 'reroll': case 'delete': return jobCommand(name);
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
    case 'help': return { kind: 'help' };
    case 'quit': case 'exit': return { kind: 'quit' };
    default: return { kind: 'error', message: `Unknown command /${name}; try /help` };
  }
}
