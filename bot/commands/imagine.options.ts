/**
 * `/imagine` options, validated up front against their specs (option.spec.ts) with one message shape:
 * ``Expected `steps` to be an integer from 1 to 50, got `80` (number)``. Nothing is clamped.
 */
import { PictalkError, describe } from '../../common/errors.js';
import { parsePromptWeights, promptText } from '../../inference/prompt.weights.js';
import type { SchedulerName } from '../../inference/types.js';
import { checkPrompt, matchesBlocklist } from '../policy/content.policy.js';
import type { ImagineOptions } from '../types.js';
import { checkOption, imagineOption } from './option.spec.js';
import { checkStrength } from '../user.settings.js';

/** The numeric ranges of `/imagine`, from its option specs (option.spec.ts). */
export const IMAGINE_LIMITS = {
  steps: { min: imagineOption('steps').min, max: imagineOption('steps').max },
  guidance: { min: imagineOption('guidance').min, max: imagineOption('guidance').max },
  count: { min: imagineOption('count').min, max: imagineOption('count').max },
  seed: { min: imagineOption('seed').min, max: imagineOption('seed').max },
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
  /** Image-to-image: the strength (checked here; filled from the settings when a picture is given without one). */
  strength?: number;
  /** Image-to-image: where the starting picture came from, so a reroll or a redraw can find it again. */
  source?: PictureSource;
}

/** An uploaded picture (known by its bytes' SHA-256) or image `index` (1-based) of an earlier job of this space. */
export type PictureSource = { kind: 'upload'; sha256: string; name: string } | { kind: 'job'; jobId: string; index: number };

export function validateImagineOptions(options: ImagineOptions, maxPromptChars: number, blocklist: readonly string[]): ValidImagineOptions {
  if (typeof options !== 'object' || options === null) {
    throw new PictalkError('input.invalid', `Expected imagine options, got ${describe(options)}`);
  }
  // Cheap shape checks before the blocklist, so a typo in `steps` is reported the same whether or not the prompt is fine.
  for (const name of ['steps', 'guidance', 'count', 'seed', 'scheduler'] as const) {
    if (options[name] !== undefined) checkOption(imagineOption(name), options[name]);
  }
  const valid: ValidImagineOptions = {
    prompt: checkPrompt('prompt', options.prompt, maxPromptChars, blocklist),
    count: options.count ?? imagineOption('count').default,
  };
  checkWeights('prompt', valid.prompt, blocklist);
  if (options.negative !== undefined) {
    const negative = checkPrompt('negative', options.negative, maxPromptChars, blocklist, false);
    checkWeights('negative', negative, blocklist);
    if (negative.length > 0) valid.negative = negative;
  }
  if (options.seed !== undefined) valid.seed = options.seed;
  if (options.steps !== undefined) valid.steps = options.steps;
  if (options.guidance !== undefined) valid.guidance = options.guidance;
  if (options.scheduler !== undefined) valid.scheduler = options.scheduler;
  if (options.strength !== undefined) valid.strength = checkStrength(options.strength);
  return valid;
}

/**
 * Prompt weights, `(word:1.3)` as A1111 writes them (inference/prompt.weights.ts), checked before any quota is
 * reserved: a malformed or out-of-range weight is `input.invalid` here, not a refunded job. The blocklist also runs on
 * the words the model reads: a lone `\` is dropped and brackets go away, so `n\sfw` or `ns(fw)` reads as `nsfw`.
 */
function checkWeights(name: string, text: string, blocklist: readonly string[]): void {
  const read = promptText(parsePromptWeights(text, name));
  if (read !== text && read.trim().length > 0 && matchesBlocklist(read, blocklist)) {
    throw new PictalkError('content.blocked', `\`${name}\` matches this space's blocklist`, { field: name });
  }
}
