/**
 * The eval command line: parsing and validation, one message shape for every option.
 */
import { describe, PictalkError } from '../../common/errors.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../../inference/types.js';
import { MAX_CANDIDATES } from '../../inference/model-folder.js';
import { DEFAULT_EVAL_SEED } from './heldout.set.js';
import { integerOption, optionText, readOptions } from '../cli-options.js';
import { SKIMAGE_DATA_DIR } from './ood.images.js';

export const EVAL_PARTS = ['caption', 't2i', 'recognizer', 'domain'] as const;
export type EvalPart = (typeof EVAL_PARTS)[number];

export interface EvalOptions {
  json: boolean;
  seed: number;
  /** Test images; the compositional split gets half as many (rounded up). */
  count: number;
  compositional: number;
  /** Text-to-image prompts per category (single, pair, compositional). */
  t2iCount: number;
  t2iDir: string;
  captionerDir: string;
  recognizerDir: string;
  parts: EvalPart[];
  beam?: number;
  steps?: number;
  guidance?: number;
  scheduler?: SchedulerName;
  candidates?: number;
  threads?: number;
  /** The sample photographs for the domain part (Debian's python3-skimage); `photosGiven`: named by --photos. */
  photosDir: string;
  photosGiven: boolean;
  /** Random crops per photograph, and synthesized screenshots and drawings each, for the domain part. */
  photoCrops: number;
  synthesized: number;
}

export const DEFAULT_COUNT = 300;
export const DEFAULT_T2I_COUNT = 25;
export const DEFAULT_PHOTO_CROPS = 20;
export const DEFAULT_SYNTHESIZED = 200;
export const DEFAULT_DIRS = {
  t2i: 'models/builtin/text-to-image',
  captioner: 'models/builtin/captioner',
  recognizer: 'models/builtin/recognizer',
} as const;

export const USAGE = `Usage: eval [--json] [--seed S] [--count N] [--t2i-count K] [--only caption,t2i,recognizer,domain]
            [--t2i DIR] [--captioner DIR] [--recognizer DIR] [--beam B] [--steps N] [--guidance G] [--scheduler NAME]
            [--candidates C] [--threads T] [--photos DIR] [--photo-crops N] [--synthesized N]
  --seed S        eval seed (default ${DEFAULT_EVAL_SEED}; training draws with seed 1)
  --count N       held-out test images (default ${DEFAULT_COUNT}); the compositional split gets ceil(N/2)
  --t2i-count K   text-to-image prompts per category: single, pair, compositional (default ${DEFAULT_T2I_COUNT})
  --only PARTS    caption, t2i, recognizer, domain (default all four)
  --t2i, --captioner, --recognizer DIR   model folders (default ${DEFAULT_DIRS.t2i}, ${DEFAULT_DIRS.captioner}, ${DEFAULT_DIRS.recognizer})
  --beam B        captioner beam (default: the captioner's config.json beam_size)
  --steps, --guidance, --scheduler       text-to-image settings (default: the model folder's)
  --candidates C  pictures drawn per prompt, the captioner's best kept (default: the model folder's; 1 = no ranking)
  --threads T     onnxruntime intra-op threads (default: one per core)
  --photos DIR    real photographs for the captioner's out-of-domain check (default ${SKIMAGE_DATA_DIR},
                  Debian's python3-skimage; without it the photo share is not measured)
  --photo-crops N random crops of each photograph (default ${DEFAULT_PHOTO_CROPS})
  --synthesized N synthesized screenshots, and as many line drawings (default ${DEFAULT_SYNTHESIZED})`;

const OPTIONS = ['json', 'seed', 'count', 't2i-count', 'only', 't2i', 'captioner', 'recognizer', 'beam', 'steps', 'guidance', 'scheduler', 'candidates', 'threads',
  'photos', 'photo-crops', 'synthesized'];

/** Parse and validate the command line (without `node` and the script). */
export function parseEvalArgs(argv: readonly string[]): EvalOptions | 'help' {
  const values = readOptions(argv, { known: OPTIONS, flags: ['json'], usage: USAGE });
  if (values === 'help') return 'help';
  const text = (name: string): string | undefined => optionText(values, name);
  const int = (name: string, min: number, max: number): number | undefined => {
    const t = text(name);
    return t === undefined ? undefined : integerOption(name, t, min, max);
  };
  const dir = (name: string, fallback: string): string => {
    const t = text(name);
    if (t !== undefined && t.trim() === '') throw new PictalkError('input.invalid', `Expected \`--${name}\` to be a folder, got ${describe(t)}`, { option: name });
    return t ?? fallback;
  };

  const count = int('count', 1, 100_000) ?? DEFAULT_COUNT;
  const only = text('only');
  const parts = only === undefined ? [...EVAL_PARTS] : only.split(',').map((p) => p.trim());
  for (const part of parts) {
    if (!(EVAL_PARTS as readonly string[]).includes(part)) {
      throw new PictalkError('input.invalid', `Expected \`--only\` to list some of ${EVAL_PARTS.join(', ')}, got ${describe(only)}`, { option: 'only' });
    }
  }
  let guidance: number | undefined;
  const guidanceText = text('guidance');
  if (guidanceText !== undefined) {
    guidance = Number(guidanceText);
    if (guidanceText.trim() === '' || !Number.isFinite(guidance) || guidance < 0 || guidance > 30) {
      throw new PictalkError('input.invalid', `Expected \`--guidance\` to be a number from 0 to 30, got ${describe(guidanceText)}`, { option: 'guidance' });
    }
  }
  const scheduler = text('scheduler');
  if (scheduler !== undefined && !(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) {
    throw new PictalkError('input.invalid', `Expected \`--scheduler\` to be one of ${SCHEDULER_NAMES.join(', ')}, got ${describe(scheduler)}`, { option: 'scheduler' });
  }
  const optional = <T>(key: string, value: T | undefined): Record<string, T> => (value === undefined ? {} : { [key]: value });
  return {
    json: values.get('json') === true,
    seed: int('seed', 0, 2 ** 32 - 1) ?? DEFAULT_EVAL_SEED,
    count,
    compositional: Math.ceil(count / 2),
    t2iCount: int('t2i-count', 1, 10_000) ?? DEFAULT_T2I_COUNT,
    t2iDir: dir('t2i', DEFAULT_DIRS.t2i),
    captionerDir: dir('captioner', DEFAULT_DIRS.captioner),
    recognizerDir: dir('recognizer', DEFAULT_DIRS.recognizer),
    parts: [...new Set(parts)] as EvalPart[],
    ...optional('beam', int('beam', 1, 16)),
    ...optional('steps', int('steps', 1, 100)),
    ...optional('guidance', guidance),
    ...optional('scheduler', scheduler as SchedulerName | undefined),
    ...optional('candidates', int('candidates', 1, MAX_CANDIDATES)),
    ...optional('threads', int('threads', 0, 256)),
    photosDir: dir('photos', SKIMAGE_DATA_DIR),
    photosGiven: text('photos') !== undefined,
    photoCrops: int('photo-crops', 1, 1000) ?? DEFAULT_PHOTO_CROPS,
    synthesized: int('synthesized', 0, 100_000) ?? DEFAULT_SYNTHESIZED,
  };
}
