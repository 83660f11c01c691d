/**
 * The caption ratio (captions a second at 8 clients over 1 client, beam 3, through one InferenceCore) with one and
 * with two caption batches in flight, alternating (default six rounds). Two batches did not pay on a host whose two
 * vCPUs shared one core's units, and gave 8 clients about 10% more on one whose vCPUs were two cores, which is why the
 * bot runs two (scripts/BENCH.md, "The round of the second caption batch").
 *
 *   npx tsx scripts/measure/caption-concurrency.ts [rounds]
 */
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { benchImages } from '../bench.inputs.js';
import { closedLoop } from '../bench.throughput.js';
import { captionCore } from './caption-core.js';

const images = await benchImages(16);
const captioner = await loadImageToText('models/builtin/captioner', {});
for (const batches of Array.from({ length: Number(process.argv[2] ?? 6) }, (_, i) => 1 + (i % 2))) {
  const core = captionCore(captioner, { concurrency: { caption: batches } });
  const input = (i: number) => ({ kind: 'caption' as const, request: { image: images[i % images.length]!, beam: 3 } });
  const c1 = await closedLoop(core, 1, 150, input, 10);
  const c8 = await closedLoop(core, 8, 400, input, 16);
  process.stdout.write(`caption batches in flight ${batches}: c1 ${c1.jobs_per_s}/s, c8 ${c8.jobs_per_s}/s, ratio ${(c8.jobs_per_s / c1.jobs_per_s).toFixed(2)}\n`);
  await core.close();
}
await captioner.dispose();
