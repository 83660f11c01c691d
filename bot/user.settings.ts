/**
 * Personal and server defaults for `/imagine` and `/caption`, kept in the store's per-space settings:
 *   `user:<userId>:<key>`  a user's own default        (`/settings set steps 30`)
 *   `server:<key>`         the space's default          (`/settings server set steps 25`, moderators)
 *   `server:max_steps`, `server:max_count`              the space's limits (moderators)
 * Precedence, highest first: an explicit command option, the user's default, the server's default, the model folder's.
 * A value over the server's maximum is refused when it is typed (an option, or a default being set); a stored default
 * that a later, lower maximum undercuts is lowered to the maximum at use, and the reply says so (`applySettings`).
 * Values are validated by the same specs as `/imagine`'s options, so a default can never be something `/imagine` refuses.
 */
import { PictalkError, describe } from '../common/errors.js';
import type { SchedulerName } from '../inference/types.js';
import { checkOption, expectation, imagineOption, type OptionSpec } from './commands/option.spec.js';
import { optionValue } from './commands/command.text.js';
import type { BotStore } from './store.js';

/** The keys a user (or a moderator, for the server) may set, in the order `/settings show` lists them. */
export const SETTING_KEYS = ['steps', 'guidance', 'scheduler', 'negative', 'count', 'strength', 'voice', 'private'] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];
/** The server's limits: moderators only. */
export const LIMIT_KEYS = ['max_steps', 'max_count'] as const;
export type LimitKey = (typeof LIMIT_KEYS)[number];
export type ServerSettingKey = SettingKey | LimitKey;

/** Commands whose replies a user's `private` setting makes ephemeral (the others are private or public by nature). */
export const PRIVATE_ABLE: ReadonlySet<string> = new Set(['imagine', 'reroll', 'vary', 'caption']);

/** Image-to-image strength when neither the command, the user nor the server says: the core's one default. */
export { DEFAULT_STRENGTH } from '../inference/types.js';

/** One scope's stored defaults, typed. Each field undefined when unset. */
export interface SettingValues {
  steps?: number;
  guidance?: number;
  scheduler?: SchedulerName;
  negativePrompt?: string;
  count?: number;
  /** Image-to-image strength, 0 < S <= 1. */
  strength?: number;
  /** `/caption`'s voice message on or off. */
  voice?: boolean;
  /** Replies only the user sees (ephemeral on Discord, `chat.postEphemeral` on Slack). */
  private?: boolean;
}

export interface ServerLimits {
  maxSteps?: number;
  maxCount?: number;
}

/** What applies to one user in one space: their defaults over the server's, and the server's limits. */
export interface EffectiveSettings extends SettingValues, ServerLimits {}

/** Both scopes apart, for `/settings show`. */
export interface SettingLayers {
  user: SettingValues;
  server: SettingValues;
  limits: ServerLimits;
}

const FIELD: Record<SettingKey, keyof SettingValues> = {
  steps: 'steps', guidance: 'guidance', scheduler: 'scheduler', negative: 'negativePrompt', count: 'count',
  strength: 'strength', voice: 'voice', private: 'private',
};
const LIMIT_FIELD: Record<LimitKey, keyof ServerLimits> = { max_steps: 'maxSteps', max_count: 'maxCount' };

export const userKey = (userId: string, key: SettingKey): string => `user:${userId}:${key}`;
export const serverKey = (key: ServerSettingKey): string => `server:${key}`;

/** A short line per key, for help texts and the Discord option descriptions. */
export const SETTING_DESCRIPTIONS: Record<ServerSettingKey, string> = {
  steps: 'Denoising steps for /imagine',
  guidance: 'Guidance scale for /imagine',
  scheduler: 'Noise scheduler for /imagine',
  negative: 'Negative prompt for /imagine',
  count: 'Images per /imagine',
  strength: 'Image-to-image strength (0 < S <= 1)',
  voice: '/caption sends a voice message',
  private: 'Replies only you can see',
  max_steps: 'Most denoising steps anyone may ask for',
  max_count: 'Most images per /imagine anyone may ask for',
};

const BOOLEAN_WORDS: Record<string, boolean> = { on: true, off: false, true: true, false: false, yes: true, no: false, '1': true, '0': false };

const isSettingKey = (key: string): key is SettingKey => (SETTING_KEYS as readonly string[]).includes(key);
const isLimitKey = (key: string): key is LimitKey => (LIMIT_KEYS as readonly string[]).includes(key);

/** The key as typed (`max-steps`, `Negative`), checked; unknown keys are refused listing the valid ones. */
export function checkSettingKey(raw: unknown, scope: 'user' | 'server'): ServerSettingKey {
  const key = typeof raw === 'string' ? raw.trim().toLowerCase().replace(/-/g, '_') : '';
  if (isSettingKey(key) || (scope === 'server' && isLimitKey(key))) return key;
  const valid = scope === 'server' ? [...SETTING_KEYS, ...LIMIT_KEYS] : SETTING_KEYS;
  throw new PictalkError('input.invalid',
    `Unknown setting ${describe(raw)}; ${scope === 'server' ? 'server settings' : 'settings'} are ${valid.map((k) => `\`${k}\``).join(', ')}`,
    { setting: raw });
}

/** The spec a numeric or choice key is checked by: `/imagine`'s own, so a default is always a valid option. */
function specOf(key: 'steps' | 'guidance' | 'scheduler' | 'count' | LimitKey): OptionSpec {
  switch (key) {
    case 'max_steps': return { ...imagineOption('steps'), name: 'max_steps' };
    case 'max_count': return { ...imagineOption('count'), name: 'max_count' };
    default: return imagineOption(key);
  }
}

/** Strength has an open lower end, which the option specs cannot say: 0 < S <= 1. */
export function checkStrength(value: unknown, name = 'strength'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1) {
    throw new PictalkError('input.invalid', `Expected \`${name}\` to be a number greater than 0 and at most 1, got ${describe(value)}`, { option: name });
  }
  return value;
}

export type SettingValue = number | string | boolean;

/**
 * One value for `key`, typed and range-checked. Text (Slack, the terminal) is read by the key's type first; Discord's
 * typed options come as numbers and booleans. The negative prompt's content (length, blocklist) is the caller's to
 * check, with the space's blocklist at hand.
 */
export function checkSettingValue(key: ServerSettingKey, value: unknown): SettingValue {
  switch (key) {
    case 'voice':
    case 'private': {
      if (typeof value === 'boolean') return value;
      const word = typeof value === 'string' ? BOOLEAN_WORDS[value.trim().toLowerCase()] : undefined;
      if (word === undefined) throw new PictalkError('input.invalid', `Expected \`${key}\` to be on or off, got ${describe(value)}`, { option: key });
      return word;
    }
    case 'negative':
      if (typeof value !== 'string') throw new PictalkError('input.invalid', `Expected \`negative\` to be text, got ${describe(value)}`, { option: key });
      return value;
    case 'strength':
      if (typeof value === 'string') {
        const number = /^\s*[-+]?(\d+\.?\d*|\.\d+)\s*$/.test(value) ? Number(value) : Number.NaN;
        if (!Number.isFinite(number)) {
          throw new PictalkError('input.invalid', `Expected \`strength\` to be a number greater than 0 and at most 1, got ${describe(value)}`, { option: key });
        }
        return checkStrength(number);
      }
      return checkStrength(value);
    default: {
      const spec = specOf(key);
      return checkOption(spec, typeof value === 'string' ? optionValue(spec, value) : value);
    }
  }
}

/** How a value reads in replies: `on`, `30`, `"blurry"`. */
export function formatSettingValue(value: SettingValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return String(value);
  return `"${value}"`;
}

/** What `expectation` says for a key, for help texts. */
export function settingExpectation(key: ServerSettingKey): string {
  switch (key) {
    case 'voice': case 'private': return 'on or off';
    case 'negative': return 'text';
    case 'strength': return 'a number greater than 0 and at most 1';
    default: return expectation(specOf(key));
  }
}

const encode = (value: SettingValue): string => typeof value === 'boolean' ? (value ? '1' : '0') : String(value);

/** A stored text back to its value; a value stored by an older version that no longer passes is treated as unset. */
function decode(key: ServerSettingKey, text: string): SettingValue | undefined {
  try {
    if (key === 'voice' || key === 'private') return text === '1';
    if (key === 'negative') return text;
    return checkSettingValue(key, text);
  } catch {
    return undefined;
  }
}

function assign(target: SettingValues, key: SettingKey, value: SettingValue | undefined): void {
  if (value === undefined) return;
  (target as Record<string, SettingValue>)[FIELD[key]] = value;
}

/** Both scopes of one user's settings, typed. */
export async function readSettings(store: BotStore, spaceId: string, userId: string): Promise<SettingLayers> {
  const [userRows, serverRows] = await Promise.all([
    store.listSettings(spaceId, `user:${userId}:`),
    store.listSettings(spaceId, 'server:'),
  ]);
  const user: SettingValues = {};
  const server: SettingValues = {};
  const limits: ServerLimits = {};
  for (const row of userRows) {
    const key = row.key.slice(`user:${userId}:`.length);
    if (isSettingKey(key)) assign(user, key, decode(key, row.value));
  }
  for (const row of serverRows) {
    const key = row.key.slice('server:'.length);
    if (isSettingKey(key)) assign(server, key, decode(key, row.value));
    else if (isLimitKey(key)) {
      const value = decode(key, row.value);
      if (typeof value === 'number') limits[LIMIT_FIELD[key]] = value;
    }
  }
  return { user, server, limits };
}

/** What applies to `userId` in `spaceId`: each field the user's default, else the server's; and the server's limits. */
export async function resolveSettings(store: BotStore, spaceId: string, userId: string): Promise<EffectiveSettings> {
  const { user, server, limits } = await readSettings(store, spaceId, userId);
  const effective: EffectiveSettings = { ...server, ...user, ...limits };
  for (const key of Object.keys(effective) as Array<keyof EffectiveSettings>) {
    if (effective[key] === undefined) delete effective[key];
  }
  return effective;
}

/** The value of one key in one scope, typed (undefined when unset). */
export function valueOf(values: SettingValues & ServerLimits, key: ServerSettingKey): SettingValue | undefined {
  return isLimitKey(key) ? values[LIMIT_FIELD[key]] : values[FIELD[key]];
}

/** Store one value (undefined: remove it). The caller has checked it and the actor's right to set it. */
export async function storeSetting(
  store: BotStore, spaceId: string, scope: { kind: 'user'; userId: string } | { kind: 'server' }, key: ServerSettingKey,
  value: SettingValue | undefined, by: string, at: number,
): Promise<void> {
  const storeKey = scope.kind === 'server' ? serverKey(key) : userKey(scope.userId, key as SettingKey);
  await store.setSetting(spaceId, storeKey, value === undefined ? undefined : encode(value), by, at);
}

/** Over a server maximum: refused when typed, in the option specs' message shape, naming the limit. */
function overLimit(name: 'steps' | 'count', value: number, limit: number, what: string): PictalkError {
  return new PictalkError('input.invalid',
    `Expected \`${name}\` to be at most ${limit} (this server's maximum), got ${describe(value)}${what}`, { option: name, limit });
}

/** Check a typed `steps` or `count` against the server's maximum (`/imagine`'s options, a default being set). */
export function checkAgainstLimits(options: { steps?: number | undefined; count?: number | undefined }, limits: ServerLimits, what = ''): void {
  if (options.steps !== undefined && limits.maxSteps !== undefined && options.steps > limits.maxSteps) throw overLimit('steps', options.steps, limits.maxSteps, what);
  if (options.count !== undefined && limits.maxCount !== undefined && options.count > limits.maxCount) throw overLimit('count', options.count, limits.maxCount, what);
}

/** The `/imagine` options the settings give, before their own validation. */
export interface ImagineDefaults {
  steps?: number;
  guidance?: number;
  scheduler?: SchedulerName;
  negative?: string;
  count?: number;
}

/**
 * `/imagine`'s options with the settings filled in where the command left them out: explicit options first, then the
 * user's defaults, then the server's (both already merged in `settings`); the model folder's own defaults apply to what
 * is still missing. An explicit `steps` or `count` over the server's maximum is refused; a stored default over it (a
 * maximum lowered after the default was set) is lowered to the maximum, and `notes` says so for the reply.
 */
export function applyImagineSettings<T extends ImagineDefaults>(options: T, settings: EffectiveSettings): { options: T; notes: string[] } {
  checkAgainstLimits(options, settings);
  const merged: T = { ...options };
  const notes: string[] = [];
  if (merged.steps === undefined && settings.steps !== undefined) merged.steps = settings.steps;
  if (merged.guidance === undefined && settings.guidance !== undefined) merged.guidance = settings.guidance;
  if (merged.scheduler === undefined && settings.scheduler !== undefined) merged.scheduler = settings.scheduler;
  if (merged.negative === undefined && settings.negativePrompt !== undefined) merged.negative = settings.negativePrompt;
  if (merged.count === undefined && settings.count !== undefined) merged.count = settings.count;
  if (merged.steps !== undefined && settings.maxSteps !== undefined && merged.steps > settings.maxSteps) {
    notes.push(`Steps lowered from the default ${merged.steps} to this server's maximum of ${settings.maxSteps}.`);
    merged.steps = settings.maxSteps;
  }
  if (merged.count !== undefined && settings.maxCount !== undefined && merged.count > settings.maxCount) {
    notes.push(`Image count lowered from the default ${merged.count} to this server's maximum of ${settings.maxCount}.`);
    merged.count = settings.maxCount;
  }
  return { options: merged, notes };
}
