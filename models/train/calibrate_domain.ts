/**
 * Calibrates the captioner's out-of-domain check (inference/domain.check.ts) and writes the folder's `domain.json`:
 *
 * 1. fit: the pooled encoder features of `--fit` training images (world seed 1, the seed the builtin captioner is
 *    trained on, train split) give the mean, the top `--components` principal directions and the residual variance;
 * 2. threshold: `--check` other world images (seed 1, val split: none of the fitted ones and none of the eval's, which
 *    draws with seed 1234), each as drawn and as people pass it on (models/eval/ood.images.ts `asShared`: JPEG,
 *    rescaled), give their distances; the threshold is the `--quantile` quantile of those (default: the largest)
 *    times `--margin` (default 1.1, headroom for pictures a little further off, such as generated ones).
 *
 * Only world images decide the statistics and the threshold; photographs, screenshots and drawings are left to
 * `npm run eval` to measure the check on. Deterministic: the same folder and options write the same file.
 *
 *   npx tsx models/train/calibrate_domain.ts [--captioner DIR] [--fit N] [--check N] [--components K]
 *                                            [--quantile Q] [--margin M] [--write]
 *
 * Without --write it prints the numbers and writes nothing.
 */
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { builtinModelDir } from '../../common/package-root.js';
import { domainDistance, domainJson, fitDomainStats, sha256File, type DomainStats } from '../../inference/domain.check.js';
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { integerOption } from '../cli-options.js';
import { asShared } from '../eval/ood.images.js';
import { planImage, type SplitName } from '../world/dataset.writer.js';
import { WorldRenderer } from '../world/world.renderer.js';

const { values } = parseArgs({
  options: {
    captioner: { type: 'string' }, fit: { type: 'string' }, check: { type: 'string' }, components: { type: 'string' },
    quantile: { type: 'string' }, margin: { type: 'string' }, write: { type: 'boolean' },
  },
});
/** The world seed the builtin captioner is trained on (models/train/train_all.sh). */
const TRAIN_SEED = 1;
const dir = values.captioner ?? builtinModelDir('captioner');
const fitCount = integerOption('fit', values.fit ?? '3000', 100, 1_000_000);
const checkCount = integerOption('check', values.check ?? '1000', 100, 1_000_000);
const components = integerOption('components', values.components ?? '32', 1, 4096);
const quantile = Number(values.quantile ?? 1);
const margin = Number(values.margin ?? 1.1);
if (!(quantile > 0 && quantile <= 1) || !(margin >= 1 && margin <= 100)) {
  throw new Error(`Expected --quantile in (0, 1] and --margin from 1 to 100, got ${values.quantile} and ${values.margin}`);
}

// the folder's own encoder, through the pipeline that judges images in production; the check itself is off while
// calibrating (a stale domain.json must not stop its own replacement), so load from the folder as it is
const captioner = await loadImageToText(dir, { maxBatch: 64, domainCheck: false });
const renderer = await WorldRenderer.create();

/** Pooled encoder features of `count` world images of a split; `shared`: also each as people pass it on. */
async function pooled(split: SplitName, count: number, shared = false): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let start = 0; start < count; start += 32) {
    const images: Buffer[] = [];
    for (let index = start; index < Math.min(count, start + 32); index += 1) {
      const { png } = await renderer.render(planImage(TRAIN_SEED, split, index).spec);
      images.push(png);
      if (shared) images.push(await asShared(png, TRAIN_SEED, index));
    }
    out.push(...(await captioner.embed(images)));
  }
  return out;
}

try {
  const t0 = Date.now();
  const fitted = fitDomainStats(await pooled('train', fitCount), components);
  const distances = (await pooled('val', checkCount, true)).map((features) => domainDistance({ ...fitted, threshold: 1 } as DomainStats, features))
    .sort((a, b) => a - b);
  const at = distances[Math.min(distances.length - 1, Math.ceil(quantile * distances.length) - 1)]!;
  const threshold = at * margin;
  const encoderFile = captioner.folder.encoderPath.slice(captioner.folder.dir.length + 1);
  const stats: DomainStats = { ...fitted, threshold, encoderFile, encoderSha256: sha256File(captioner.folder.encoderPath) };
  const calibration = {
    script: 'models/train/calibrate_domain.ts',
    world_seed: TRAIN_SEED,
    fit: { split: 'train', images: fitCount, components },
    threshold: { split: 'val', images: checkCount, forms: ['as drawn', 'as shared (JPEG, rescaled)'], quantile, margin, distance_at_quantile: Number(at.toPrecision(7)), max_distance: Number(distances.at(-1)!.toPrecision(7)) },
    explained_variance: Number((Array.from(fitted.variances).reduce((a, b) => a + b, 0)
      / (Array.from(fitted.variances).reduce((a, b) => a + b, 0) + fitted.residualVariance * (fitted.dims - components))).toPrecision(4)),
  };
  process.stdout.write(`calibrate_domain: ${relative(process.cwd(), dir) || '.'}: ${fitted.dims} features, ${components} components `
    + `(${(calibration.explained_variance * 100).toFixed(1)}% of the variance); val distance median ${distances[distances.length >> 1]!.toFixed(1)}, `
    + `q${quantile} ${at.toFixed(1)}, max ${distances.at(-1)!.toFixed(1)}; threshold ${threshold.toFixed(1)} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  if (values.write) {
    writeFileSync(join(dir, 'domain.json'), domainJson(stats, calibration));
    process.stdout.write(`calibrate_domain: wrote ${join(relative(process.cwd(), dir) || '.', 'domain.json')}\n`);
  }
} finally {
  await captioner.dispose();
}
