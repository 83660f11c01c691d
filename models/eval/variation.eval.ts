/**
 * Variations (image-to-image) on a text-to-image folder, judged by the recognizer:
 *
 *   npx tsx models/eval/variation.eval.ts [--per-category N] [--seed S] [--strengths 0.3,0.4,0.5,1] [--candidates C]
 *                                         [--t2i DIR] [--recognizer DIR] [--captioner DIR] [--threads T] [--json]
 *
 * `--candidates` above 1 ranks each picture's candidates with the captioner, as the bot does (default 1: the
 * image-to-image step alone).
 *
 * For held-out prompts (evalPrompts: single, pair and compositional scenes), draw a source picture with the prompt's
 * seed, then vary it as the Vary button does: image-to-image from the source, the same prompt, a new seed (the
 * prompt's + 1), at each strength. The recognizer reads the scene of the source and of each variation:
 * - keeps_scene: the variation's scene equals the source's (same objects, count, colours, sizes and relation);
 *   also per attribute: objects, colours, relation (two or more objects). At strength 1 the picture is ignored, so
 *   that row is plain text-to-image with another seed: how often the prompt alone gives the same recognized scene.
 * - changed: the share of variations whose pixels differ from the source; mean_abs_diff: the mean absolute pixel
 *   difference to the source (0..255).
 * - equals_text_to_image (strength 1 only): the share of variations pixel-identical to text-to-image with the same
 *   seed and no picture.
 */
import { decodeImage } from '../../inference/image.codec.js';
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { loadTextToImage, type TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { Scene } from '../world/scene.js';
import { DEFAULT_DIRS } from './eval.options.js';
import { DEFAULT_EVAL_SEED, evalPrompts, type EvalPrompt } from './heldout.set.js';
import { loadRecognizer, type RecognizedScene, type Recognizer } from './recognizer.js';
import { judgeScene, type Judgement } from './scene.judge.js';

export const DEFAULT_STRENGTHS = [0.3, 0.4, 0.5, 1] as const;

export interface VariationRow {
  strength: number;
  n: number;
  keeps_scene: number;
  objects: number;
  colors: number | null;
  relation: number | null;
  changed: number;
  mean_abs_diff: number;
  equals_text_to_image: number | null;
}

export interface VariationReport {
  prompts: number;
  seed: number;
  candidates: number;
  model: string;
  rows: VariationRow[];
  ms: number;
}

const rate = (values: ReadonlyArray<boolean | null>): number | null => {
  const applied = values.filter((v): v is boolean => v !== null);
  return applied.length === 0 ? null : applied.filter(Boolean).length / applied.length;
};

/** The recognized source as the scene a variation is judged against (judgeScene reads its axis and objects). */
const asScene = (seen: RecognizedScene): Scene => ({ axis: seen.axis, objects: seen.objects }) as unknown as Scene;

async function pixels(png: Buffer): Promise<Buffer> {
  return (await decodeImage(png)).data;
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

export async function measureVariations(
  t2i: TextToImage, recognizer: Recognizer, prompts: readonly EvalPrompt[], strengths: readonly number[], candidates: number,
  log: (line: string) => void = () => undefined,
): Promise<Omit<VariationReport, 'seed' | 'ms'>> {
  const judged = new Map<number, { judgements: Judgement[]; changed: boolean[]; diffs: number[]; equal: boolean[] }>();
  for (const strength of strengths) judged.set(strength, { judgements: [], changed: [], diffs: [], equal: [] });
  for (const [i, prompt] of prompts.entries()) {
    const source = (await t2i.imagine({ prompt: prompt.prompt, seed: prompt.seed, candidates })).images[0]!.png;
    const seed = (prompt.seed + 1) % 2 ** 32;
    // one at a time: requests running side by side share UNet runs, whose batch size moves the last bits
    const variations: Buffer[] = [];
    for (const strength of strengths) {
      variations.push((await t2i.imagine({ prompt: prompt.prompt, seed, candidates, image: source, strength })).images[0]!.png);
    }
    const [sourceSeen, ...seen] = await recognizer.recognize([source, ...variations]);
    const sourcePixels = await pixels(source);
    for (const [k, strength] of strengths.entries()) {
      const row = judged.get(strength)!;
      const variation = await pixels(variations[k]!);
      row.judgements.push(judgeScene(asScene(sourceSeen!), seen[k]!));
      const diff = meanAbsDiff(variation, sourcePixels);
      row.diffs.push(diff);
      row.changed.push(!variation.equals(sourcePixels));
      if (strength >= 1) {
        const plain = (await t2i.imagine({ prompt: prompt.prompt, seed, candidates })).images[0]!.png;
        row.equal.push((await pixels(plain)).equals(variation));
      }
    }
    if ((i + 1) % 25 === 0) log(`${i + 1}/${prompts.length} prompts`);
  }
  const rows: VariationRow[] = strengths.map((strength) => {
    const { judgements, changed, diffs, equal } = judged.get(strength)!;
    return {
      strength,
      n: judgements.length,
      keeps_scene: rate(judgements.map((j) => j.all))!,
      objects: rate(judgements.map((j) => j.object))!,
      colors: rate(judgements.map((j) => j.color)),
      relation: rate(judgements.map((j) => j.position)),
      changed: rate(changed)!,
      mean_abs_diff: diffs.reduce((a, b) => a + b, 0) / diffs.length,
      equals_text_to_image: equal.length > 0 ? rate(equal) : null,
    };
  });
  return { prompts: prompts.length, candidates, model: t2i.folder.name, rows };
}

export function formatVariationTable(report: VariationReport): string {
  const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
  const lines = [
    `${report.prompts} prompts (seed ${report.seed}), candidates ${report.candidates}, model ${report.model}, ${(report.ms / 1000).toFixed(0)} s`,
    '| strength | keeps scene | objects | colours | relation | pixels changed | mean abs diff | = text-to-image |',
    '|---|---|---|---|---|---|---|---|',
    ...report.rows.map((row) => `| ${row.strength} | ${pct(row.keeps_scene)} | ${pct(row.objects)} | ${pct(row.colors)} | ${pct(row.relation)} | `
      + `${pct(row.changed)} | ${row.mean_abs_diff.toFixed(1)} | ${pct(row.equals_text_to_image)} |`),
  ];
  return lines.join('\n');
}

interface CliOptions {
  perCategory: number; seed: number; strengths: number[]; candidates: number; t2i: string; recognizer: string; captioner: string; threads?: number; json: boolean;
}

function parse(argv: readonly string[]): CliOptions {
  const options: CliOptions = {
    perCategory: 80, seed: DEFAULT_EVAL_SEED, strengths: [...DEFAULT_STRENGTHS], candidates: 1,
    t2i: DEFAULT_DIRS.t2i, recognizer: DEFAULT_DIRS.recognizer, captioner: DEFAULT_DIRS.captioner, json: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    if (flag === '--json') { options.json = true; continue; }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`Expected a value after ${flag}`);
    i += 1;
    const int = (): number => {
      if (!/^\d+$/.test(value)) throw new Error(`Expected ${flag} to be a whole number, got ${JSON.stringify(value)}`);
      return Number(value);
    };
    switch (flag) {
      case '--per-category': options.perCategory = int(); break;
      case '--seed': options.seed = int(); break;
      case '--candidates': options.candidates = int(); break;
      case '--threads': options.threads = int(); break;
      case '--t2i': options.t2i = value; break;
      case '--recognizer': options.recognizer = value; break;
      case '--captioner': options.captioner = value; break;
      case '--strengths':
        options.strengths = value.split(',').map(Number);
        if (options.strengths.some((s) => !(s > 0 && s <= 1))) throw new Error(`Expected --strengths above 0 and at most 1, got ${JSON.stringify(value)}`);
        break;
      default: throw new Error(`Unknown option ${flag}`);
    }
  }
  return options;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parse(argv);
  const backend = { executionProvider: 'cpu' as const, ...(options.threads ? { intraOpThreads: options.threads } : {}) };
  const log = (line: string): void => { process.stderr.write(`variations: ${line}\n`); };
  const started = performance.now();
  const captioner = options.candidates > 1 ? await loadImageToText(options.captioner, { backend }) : undefined;
  const t2i = await loadTextToImage(options.t2i, { backend, ...(captioner ? { scorer: captioner.scoreText } : {}) });
  const recognizer = await loadRecognizer(options.recognizer, { backend });
  try {
    const prompts = evalPrompts(options.seed, options.perCategory);
    const measured = await measureVariations(t2i, recognizer, prompts, options.strengths, options.candidates, log);
    const report: VariationReport = { ...measured, seed: options.seed, ms: performance.now() - started };
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatVariationTable(report)}\n`);
    return 0;
  } finally {
    await Promise.all([t2i.dispose(), recognizer.dispose(), captioner?.dispose()]);
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error: unknown) => {
    process.stderr.write(`variations: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
