/**
 * bot/'s settings, validated once up front (p-queue style: every option, one message shape).
 * adapters/config.ts reads them from the environment; tests pass a partial object.
 */
import { PictalkError, describe } from '../common/errors.js';
import type { JobKind } from '../inference/types.js';
import { QUOTA_LIMIT_OPTION } from './commands/option.spec.js';
import type { QuotaKind } from './types.js';

export interface RateLimitConfig {
  /** Commands a user may send in a burst. */
  capacity: number;
  /** Time in which a full bucket refills. 5 per 30 000 ms = one token every 6 s. */
  windowMs: number;
}

export interface BotConfig {
  /** Role ids (Discord) whose members are moderators in every space, besides `actor.platformModerator`. */
  moderatorRoleIds: string[];
  /** Daily limits when a space has set none. */
  defaultDailyLimits: Record<QuotaKind, number>;
  rateLimit: RateLimitConfig;
  maxPromptChars: number;
  /** Largest image accepted for `/caption`, checked against the declared size and again while fetching. */
  maxAttachmentBytes: number;
  /** Time limit per job kind, passed to the core; a kind left out gets the core's own default. */
  jobTimeoutMs: Partial<Record<JobKind, number>>;
  /** Upscale factor asked of the text-to-image pipeline (the builtin model draws 64x64). */
  imageUpscale?: number;
}

export const DEFAULT_BOT_CONFIG: Readonly<BotConfig> = Object.freeze({
  moderatorRoleIds: [],
  defaultDailyLimits: { imagine: 20, caption: 50 },
  rateLimit: { capacity: 5, windowMs: 30_000 },
  maxPromptChars: 500,
  maxAttachmentBytes: 8 * 1024 * 1024,
  jobTimeoutMs: {},
});

export type BotConfigInput = Partial<Omit<BotConfig, 'defaultDailyLimits' | 'rateLimit'>> & {
  defaultDailyLimits?: Partial<BotConfig['defaultDailyLimits']>;
  rateLimit?: Partial<RateLimitConfig>;
};

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new PictalkError('config.invalid', `Expected \`${name}\` to be an integer from ${min} to ${max}, got ${describe(value)}`, { setting: name });
  }
  return value;
}

/** Fill defaults and validate; throws `config.invalid` naming the first bad setting. */
export function resolveBotConfig(input: BotConfigInput = {}): BotConfig {
  const d = DEFAULT_BOT_CONFIG;
  const roles = input.moderatorRoleIds ?? d.moderatorRoleIds;
  if (!Array.isArray(roles) || roles.some((id) => typeof id !== 'string' || id.trim() === '')) {
    throw new PictalkError('config.invalid', `Expected \`moderatorRoleIds\` to be a list of non-empty strings, got ${describe(roles)}`, { setting: 'moderatorRoleIds' });
  }
  const day = 24 * 3600 * 1000;
  const config: BotConfig = {
    moderatorRoleIds: [...roles],
    defaultDailyLimits: {
      imagine: integer('defaultDailyLimits.imagine', input.defaultDailyLimits?.imagine ?? d.defaultDailyLimits.imagine, 0, QUOTA_LIMIT_OPTION.max),
      caption: integer('defaultDailyLimits.caption', input.defaultDailyLimits?.caption ?? d.defaultDailyLimits.caption, 0, QUOTA_LIMIT_OPTION.max),
    },
    rateLimit: {
      capacity: integer('rateLimit.capacity', input.rateLimit?.capacity ?? d.rateLimit.capacity, 1, 10_000),
      windowMs: integer('rateLimit.windowMs', input.rateLimit?.windowMs ?? d.rateLimit.windowMs, 1, day),
    },
    maxPromptChars: integer('maxPromptChars', input.maxPromptChars ?? d.maxPromptChars, 1, 10_000),
    maxAttachmentBytes: integer('maxAttachmentBytes', input.maxAttachmentBytes ?? d.maxAttachmentBytes, 1, 1024 * 1024 * 1024),
    jobTimeoutMs: {},
  };
  for (const kind of ['imagine', 'caption', 'speak'] as const) {
    const ms = input.jobTimeoutMs?.[kind];
    if (ms !== undefined) config.jobTimeoutMs[kind] = integer(`jobTimeoutMs.${kind}`, ms, 1000, 3_600_000);
  }
  if (input.imageUpscale !== undefined) config.imageUpscale = integer('imageUpscale', input.imageUpscale, 1, 16);
  return config;
}
