/**
 * imagine p50 at several sampling settings on the builtin models, one onnxruntime thread, the settings alternating
 * run by run so a busy moment of the machine falls on all of them alike (models/EVAL.md, "Fewer steps, more
 * candidates").
 *
 *   npx tsx scripts/measure/imagine-settings.ts '[{"scheduler":"ddim","steps":10,"candidates":5}, ...]' [runs]
 */
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { loadTextToImage } from '../../inference/text-to-image.pipeline.js';
import type { SchedulerName } from '../../inference/types.js';
import { summarize } from '../bench.stats.js';

type Setting = { scheduler: SchedulerName; steps: number; candidates: number; guidance?: number };   // guidance: the folder's default when absent
const settings = JSON.parse(process.argv[2] ?? '[]') as Setting[];
const runs = Number(process.argv[3] ?? 15);
if (!Array.isArray(settings) || settings.length === 0 || !Number.isInteger(runs) || runs < 1) {
  process.stderr.write('Usage: imagine-settings.ts \'[{"scheduler":"ddim","steps":10,"candidates":5}]\' [runs]\n');
  process.exit(2);
}
const backend = { intraOpThreads: 1 };
const captioner = await loadImageToText('models/builtin/captioner', { backend });
const t2i = await loadTextToImage('models/builtin/text-to-image', { backend, scorer: captioner.scoreText });
const prompts = ['a big red circle to the left of a small blue star', 'a small green heart above a big yellow square', 'two purple triangles'];
for (let r = 0; r < 3; r += 1) for (const s of settings) await t2i.imagine({ prompt: prompts[0]!, seed: r, ...s });   // warm-up
const times: number[][] = settings.map(() => []);
for (let r = 0; r < runs; r += 1) {
  for (const [i, s] of settings.entries()) {
    const started = performance.now();
    await t2i.imagine({ prompt: prompts[r % prompts.length]!, seed: 100 + r, ...s });
    times[i]!.push(performance.now() - started);
  }
}
for (const [i, s] of settings.entries()) {
  const summary = summarize(times[i]!);
  process.stdout.write(`${JSON.stringify(s)} p50 ${summary.p50} ms, min ${summary.min} ms\n`);
}
await Promise.all([t2i.dispose(), captioner.dispose()]);
