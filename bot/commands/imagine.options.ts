/**
 * `/imagine` options, validated up front with one message shape:
 * ``Expected `steps` to be an integer from 1 to 50, got `80` (number)``. Nothing is clamped.
 */
import { PictalkError, describe } from '../../common/errors.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../../inference/types.js';
import { checkPrompt } from '../policy/content.policy.js';
import type { ImagineOptions } from '../types.js';

export const IMAGINE_LIMITS = {
  steps: { min: 1, max: 50 },
  guidance: { min: 0, max: 20 },
  count: { min: 1, max: 4 },
  seed: { min: 0, max: 2 ** 32 - 1 },
} as const;

/** Options that passed every check; `count` is filled (it decides how much quota to reserve). */
export interface ValidImagineOptions {
  prompt: string;
  negative?: string;
  seed?: number;
  steps?: number;
  guidance?: number;
  count: number;
  scheduler?: SchedulerName;
}

function integerOption(name: keyof typeof IMAGINE_LIMITS, value: unknown): number {
  const { min, max } = IMAGINE_LIMITS[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new PictalkError('input.invalid', `Expected \`${name}\` to be an integer from ${min} to ${max}, got ${describe(value)}`, { option: name });
  }
  return value;
}

function numberOption(name: 'guidance', value: unknown): number {
  const { min, max } = IMAGINE_LIMITS[name];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new PictalkError('input.invalid', `Expected \`${name}\` to be a number from ${min} to ${max}, got ${describe(value)}`, { option: name });
  }
  return value;
}

export function validateImagineOptions(options: ImagineOptions, maxPromptChars: number, blocklist: readonly string[]): ValidImagineOptions {
  if (typeof options !== 'object' || options === null) {
    throw new PictalkError('input.invalid', `Expected imagine options, got ${describe(options)}`);
  }
  // Cheap shape checks before the blocklist, so a typo in `steps` is reported the same whether or not the prompt is fine.
  if (options.steps !== undefined) integerOption('steps', options.steps);
  if (options.guidance !== undefined) numberOption('guidance', options.guidance);
  if (options.count !== undefined) integerOption('count', options.count);
  if (options.seed !== undefined) integerOption('seed', options.seed);
  if (options.scheduler !== undefined && !SCHEDULER_NAMES.includes(options.scheduler)) {
    throw new PictalkError('input.invalid',
      `Expected \`scheduler\` to be one of ${SCHEDULER_NAMES.map((name) => `\`${name}\``).join(', ')}, got ${describe(options.scheduler)}`,
      { option: 'scheduler' });
  }
  const valid: ValidImagineOptions = {
    prompt: checkPrompt('prompt', options.prompt, maxPromptChars, blocklist),
    count: options.count ?? 1,
  };
  if (options.negative !== undefined) {
    const negative = checkPrompt('negative', options.negative, maxPromptChars, blocklist, false);
    if (negative.length > 0) valid.negative = negative;
  }
  if (options.seed !== undefined) valid.seed = options.seed;
  if (options.steps !== undefined) valid.steps = options.steps;
  if (options.guidance !== undefined) valid.guidance = options.guidance;
  if (options.scheduler !== undefined) valid.scheduler = options.scheduler;
  return valid;
}
