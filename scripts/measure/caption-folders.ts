/**
 * Two (or more) captioner folders against each other, as the bench's caption ratio measures them: captions a second
 * at 1 and at 8 clients (closed loop, beam 3, through one InferenceCore with the bot's two caption batches in flight),
 * folder after folder, `rounds` times, so
 * both are timed in the same minutes of the host (scripts/BENCH.md, "The round of the carried glimpse").
 *
 *   npx tsx scripts/measure/caption-folders.ts OLD_FOLDER,models/builtin/captioner [rounds]
 *
 * An older folder to compare with: `git show REV:models/builtin/captioner/FILE > DIR/FILE` for each of its files.
 */
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { benchImages } from '../bench.inputs.js';
import { DEFAULT_CAPTION_BATCHES } from '../../adapters/config.js';
import { closedLoop } from '../bench.throughput.js';
import { captionCore } from './caption-core.js';

const dirs = (process.argv[2] ?? '').split(',').filter(Boolean);
const rounds = Number(process.argv[3] ?? 3);
if (dirs.length === 0 || !Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write('usage: npx tsx scripts/measure/caption-folders.ts FOLDER[,FOLDER...] [rounds]\n');
  process.exit(2);
}
const images = await benchImages(16);
for (let round = 0; round < rounds; round += 1) {
  for (const dir of dirs) {
    const captioner = await loadImageToText(dir);
    const core = captionCore(captioner, { concurrency: { caption: DEFAULT_CAPTION_BATCHES } });
    const input = (i: number) => ({ kind: 'caption' as const, request: { image: images[i % images.length]!, beam: 3 } });
    const c1 = await closedLoop(core, 1, 150, input, 10);
    const c8 = await closedLoop(core, 8, 400, input, 16);
    process.stdout.write(`round ${round} ${dir}: 1 client ${c1.jobs_per_s}/s, 8 clients ${c8.jobs_per_s}/s, ratio ${(c8.jobs_per_s / c1.jobs_per_s).toFixed(2)}\n`);
    await core.close();
    await captioner.dispose();
  }
}
