/**
 * The options of pictalk's commands, decided once: name, type, range, description, default. The Discord command
 * builder, the Slack and terminal text grammar (`command.text.ts`) and bot/'s validation are all derived from these,
 * so a limit cannot differ between the place that offers it and the place that checks it.
 * One message shape for every refusal: ``Expected `steps` to be an integer from 1 to 50, got `80` (number)``.
 */
import { PictalkError, describe, type ErrorCode } from '../../common/errors.js';
import { SCHEDULER_NAMES } from '../../inference/types.js';

interface BaseSpec {
  name: string;
  description: string;
  required?: boolean;
}
/** Text. Its length limit, where it has one, is an operator setting (`maxPromptChars`), not a constant. */
export interface StringSpec extends BaseSpec { type: 'string'; limit?: 'maxPromptChars' }
export interface IntegerSpec extends BaseSpec { type: 'integer'; min: number; max: number; default?: number }
export interface NumberSpec extends BaseSpec { type: 'number'; min: number; max: number; default?: number }
export interface ChoiceSpec extends BaseSpec { type: 'choice'; choices: readonly string[] }
export type OptionSpec = StringSpec | IntegerSpec | NumberSpec | ChoiceSpec;

/** `/imagine`'s options, in the order platforms show them (required first). */
export const IMAGINE_OPTIONS = [
  { name: 'prompt', type: 'string', description: 'What to draw; (word:1.3) weighs a word up, [word] down', required: true, limit: 'maxPromptChars' },
  { name: 'negative', type: 'string', description: 'What to keep out of the image', limit: 'maxPromptChars' },
  // Seeds are 0 .. 2^32-1 (inference/types.ts).
  { name: 'seed', type: 'integer', description: 'Seed for a reproducible image', min: 0, max: 2 ** 32 - 1 },
  { name: 'steps', type: 'integer', description: 'Denoising steps', min: 1, max: 50 },
  { name: 'guidance', type: 'number', description: 'Classifier-free guidance scale (1 or less: off)', min: 0, max: 20 },
  { name: 'count', type: 'integer', description: 'How many images', min: 1, max: 4, default: 1 },
  { name: 'scheduler', type: 'choice', description: 'Noise scheduler', choices: SCHEDULER_NAMES },
] as const satisfies readonly OptionSpec[];

export type ImagineOptionName = (typeof IMAGINE_OPTIONS)[number]['name'];

/** A daily quota limit, as moderators set it. */
export const QUOTA_LIMIT_OPTION = {
  name: 'limit', type: 'integer', description: 'Uses per day', required: true, min: 0, max: 100_000,
} as const satisfies IntegerSpec;

/** The kinds a quota counts. */
export const QUOTA_KIND_OPTION = {
  name: 'kind', type: 'choice', description: 'Which command the quota counts', required: true, choices: ['imagine', 'caption'],
} as const satisfies ChoiceSpec;

export function imagineOption<N extends ImagineOptionName>(name: N): Extract<(typeof IMAGINE_OPTIONS)[number], { name: N }> {
  return IMAGINE_OPTIONS.find((spec) => spec.name === name) as Extract<(typeof IMAGINE_OPTIONS)[number], { name: N }>;
}

/** What a spec accepts, in the words of its error messages: `an integer from 1 to 50`. */
export function expectation(spec: OptionSpec): string {
  switch (spec.type) {
    case 'integer': return `an integer from ${spec.min} to ${spec.max}`;
    case 'number': return `a number from ${spec.min} to ${spec.max}`;
    case 'choice': return `one of ${spec.choices.map((choice) => `\`${choice}\``).join(', ')}`;
    case 'string': return 'text';
  }
}

/**
 * Check one value against its spec and return it; nothing is clamped. Strings are checked by the content policy
 * (prompt rules and the blocklist), so here only their type.
 */
export function checkOption(spec: IntegerSpec | NumberSpec, value: unknown, code?: ErrorCode): number;
export function checkOption(spec: ChoiceSpec, value: unknown, code?: ErrorCode): string;
export function checkOption(spec: OptionSpec, value: unknown, code?: ErrorCode): number | string;
export function checkOption(spec: OptionSpec, value: unknown, code: ErrorCode = 'input.invalid'): number | string {
  const ok = (() => {
    switch (spec.type) {
      case 'integer': return typeof value === 'number' && Number.isInteger(value) && value >= spec.min && value <= spec.max;
      case 'number': return typeof value === 'number' && Number.isFinite(value) && value >= spec.min && value <= spec.max;
      case 'choice': return typeof value === 'string' && spec.choices.includes(value);
      case 'string': return typeof value === 'string';
    }
  })();
  if (!ok) throw new PictalkError(code, `Expected \`${spec.name}\` to be ${expectation(spec)}, got ${describe(value)}`, { option: spec.name });
  return value as number | string;
}
