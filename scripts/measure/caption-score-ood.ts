/**
 * Would the captioner's own caption score tell photographs from world pictures? Its beam score and the domain
 * check's score (inference/domain.check.ts) of the same `captionBatch` calls, on the eval's world test pictures and
 * crops of scikit-image's sample photographs (models/EVAL.md, "Honest captions"): quantiles, the caption score's
 * AUROC, and the photographs a caption-score threshold would decline while keeping 98% of the world pictures.
 *
 *   npx tsx scripts/measure/caption-score-ood.ts [seed 1234] [world pictures 300] [crops per photograph 20]
 */
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import type { CaptionResult } from '../../inference/types.js';
import { drawSplit } from '../../models/eval/heldout.set.js';
import { availablePhotos, photoCrops, SKIMAGE_DATA_DIR } from '../../models/eval/ood.images.js';
import { WorldRenderer } from '../../models/world/world.renderer.js';

const [seed, count, perPhoto] = [Number(process.argv[2] ?? 1234), Number(process.argv[3] ?? 300), Number(process.argv[4] ?? 20)];
const captioner = await loadImageToText('models/builtin/captioner');
try {
  const world = (await drawSplit(await WorldRenderer.create(), seed, 'test', count)).map((image) => image.png);
  const photos = (await photoCrops(SKIMAGE_DATA_DIR, seed, perPhoto, availablePhotos())).map((image) => image.bytes);
  if (photos.length === 0) throw new Error(`No sample photographs in ${SKIMAGE_DATA_DIR}: install python3-skimage`);
  const caption = async (images: Buffer[]): Promise<CaptionResult[]> => {
    const out: CaptionResult[] = [];
    for (let s = 0; s < images.length; s += 16) out.push(...((await captioner.captionBatch(images.slice(s, s + 16).map((image) => ({ image })))) as CaptionResult[]));
    return out;
  };
  const [w, p] = [await caption(world), await caption(photos)];
  const q = (xs: number[], f: number): string => xs.slice().sort((a, b) => a - b)[Math.floor(f * (xs.length - 1))]!.toFixed(3);
  for (const [name, results] of [['world', w], ['photos', p]] as const) {
    const scores = results.map((r) => r.score);
    const domain = results.map((r) => r.domainScore ?? Number.NaN);
    process.stdout.write(`${name} (${results.length}): caption score q01 ${q(scores, 0.01)} median ${q(scores, 0.5)} q99 ${q(scores, 0.99)}; `
      + `domain score min ${q(domain, 0)} median ${q(domain, 0.5)} max ${q(domain, 1)}\n`);
  }
  let wins = 0;
  for (const a of w) for (const b of p) wins += a.score > b.score ? 1 : a.score === b.score ? 0.5 : 0;
  const keep98 = w.map((r) => r.score).sort((a, b) => a - b)[Math.floor(0.02 * w.length)]!;
  process.stdout.write(`caption score AUROC (world above photos) ${(wins / (w.length * p.length)).toFixed(3)}; `
    + `a threshold of ${keep98.toFixed(3)} keeps 98% of the world pictures and declines ${(p.filter((r) => r.score < keep98).length / p.length).toFixed(3)} of the photographs\n`);
} finally {
  await captioner.dispose();
}
