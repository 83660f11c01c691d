/**
 * What live previews cost the denoising (`npm run bench -- --previews [--json]`): the builtin model loaded twice in
 * this process, one thread each, once with a preview at every denoising step from the first (the most a job can
 * get: the bot's default is one every fifth of the steps, after two seconds) and once with none. The same prompts
 * and seeds go through both, in rounds that alternate which goes first, and each round compares the time of the
 * denoising loop (its draft steps, the candidates' ranking and the remaining steps: `timingsMs.rank + denoise`).
 * - preview_denoise_overhead: the median round's (with previews / without) - 1; target <= 0.05.
 */
import { loadImageToText } from '../inference/image-to-text.pipeline.js';
import { loadTextToImage, type TextToImage } from '../inference/text-to-image.pipeline.js';
import { benchPrompts } from './bench.inputs.js';

export const PREVIEW_TARGETS = { preview_denoise_overhead: 0.05 };

export interface PreviewBench {
  rounds: Array<{ with_previews_ms: number; without_ms: number; ratio: number }>;
  jobs_per_round: number;
  previews_per_job: number;
  figures: { preview_denoise_overhead: number };
}

const log = (line: string): void => { process.stderr.write(`bench: ${line}\n`); };

export async function benchPreviews(options: { t2iDir: string; captionerDir: string; quick: boolean }): Promise<PreviewBench> {
  const backend = { executionProvider: 'cpu' as const, intraOpThreads: 1 };
  const captioner = await loadImageToText(options.captionerDir, { backend });
  const eager = await loadTextToImage(options.t2iDir, { backend, scorer: captioner.scoreText, previews: { afterMs: 0, everySteps: 1 } });
  const plain = await loadTextToImage(options.t2iDir, { backend, scorer: captioner.scoreText, previews: false });
  const prompts = benchPrompts(256);
  const rounds = options.quick ? 1 : 7;
  const jobs = options.quick ? 2 : 12;
  let previews = 0;
  /** The denoising loop's milliseconds over a round's jobs. */
  const round = async (pipeline: TextToImage, offset: number): Promise<number> => {
    let total = 0;
    for (let i = 0; i < jobs; i += 1) {
      const result = await pipeline.imagine({ prompt: prompts[(offset + i) % prompts.length]!, seed: offset + i }, {
        onProgress: (progress) => { if (progress.preview) previews += 1; },
      });
      total += (result.timingsMs.rank ?? 0) + (result.timingsMs.denoise ?? 0);
    }
    return total;
  };
  try {
    log(`previews: ${rounds} rounds of ${jobs} imagine jobs with a preview at every step and without, alternating`);
    await round(eager, 9000);                                         // warm-up, both
    await round(plain, 9000);
    previews = 0;
    const results: PreviewBench['rounds'] = [];
    for (let r = 0; r < rounds; r += 1) {
      const offset = 10_000 + 100 * r;
      const [first, second] = r % 2 === 0 ? [eager, plain] : [plain, eager];
      const a = await round(first, offset);
      const b = await round(second, offset);
      const [withMs, withoutMs] = r % 2 === 0 ? [a, b] : [b, a];
      results.push({ with_previews_ms: Math.round(withMs), without_ms: Math.round(withoutMs), ratio: Number((withMs / withoutMs).toFixed(4)) });
      log(`  round ${r + 1}: ${Math.round(withMs)} ms with previews, ${Math.round(withoutMs)} ms without`);
    }
    const sorted = results.map((x) => x.ratio).sort((a, b) => a - b);
    const ratio = sorted[Math.floor(sorted.length / 2)]!;            // an odd number of rounds: the middle one
    return {
      rounds: results,
      jobs_per_round: jobs,
      previews_per_job: Number((previews / (rounds * jobs)).toFixed(1)),
      figures: { preview_denoise_overhead: Number((ratio - 1).toFixed(4)) },
    };
  } finally {
    await Promise.all([eager.dispose(), plain.dispose(), captioner.dispose()]);
  }
}
