/**
 * The captioner's out-of-domain check, measured (`npm run eval`, part `domain`): the share of real photographs it
 * declines (target >= 0.9), of synthesized screenshots and line drawings it declines, and of held-out world images
 * (the eval seed's test and compositional splits, never seen by the calibration) it still captions (target >= 0.98),
 * as drawn and as people pass them on (JPEG, rescaled).
 * The verdicts are the pipeline's own (`embed` + the folder's check), the ones `caption` gives each image.
 */
import type { ImageToText } from '../../inference/image-to-text.pipeline.js';
import type { HeldOutImage } from './heldout.set.js';
import { asShared, photoCrops, synthesized, type OodImage } from './ood.images.js';

export interface DomainMetrics {
  metrics: Record<string, number | null>;
  counts: Record<string, number>;
  /** Per photograph and per kind of synthesized picture (`drawing:plant`): the share declined, so a weak spot has a name. */
  perSource: Record<string, number>;
  /** The world images that were declined, and the out-of-domain pictures that passed (their score, up to 5 each). */
  misses: Array<{ set: string; source: string; index: number; score: number }>;
}

export interface DomainEvalOptions {
  seed: number;
  /** Folder of the sample photographs (Debian's python3-skimage); undefined: no photographs (metric null). */
  photosDir: string | undefined;
  photos: string[];
  perPhoto: number;
  synthesized: number;
}

/** Scores (distance over threshold) of many images, in batches the captioner takes. */
async function scores(captioner: ImageToText, images: readonly Buffer[]): Promise<number[]> {
  const check = captioner.domain!;
  const out: number[] = [];
  for (let start = 0; start < images.length; start += 16) {
    for (const pooled of await captioner.embed(images.slice(start, start + 16))) out.push(check.judge(pooled).score);
  }
  return out;
}

export async function evaluateDomain(captioner: ImageToText, world: readonly HeldOutImage[], options: DomainEvalOptions): Promise<DomainMetrics> {
  const metrics: Record<string, number | null> = {};
  const counts: Record<string, number> = {};
  const perSource: Record<string, number> = {};
  const misses: DomainMetrics['misses'] = [];
  if (!captioner.domain) {
    // a general-purpose folder (or one without domain.json) has no check to measure
    for (const key of ['ood_world_captioned', 'ood_world_shared_captioned', 'ood_photos_declined', 'ood_screenshots_declined', 'ood_drawings_declined']) metrics[key] = null;
    return { metrics, counts, perSource, misses };
  }

  const worldScores = await scores(captioner, world.map((image) => image.png));
  metrics.ood_world_captioned = world.length === 0 ? null : worldScores.filter((s) => s <= 1).length / world.length;
  counts.ood_world = world.length;
  const sharedScores = await scores(captioner, await Promise.all(world.map((image, i) => asShared(image.png, options.seed, i))));
  metrics.ood_world_shared_captioned = world.length === 0 ? null : sharedScores.filter((s) => s <= 1).length / world.length;
  for (const [set, found] of [['world', worldScores], ['world as shared', sharedScores]] as const) {
    world.forEach((image, i) => {
      if (found[i]! > 1 && misses.filter((m) => m.set === set).length < 5) misses.push({ set, source: image.split, index: image.index, score: found[i]! });
    });
  }

  const declinedShare = async (images: readonly OodImage[], key: string): Promise<void> => {
    const found = await scores(captioner, images.map((image) => image.bytes));
    metrics[key] = images.length === 0 ? null : found.filter((s) => s > 1).length / images.length;
    let kept = 0;
    images.forEach((image, i) => {
      if (found[i]! <= 1 && kept < 5) {
        kept += 1;
        misses.push({ set: image.set, source: image.source, index: image.index, score: found[i]! });
      }
    });
    for (const source of [...new Set(images.map((image) => image.source))].sort()) {
      const mine = images.flatMap((image, i) => (image.source === source ? [found[i]!] : []));
      perSource[source] = mine.filter((s) => s > 1).length / mine.length;
    }
  };

  const photos = options.photosDir === undefined ? [] : await photoCrops(options.photosDir, options.seed, options.perPhoto, options.photos);
  await declinedShare(photos, 'ood_photos_declined');
  counts.ood_photos = photos.length;
  counts.ood_photo_sources = options.photosDir === undefined ? 0 : options.photos.length;
  const screenshots = await synthesized('screenshot', options.seed, options.synthesized);
  await declinedShare(screenshots, 'ood_screenshots_declined');
  counts.ood_screenshots = screenshots.length;
  const drawings = await synthesized('drawing', options.seed, options.synthesized);
  await declinedShare(drawings, 'ood_drawings_declined');
  counts.ood_drawings = drawings.length;
  return { metrics, counts, perSource, misses };
}
