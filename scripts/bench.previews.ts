/**
 * What live previews cost the denoising (`npm run bench -- --previews [--json]`): the builtin model loaded twice in
 * this process, one thread each, once with a preview at every denoising step from the first (the most a job can
 * get: the bot's default is one every fifth of the steps, after two seconds) and once with none. Each prompt and
 * seed goes through both back to back, the order alternating from pair to pair, so a host that speeds up or slows
 * down moves both sides of a pair alike; each pair compares the time of the denoising loop (its draft steps, the
 * candidates' ranking and the remaining steps: `timingsMs.rank + denoise`).
 * - preview_denoise_overhead: the median pair's (with previews / without) - 1; target <= 0.05.
 */
import { loadImageToText } from '../inference/image-to-text.pipeline.js';
import { loadTextToImage, type TextToImage } from '../inference/text-to-image.pipeline.js';
import { benchPrompts } from './bench.inputs.js';

export const PREVIEW_TARGETS = { preview_denoise_overhead: 0.05 };

export interface PreviewBench {
  pairs: number;
  previews_per_job: number;
  /** The denoising loop's milliseconds, p50 over the jobs, with previews and without. */
  with_previews_p50_ms: number;
  without_p50_ms: number;
  /** The pairs' ratios (with / without) at the 10th, 50th and 90th percentiles. */
  pair_ratio: { p10: number; p50: number; p90: number };
  /** Sum over all jobs with previews / without, minus 1. */
  total_overhead: number;
  figures: { preview_denoise_overhead: number };
}

const log = (line: string): void => { process.stderr.write(`bench: ${line}\n`); };
const at = (sorted: readonly number[], share: number): number => sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!;
const round4 = (value: number): number => Number(value.toFixed(4));

export async function benchPreviews(options: { t2iDir: string; captionerDir: string; quick: boolean }): Promise<PreviewBench> {
  const backend = { executionProvider: 'cpu' as const, intraOpThreads: 1 };
  const captioner = await loadImageToText(options.captionerDir, { backend });
  const eager = await loadTextToImage(options.t2iDir, { backend, scorer: captioner.scoreText, previews: { afterMs: 0, everySteps: 1 } });
  const plain = await loadTextToImage(options.t2iDir, { backend, scorer: captioner.scoreText, previews: false });
  const prompts = benchPrompts(256);
  const pairs = options.quick ? 4 : 151;
  let previews = 0;
  /** The denoising loop's milliseconds of one job. */
  const denoise = async (pipeline: TextToImage, index: number): Promise<number> => {
    const result = await pipeline.imagine({ prompt: prompts[index % prompts.length]!, seed: 10_000 + index }, {
      onProgress: (progress) => { if (progress.preview && pipeline === eager) previews += 1; },
    });
    return (result.timingsMs.rank ?? 0) + (result.timingsMs.denoise ?? 0);
  };
  try {
    log(`previews: ${pairs} prompts, each with a preview at every step and without, back to back`);
    for (let i = 0; i < 4; i += 1) { await denoise(eager, 9000 + i); await denoise(plain, 9000 + i); }   // warm-up
    previews = 0;
    const withMs: number[] = [];
    const withoutMs: number[] = [];
    for (let i = 0; i < pairs; i += 1) {
      if (i % 2 === 0) { withMs.push(await denoise(eager, i)); withoutMs.push(await denoise(plain, i)); }
      else { withoutMs.push(await denoise(plain, i)); withMs.push(await denoise(eager, i)); }
    }
    const ratios = withMs.map((ms, i) => ms / withoutMs[i]!).sort((a, b) => a - b);
    const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
    const sortedWith = [...withMs].sort((a, b) => a - b);
    const sortedWithout = [...withoutMs].sort((a, b) => a - b);
    return {
      pairs,
      previews_per_job: Number((previews / pairs).toFixed(1)),
      with_previews_p50_ms: Number(at(sortedWith, 0.5).toFixed(1)),
      without_p50_ms: Number(at(sortedWithout, 0.5).toFixed(1)),
      pair_ratio: { p10: round4(at(ratios, 0.1)), p50: round4(at(ratios, 0.5)), p90: round4(at(ratios, 0.9)) },
      total_overhead: round4(sum(withMs) / sum(withoutMs) - 1),
      figures: { preview_denoise_overhead: round4(at(ratios, 0.5) - 1) },
    };
  } finally {
    await Promise.all([eager.dispose(), plain.dispose(), captioner.dispose()]);
  }
}
