/**
 * The typed form of `/settings` (Slack: `/pictalk settings ...`; the terminal: `/settings ...`), one grammar for both:
 *   show | set <key> <value> | reset [key] | server show | server set <key> <value> | server reset [key]
 * One key per `set`; its value is the rest of the line (`set negative blurry, dark`). Keys and values are checked by bot/ (bot/user.settings.ts), so a refusal reads the same on every platform.
 * Pure: no I/O.
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { BotCommand, SettingsScope } from '../types.js';
import { LIMIT_KEYS, SETTING_KEYS } from '../user.settings.js';
import { tokenizeCommand } from './command.text.js';

/** The usage line, for the command as the platform spells it (`/pictalk settings`, `/settings`). */
export function settingsUsage(command: string): string {
  return `Usage: \`${command} show\`, \`${command} set <key> <value>\`, \`${command} reset [key]\`, ` +
    `and for moderators \`${command} server show|set <key> <value>|reset [key]\`; keys: ${SETTING_KEYS.join(', ')} ` +
    `(server also ${LIMIT_KEYS.join(', ')})`;
}

/** `/settings` text into bot/'s command; an empty text shows the settings. */
export function parseSettingsText(text: string, command: string): BotCommand {
  const usage = settingsUsage(command);
  const tokens = tokenizeCommand(text);
  let scope: SettingsScope = 'user';
  if (tokens[0] && !tokens[0].quoted && tokens[0].text.toLowerCase() === 'server') {
    scope = 'server';
    tokens.shift();
  }
  const [sub, ...rest] = tokens;
  switch (sub?.text.toLowerCase()) {
    case undefined:
    case 'show':
      if (rest.length > 0) throw new PictalkError('input.invalid', `Expected \`show\` alone, got ${describe(rest.map((t) => t.text).join(' '))}. ${usage}`);
      return { name: 'settings.show', scope };
    case 'set': {
      if (rest.length < 2) throw new PictalkError('input.invalid', `Expected \`set\` with a key and a value, got ${describe(rest.map((t) => t.text).join(' '))}. ${usage}`);
      // one key a line; its value is the rest of the line, so a negative prompt of several words needs no quotes
      const [key, ...value] = rest as [typeof rest[number], ...typeof rest];
      return { name: 'settings.set', scope, values: { [key.text]: value.map((t) => t.text).join(' ') } };
    }
    case 'reset':
      if (rest.length > 1) throw new PictalkError('input.invalid', `Expected \`reset\` with at most one key, got ${describe(rest.map((t) => t.text).join(' '))}. ${usage}`);
      return { name: 'settings.reset', scope, ...(rest[0] ? { key: rest[0].text } : {}) };
    default:
      throw new PictalkError('input.invalid', `Expected show, set, reset or server, got ${describe(sub!.text)}. ${usage}`);
  }
}
