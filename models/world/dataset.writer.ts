/**
 * Writes a world dataset in Flickr8k's folder format, so code that reads Flickr8k reads it too:
 *
 *   Images/<id>.png                 64x64 RGB
 *   captions.txt                    "image,caption" then "<id>.png,<caption>", five lines per image (Kaggle Flickr8k)
 *   Flickr8k.token.txt              the same captions as "<id>.png#<k>\t<caption>" (the original Flickr8k_text)
 *   Flickr_8k.trainImages.txt       one file name per line (also devImages, testImages)
 *   compositionalImages.txt         the held-out combinations split
 *   scenes.json                     file name -> scene with each object's box in pixels
 *   manifest.json                   seed, counts, vocabulary, held-out combinations
 *
 * Each image is drawn from its own seed (dataset seed, split, index), so images come out the same
 * whatever order the concurrent workers finish in.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PictalkError } from '../../common/errors.js';
import { describeHeldOut, HELD_OUT, heldOutIn } from './compositional.js';
import { captionsFor, grammarWords } from './grammar.js';
import { layoutScene, sampleScene, sampleSceneWith, type DrawSpec } from './layout.js';
import { hashSeed, mulberry32 } from './random.js';
import type { DrawnScene } from './scene.js';
import {
  CANVAS_SIZE, COLOR_NAMES, COLORS, EMOJI_FILES, EMOJI_NAMES, OBJECT_NAMES, SHAPE_NAMES, SIZE_PIXELS,
} from './vocabulary.js';
import { WorldRenderer } from './world.renderer.js';

export type SplitName = 'train' | 'val' | 'test' | 'compositional';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test', 'compositional'];
export type SplitOption = SplitName | 'all';

/** Flickr8k's split file names; val is Flickr8k's "dev". */
export const SPLIT_FILES: Readonly<Record<SplitName, string>> = {
  train: 'Flickr_8k.trainImages.txt',
  val: 'Flickr_8k.devImages.txt',
  test: 'Flickr_8k.testImages.txt',
  compositional: 'compositionalImages.txt',
};

export const CAPTIONS_PER_IMAGE = 5;

export interface WorldOptions {
  out: string;
  count: number;
  seed: number;
  split: SplitOption;
  /** Images in flight at once. */
  concurrency?: number;
  /** Remove a previous dataset in `out` first (only the files this writer makes). */
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface ImagePlan {
  split: SplitName;
  index: number;
  file: string;
}

/**
 * How many images each split gets. `all`: `count` images split 80/10/10 into train/val/test, plus
 * a compositional split of 5% of `count` on top. One split: all `count` images go to it.
 */
export function splitCounts(count: number, split: SplitOption): Record<SplitName, number> {
  const counts: Record<SplitName, number> = { train: 0, val: 0, test: 0, compositional: 0 };
  if (split !== 'all') {
    counts[split] = count;
    return counts;
  }
  counts.train = Math.round(count * 0.8);
  counts.val = Math.round(count * 0.1);
  counts.test = count - counts.train - counts.val;
  counts.compositional = Math.round(count * 0.05);
  return counts;
}

export const imageFile = (split: SplitName, index: number): string => `${split}-${String(index).padStart(6, '0')}.png`;

/**
 * One image's scene, layout and captions: pure and seeded. Train, val and test never contain a held-out
 * combination; each compositional image contains at least one (they take turns, so all are covered).
 */
export function planImage(seed: number, split: SplitName, index: number): { spec: DrawSpec; captions: string[] } {
  const rng = mulberry32(hashSeed(seed, split, index));
  const scene = split === 'compositional'
    ? sampleSceneWith(rng, HELD_OUT[index % HELD_OUT.length] as (typeof HELD_OUT)[number])
    : sampleScene(rng);
  const spec = layoutScene(scene, rng);
  return { spec, captions: captionsFor(scene, rng, CAPTIONS_PER_IMAGE) };
}

const OUTPUT_FILES = ['captions.txt', 'Flickr8k.token.txt', 'scenes.json', 'manifest.json', ...Object.values(SPLIT_FILES)];

async function prepareFolder(out: string, force: boolean): Promise<void> {
  const existing = await readdir(out).catch(() => [] as string[]);
  if (existing.length > 0) {
    if (!force) {
      throw new PictalkError('input.invalid', `Expected an empty or new output folder, got ${out} with ${existing.length} entries (pass --force to replace a previous dataset)`, { out });
    }
    await rm(path.join(out, 'Images'), { recursive: true, force: true });
    await Promise.all(OUTPUT_FILES.map((file) => rm(path.join(out, file), { force: true })));
  }
  await mkdir(path.join(out, 'Images'), { recursive: true });
}

export interface WorldSummary {
  out: string;
  counts: Record<SplitName, number>;
  images: number;
  seconds: number;
}

export async function writeWorld(options: WorldOptions): Promise<WorldSummary> {
  const { out, count, seed, split } = options;
  const concurrency = options.concurrency ?? 16;
  const started = Date.now();
  await prepareFolder(out, options.force ?? false);
  const renderer = await WorldRenderer.create();
  const counts = splitCounts(count, split);
  const plans: ImagePlan[] = SPLIT_NAMES.flatMap((name) =>
    Array.from({ length: counts[name] }, (_, index) => ({ split: name, index, file: imageFile(name, index) })));

  // draw and write images, a fixed number in flight
  const scenes: Array<DrawnScene | undefined> = new Array(plans.length);
  const captions: Array<string[] | undefined> = new Array(plans.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < plans.length; i = next++) {
      const plan = plans[i] as ImagePlan;
      const { spec, captions: texts } = planImage(seed, plan.split, plan.index);
      const { png, scene } = await renderer.render(spec);
      await writeFile(path.join(out, 'Images', plan.file), png);
      scenes[i] = scene;
      captions[i] = texts;
      done += 1;
      options.onProgress?.(done, plans.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));

  // captions, splits, scenes
  const captionLines = ['image,caption'];
  plans.forEach((plan, i) => { for (const caption of captions[i] as string[]) captionLines.push(`${plan.file},${caption}`); });
  await writeFile(path.join(out, 'captions.txt'), `${captionLines.join('\n')}\n`);
  const tokenLines = plans.flatMap((plan, i) => (captions[i] as string[]).map((caption, k) => `${plan.file}#${k}\t${caption}`));
  await writeFile(path.join(out, 'Flickr8k.token.txt'), `${tokenLines.join('\n')}\n`);
  for (const name of SPLIT_NAMES) {
    if (split !== 'all' && split !== name) continue;
    const files = plans.filter((p) => p.split === name).map((p) => p.file);
    await writeFile(path.join(out, SPLIT_FILES[name]), files.length > 0 ? `${files.join('\n')}\n` : '');
  }
  const sceneMap: Record<string, DrawnScene> = {};
  plans.forEach((plan, i) => { sceneMap[plan.file] = scenes[i] as DrawnScene; });
  await writeFile(path.join(out, 'scenes.json'), JSON.stringify(sceneMap));

  // manifest: everything needed to tell what this dataset is, and nothing that changes between runs
  const heldOutCounts = HELD_OUT.map((h) => ({
    ...h,
    description: describeHeldOut(h),
    images: plans.filter((p, i) => p.split === 'compositional' && heldOutIn(scenes[i] as DrawnScene, [h]).length > 0).length,
  }));
  const manifest = {
    generator: 'pictalk builtin world',
    formatVersion: 1,
    seed,
    split,
    imageSize: [CANVAS_SIZE, CANVAS_SIZE],
    captionsPerImage: CAPTIONS_PER_IMAGE,
    counts,
    splitFiles: Object.fromEntries(SPLIT_NAMES.filter((n) => split === 'all' || split === n).map((n) => [n, SPLIT_FILES[n]])),
    vocabulary: {
      shapes: SHAPE_NAMES,
      emoji: EMOJI_NAMES,
      emojiFiles: EMOJI_FILES,
      colors: Object.fromEntries(Object.entries(COLORS).map(([name, c]) => [name, [c.r, c.g, c.b]])),
      sizes: SIZE_PIXELS,
      words: grammarWords(OBJECT_NAMES, COLOR_NAMES),
    },
    heldOut: heldOutCounts,
    emojiArtwork: 'Noto Emoji (Apache-2.0) via emoji-datasource-google; see models/CREDITS.md',
  };
  await writeFile(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { out, counts, images: plans.length, seconds: (Date.now() - started) / 1000 };
}
