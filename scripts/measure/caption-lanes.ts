/**
 * The caption ratio (captions a second at 8 clients over 1 client, beam 3, two caption batches in flight, through one
 * InferenceCore) with the captioner's graphs on one lane (one inference thread) and on two, alternating (default six
 * rounds), and the cores the process used at 8 clients. With one lane the two batches take turns on one thread; with
 * two they run side by side (scripts/BENCH.md, "The round of the caption lanes").
 *
 *   npx tsx scripts/measure/caption-lanes.ts [rounds]
 */
import { loadImageToText, type ImageToText } from '../../inference/image-to-text.pipeline.js';
import { benchImages } from '../bench.inputs.js';
import { closedLoop } from '../bench.throughput.js';
import { captionCore } from './caption-core.js';

const images = await benchImages(16);
const captioners: Record<1 | 2, ImageToText> = {
  1: await loadImageToText('models/builtin/captioner', { lanes: 1 }),
  2: await loadImageToText('models/builtin/captioner', { lanes: 2 }),
};
const rounds = Number(process.argv[2] ?? 6);
for (let round = 0; round < rounds; round += 1) {
  for (const lanes of round % 2 ? [2, 1] as const : [1, 2] as const) {
    const captioner = captioners[lanes];
    const core = captionCore(captioner, { concurrency: { caption: 2 } });
    const input = (i: number) => ({ kind: 'caption' as const, request: { image: images[i % images.length]!, beam: 3 } });
    const c1 = await closedLoop(core, 1, 150, input, 10);
    const before = process.cpuUsage();
    const c8 = await closedLoop(core, 8, 400, input, 32);
    const cpu = process.cpuUsage(before);
    const cores = (cpu.user + cpu.system) / 1e6 / c8.seconds;
    process.stdout.write(`lanes ${lanes}: c1 ${c1.jobs_per_s}/s, c8 ${c8.jobs_per_s}/s, ratio ${(c8.jobs_per_s / c1.jobs_per_s).toFixed(2)}, `
      + `cores at 8 clients ${cores.toFixed(2)}\n`);
    await core.close();
  }
}
await Promise.all(Object.values(captioners).map((captioner) => captioner.dispose()));
