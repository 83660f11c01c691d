/**
 * Captioners side by side, alternately, one onnxruntime thread: the median time of one caption at beam 8 (the builtin
 * folder's beam) and of scoring five pictures against a prompt (what ranking the text-to-image candidates costs), on
 * the same 20 drawn test images, six rounds (models/EVAL.md, "The colour read where its shape is read").
 *
 *   npx tsx scripts/measure/captioner-speed.ts DIR [DIR ...]
 */
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { drawSplit } from '../../models/eval/heldout.set.js';
import { WorldRenderer } from '../../models/world/world.renderer.js';
import { summarize } from '../bench.stats.js';

const dirs = process.argv.slice(2);
if (dirs.length === 0) throw new Error('Expected one or more captioner folders');
const captioners = await Promise.all(dirs.map((dir) => loadImageToText(dir, { backend: { intraOpThreads: 1 } })));
const images = (await drawSplit(await WorldRenderer.create(), 99, 'test', 20)).map((image) => image.png);
const prompt = 'a small red circle to the left of a big cat';
const caption = dirs.map((): number[] => []);
const score = dirs.map((): number[] => []);
for (let round = 0; round < 6; round += 1) {
  for (const [c, captioner] of captioners.entries()) {
    for (const image of images) {
      let started = performance.now();
      await captioner.caption({ image, beam: 8 });
      caption[c]!.push(performance.now() - started);
      started = performance.now();
      await captioner.scoreText([image, image, image, image, image], prompt);
      score[c]!.push(performance.now() - started);
    }
  }
}
dirs.forEach((dir, c) => console.log(`${dir}: caption at beam 8 p50 ${summarize(caption[c]!).p50} ms, scoring five pictures p50 ${summarize(score[c]!).p50} ms`));
await Promise.all(captioners.map((captioner) => captioner.dispose()));
