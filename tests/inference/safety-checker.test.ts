import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeResult, encode } from '../../inference/cluster/codec.js';
import { clipTensorSize, decodeImage, rgbToClipTensor } from '../../inference/image.codec.js';
import { readSafetyChecker } from '../../inference/model-folder.js';
import { readNpy } from '../../inference/npy.js';
import { loadSafetyChecker } from '../../inference/safety-checker.js';
import { loadTextToImage, type TextToImage } from '../../inference/text-to-image.pipeline.js';

// tests/fixtures/tiny-safety (models/train/tiny_safety_checker.py): a checker graph with diffusers' inputs and outputs
// that flags an image when the mean of its red channel in clip_input exceeds that of its blue channel by more than a
// threshold; CLIP preprocessing to a shortest edge of 24 and a 20 x 20 centre crop; and transformers' own output for a
// test picture.
const TINY_SD = join(process.cwd(), 'tests/fixtures/tiny-sd');
const SAFETY = join(process.cwd(), 'tests/fixtures/tiny-safety');
const PROMPT = 'a small red circle to the left of a big cat';
/** The rule's threshold, as the script wrote it (-0.12 splits the tiny model's pictures of PROMPT about in half). */
const THRESHOLD = (JSON.parse(readFileSync(join(SAFETY, 'safety_checker', 'config.json'), 'utf8')) as { threshold: number }).threshold;

/** A copy of tiny-sd with the tiny checker's safety_checker/ and feature_extractor/. */
function folderWithChecker(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-safety-'));
  cpSync(TINY_SD, dir, { recursive: true });
  for (const name of ['safety_checker', 'feature_extractor']) cpSync(join(SAFETY, name), join(dir, name), { recursive: true });
  return dir;
}

/** The tiny checker's rule, computed here from a PNG with the same preprocessing: red mean - blue mean > threshold. */
async function expectedFlag(png: Buffer, dir: string): Promise<boolean> {
  const image = await decodeImage(png);
  const { preprocessing } = readSafetyChecker(dir)!;
  const [h, w] = clipTensorSize(image.width, image.height, preprocessing);
  const clip = new Float32Array(3 * h * w);
  await rgbToClipTensor(image.data, image.width, image.height, preprocessing, clip);
  const mean = (c: number): number => clip.subarray(c * h * w, (c + 1) * h * w).reduce((a, b) => a + b, 0) / (h * w);
  return mean(0) - mean(2) > THRESHOLD;
}

describe('CLIP preprocessing for the safety checker', () => {
  it('reads the feature extractor config of the folder', () => {
    expect(readSafetyChecker(SAFETY)!.preprocessing).toEqual({
      shortestEdge: 24, crop: [20, 20], kernel: 'bicubic', rescale: 1 / 255,
      mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711],
    });
    expect(readSafetyChecker(TINY_SD)).toBeUndefined();
  });

  it('matches transformers\' CLIPImageProcessor on a 40x28 picture (resize to shortest edge 24, centre crop 20x20)', async () => {
    const picture = await decodeImage(readFileSync(join(SAFETY, 'reference', 'picture.png')));
    const reference = readNpy(readFileSync(join(SAFETY, 'reference', 'clip_input.npy')), 'clip_input.npy', [1, 3, 20, 20]);
    const { preprocessing } = readSafetyChecker(SAFETY)!;
    expect(clipTensorSize(picture.width, picture.height, preprocessing)).toEqual([20, 20]);
    const ours = new Float32Array(3 * 20 * 20);
    await rgbToClipTensor(picture.data, picture.width, picture.height, preprocessing, ours);
    // libvips' bicubic against PIL's: the same Catmull-Rom kernel, rounding apart by a few of 255 levels at edges
    // (seen: mean 0.0017, worst 0.057 in normalised units, i.e. about 0.1 and 4 levels)
    let worst = 0;
    let sum = 0;
    for (let i = 0; i < ours.length; i += 1) {
      const d = Math.abs(ours[i]! - reference.data[i]!);
      worst = Math.max(worst, d);
      sum += d;
    }
    expect(sum / ours.length).toBeLessThan(0.005);
    expect(worst).toBeLessThan(0.1);
  });

  it('computes the output size as transformers does: the long side int(edge * long / short)', () => {
    const p = { shortestEdge: 224, kernel: 'bicubic' as const, rescale: 1 / 255, mean: [0, 0, 0] as const, std: [1, 1, 1] as const };
    expect(clipTensorSize(512, 768, p)).toEqual([336, 224]);
    expect(clipTensorSize(333, 200, p)).toEqual([224, 372]);
    expect(clipTensorSize(512, 512, { ...p, crop: [224, 224] })).toEqual([224, 224]);
  });

  it('rejects a checker without its feature extractor, and a crop larger than the resized image', () => {
    const dir = folderWithChecker();
    try {
      writeFileSync(join(dir, 'feature_extractor', 'preprocessor_config.json'), JSON.stringify({ size: 24, crop_size: 32 }));
      expect(() => readSafetyChecker(dir)).toThrow(expect.objectContaining({ code: 'model.invalid', message: expect.stringMatching(/crop_size.*shortest edge 24.*32x32/) }));
      writeFileSync(join(dir, 'feature_extractor', 'preprocessor_config.json'), JSON.stringify({ size: 24, crop_size: 20, resample: 9 }));
      expect(() => readSafetyChecker(dir)).toThrow(expect.objectContaining({ code: 'model.invalid', message: expect.stringContaining('resample') }));
      rmSync(join(dir, 'feature_extractor'), { recursive: true });
      expect(() => readSafetyChecker(dir)).toThrow(expect.objectContaining({ code: 'model.invalid', message: expect.stringContaining('preprocessor_config.json') }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a graph without has_nsfw_concepts', async () => {
    const dir = folderWithChecker();
    try {
      // the VAE decoder graph has neither the inputs nor the output of a checker
      cpSync(join(TINY_SD, 'vae_decoder', 'model.onnx'), join(dir, 'safety_checker', 'model.onnx'));
      await expect(loadSafetyChecker(readSafetyChecker(dir)!)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('clip_input') });
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('safety_checker') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('text-to-image with a safety checker in the model folder', () => {
  let dir: string;
  let checked: TextToImage;
  let plain: TextToImage;
  beforeAll(async () => {
    dir = folderWithChecker();
    [checked, plain] = await Promise.all([loadTextToImage(dir), loadTextToImage(TINY_SD)]);
  }, 20_000);
  afterAll(async () => {
    await Promise.all([checked.dispose(), plain.dispose()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('flags each image as the checker\'s rule says, keeps the PNG, and a folder without a checker flags nothing', async () => {
    const result = await checked.imagine({ prompt: PROMPT, seed: 0, steps: 2, count: 4 });
    const again = await checked.imagine({ prompt: PROMPT, seed: 4, steps: 2, count: 4 });
    const images = [...result.images, ...again.images];
    const flags = images.map((image) => image.nsfw);
    expect(flags.every((flag) => typeof flag === 'boolean')).toBe(true);
    expect(flags).toEqual(await Promise.all(images.map((image) => expectedFlag(image.png, dir))));
    // the rule splits the tiny model's pictures, so both outcomes are exercised
    expect(flags).toContain(true);
    expect(flags).toContain(false);
    expect(result.timingsMs.safety).toBeGreaterThanOrEqual(0);

    const unchecked = await plain.imagine({ prompt: PROMPT, seed: 0, steps: 2, count: 4 });
    expect(unchecked.images.every((image) => !('nsfw' in image))).toBe(true);
    expect(unchecked.timingsMs.safety).toBeUndefined();
    // the checker only reads: the same seed gives the same picture with and without it (model_hash differs)
    for (let i = 0; i < 4; i += 1) {
      expect((await decodeImage(result.images[i]!.png)).data.equals((await decodeImage(unchecked.images[i]!.png)).data)).toBe(true);
    }
  });

  it('keeps the flags through the cluster\'s JSON encoding of results (front and worker in different processes)', async () => {
    const result = await checked.imagine({ prompt: PROMPT, seed: 0, steps: 2, count: 4 });
    const decoded = decodeResult(encode(result));
    if (decoded.kind !== 'imagine') throw new Error('expected an imagine result');
    expect(decoded.images.map((image) => image.nsfw)).toEqual(result.images.map((image) => image.nsfw));
    expect(decoded.images.every((image, i) => image.png.equals(result.images[i]!.png))).toBe(true);
  });
});
