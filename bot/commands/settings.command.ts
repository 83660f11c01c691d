/**
 * `/settings`: a user's own defaults (`show`, `set`, `reset`) and, for moderators, the space's defaults and limits
 * (`server show|set|reset`, audited like the other moderator commands). Every value is checked before anything is
 * stored, so a refused `set` of several values stores none of them. The keys and their rules: bot/user.settings.ts.
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { CommandContext } from '../context.js';
import { checkPrompt } from '../policy/content.policy.js';
import { requireModerator } from '../policy/permissions.js';
import type { Reply, SettingsScope } from '../types.js';
import {
  LIMIT_KEYS, SETTING_KEYS, checkAgainstLimits, checkSettingKey, checkSettingValue, formatSettingValue, readSettings, storeSetting,
  valueOf, type ServerSettingKey, type SettingLayers, type SettingValue,
} from '../user.settings.js';

const scopeOf = (scope: unknown): SettingsScope => {
  if (scope === 'user' || scope === 'server') return scope;
  throw new PictalkError('input.invalid', `Expected the settings scope \`user\` or \`server\`, got ${describe(scope)}`);
};

const shown = (value: SettingValue | undefined): string => (value === undefined ? 'not set' : formatSettingValue(value));

function showLines(layers: SettingLayers, scope: SettingsScope): string[] {
  const { user, server, limits } = layers;
  const lines: string[] = [];
  if (scope === 'user') {
    lines.push('Your settings (a command option overrides them; unset ones come from the server, then the model):');
    for (const key of SETTING_KEYS) {
      const mine = valueOf(user, key);
      const theirs = valueOf(server, key);
      const source = mine !== undefined ? '' : theirs !== undefined ? ' (server default)' : '';
      lines.push(`• \`${key}\`: ${mine !== undefined ? formatSettingValue(mine) : theirs !== undefined ? formatSettingValue(theirs) : 'not set'}${source}`);
    }
  } else {
    lines.push('Server defaults (each member\'s own settings and command options override them):');
    for (const key of SETTING_KEYS) lines.push(`• \`${key}\`: ${shown(valueOf(server, key))}`);
  }
  const limitText = LIMIT_KEYS.map((key) => `\`${key}\` ${shown(valueOf(limits, key))}`).join(', ');
  lines.push(`Server limits: ${limitText}.`);
  return lines;
}

export async function settingsShowCommand(ctx: CommandContext, scope: SettingsScope): Promise<Reply> {
  const { actor } = ctx.request;
  const s = scopeOf(scope);
  if (s === 'server') requireModerator(actor, ctx.config, 'settings server show');
  const layers = await readSettings(ctx.store, actor.spaceId, actor.userId);
  return { text: showLines(layers, s).join('\n'), ephemeral: true };
}

export async function settingsSetCommand(ctx: CommandContext, scope: SettingsScope, values: Record<string, string | number | boolean>): Promise<Reply> {
  const { actor } = ctx.request;
  const s = scopeOf(scope);
  if (s === 'server') requireModerator(actor, ctx.config, 'settings server set');
  if (typeof values !== 'object' || values === null || Object.keys(values).length === 0) {
    throw new PictalkError('input.invalid', `Expected at least one setting to set, got none; settings are ${(s === 'server' ? [...SETTING_KEYS, ...LIMIT_KEYS] : SETTING_KEYS).map((k) => `\`${k}\``).join(', ')}`);
  }
  // check everything first: a refused value stores nothing
  const blocklist = (await ctx.store.listBlockPatterns(actor.spaceId)).map((entry) => entry.pattern);
  const changes = new Map<ServerSettingKey, SettingValue>();
  for (const [raw, rawValue] of Object.entries(values)) {
    const key = checkSettingKey(raw, s);
    if (changes.has(key)) throw new PictalkError('input.invalid', `The setting \`${key}\` is given twice`, { setting: key });
    let value = checkSettingValue(key, rawValue);
    if (key === 'negative') {
      value = checkPrompt('negative', value, ctx.config.maxPromptChars, blocklist, false);
      if (value === '') throw new PictalkError('input.invalid', 'Expected `negative` to be some text, got an empty one; `reset negative` clears it', { option: key });
    }
    changes.set(key, value);
  }
  const layers = await readSettings(ctx.store, actor.spaceId, actor.userId);
  const limits = {
    ...layers.limits,
    ...(changes.has('max_steps') ? { maxSteps: changes.get('max_steps') as number } : {}),
    ...(changes.has('max_count') ? { maxCount: changes.get('max_count') as number } : {}),
  };
  // a default must be one `/imagine` would accept here
  checkAgainstLimits({ steps: changes.get('steps') as number | undefined, count: changes.get('count') as number | undefined }, limits, ' as a default');

  const now = ctx.clock.now();
  const current = s === 'server' ? { ...layers.server, ...layers.limits } : layers.user;
  const lines: string[] = [];
  for (const [key, value] of changes) {
    const before = valueOf(current, key);
    await storeSetting(ctx.store, actor.spaceId, s === 'server' ? { kind: 'server' } : { kind: 'user', userId: actor.userId }, key, value, actor.userId, now);
    if (s === 'server') {
      await ctx.store.audit({
        spaceId: actor.spaceId, actorId: actor.userId, action: 'settings.set', target: `server ${key}`,
        before: before === undefined ? null : { value: before }, after: { value }, at: now,
      });
    }
    lines.push(`\`${key}\` is now ${formatSettingValue(value)} (${before === undefined ? 'not set before' : `was ${formatSettingValue(before)}`}).`);
  }
  // defaults that a lowered maximum now undercuts are lowered at use; say so now
  if (s === 'server') {
    const serverSteps = (changes.get('steps') as number | undefined) ?? layers.server.steps;
    const serverCount = (changes.get('count') as number | undefined) ?? layers.server.count;
    if (limits.maxSteps !== undefined && serverSteps !== undefined && serverSteps > limits.maxSteps) {
      lines.push(`The server default of ${serverSteps} steps is above the maximum; /imagine lowers it to ${limits.maxSteps}.`);
    }
    if (limits.maxCount !== undefined && serverCount !== undefined && serverCount > limits.maxCount) {
      lines.push(`The server default of ${serverCount} images is above the maximum; /imagine lowers it to ${limits.maxCount}.`);
    }
    if (changes.has('max_steps') || changes.has('max_count')) lines.push('Members\' own defaults above a maximum are lowered to it when they use /imagine.');
  }
  return { text: lines.join('\n'), ephemeral: true };
}

export async function settingsResetCommand(ctx: CommandContext, scope: SettingsScope, key?: string): Promise<Reply> {
  const { actor } = ctx.request;
  const s = scopeOf(scope);
  if (s === 'server') requireModerator(actor, ctx.config, 'settings server reset');
  const keys: ServerSettingKey[] = key === undefined ? (s === 'server' ? [...SETTING_KEYS, ...LIMIT_KEYS] : [...SETTING_KEYS]) : [checkSettingKey(key, s)];
  const layers = await readSettings(ctx.store, actor.spaceId, actor.userId);
  const current = s === 'server' ? { ...layers.server, ...layers.limits } : layers.user;
  const now = ctx.clock.now();
  const cleared: string[] = [];
  for (const k of keys) {
    const before = valueOf(current, k);
    if (before === undefined) continue;
    await storeSetting(ctx.store, actor.spaceId, s === 'server' ? { kind: 'server' } : { kind: 'user', userId: actor.userId }, k, undefined, actor.userId, now);
    if (s === 'server') {
      await ctx.store.audit({ spaceId: actor.spaceId, actorId: actor.userId, action: 'settings.reset', target: `server ${k}`, before: { value: before }, after: null, at: now });
    }
    cleared.push(`\`${k}\``);
  }
  const whose = s === 'server' ? 'server' : 'your';
  if (cleared.length === 0) {
    const none = s === 'server' ? 'No server settings are set' : 'You have no settings set';
    const unset = s === 'server' ? `The server setting \`${keys[0]}\` is not set` : `Your setting \`${keys[0]}\` is not set`;
    return { text: `${key === undefined ? none : unset}; nothing to reset.`, ephemeral: true };
  }
  return { text: `Reset ${whose} ${cleared.length === 1 ? 'setting' : 'settings'} ${cleared.join(', ')}.`, ephemeral: true };
}
