/**
 * Live previews: the latent-to-RGB map (published SD factors, the builtin's fitted map from pictalk.json), and the
 * pipeline's preview progress on the builtin model — when previews come, what they show, and that they change nothing.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinModelDir } from '../../common/package-root.js';
import { decodeImage, encodeEnlargedPng, encodePng } from '../../inference/image.codec.js';
import {
  PreviewSchedule, SD_LATENT_PREVIEW, encodePreview, latentsToPixels, previewMapFor,
} from '../../inference/latent.preview.js';
import { readTextToImageFolder } from '../../inference/model-folder.js';
import { loadTextToImage, type TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { Progress } from '../../inference/types.js';

const BUILTIN = builtinModelDir('text-to-image');
const PROMPT = 'a red circle to the left of a blue square';

describe('the latent-to-RGB map', () => {
  it('is the folder\'s own from pictalk.json, the SD 1.5 factors for an SD VAE, none otherwise', () => {
    const builtin = readTextToImageFolder(BUILTIN);
    expect(builtin.latentPreview?.factors).toHaveLength(4);
    expect(previewMapFor(builtin)).toBe(builtin.latentPreview);
    expect(previewMapFor({ latentChannels: 4, scalingFactor: 0.18215 })).toBe(SD_LATENT_PREVIEW);
    expect(previewMapFor({ latentChannels: 4, scalingFactor: 0.5 })).toBeUndefined();
    expect(previewMapFor({ latentChannels: 16, scalingFactor: 0.18215 })).toBeUndefined();
  });

  it('maps each cell\'s channels to RGB by the factors plus the bias', () => {
    const map = { factors: [[1, 0, 0.5], [0, 2, 0]] as Array<[number, number, number]>, bias: [0.1, 0, -0.1] as [number, number, number], source: 'test' };
    const latents = new Float32Array([0.5, -0.5, /* channel 1 */ 0.25, 0]);   // [2, 1, 2]
    const pixels = latentsToPixels(map, latents, 2, 1, 2);
    expect(Array.from(pixels)).toEqual([0.6, -0.4, 0.5, 0, 0.15, -0.35].map((v) => Math.fround(v)));
    expect(() => latentsToPixels(map, latents, 3, 1, 2)).toThrow(/3 rows/);
  });

  it('makes a small PNG enlarged to about 128 pixels', async () => {
    const latents = new Float32Array(4 * 16 * 16).fill(0.3);
    const preview = encodePreview(latentsToPixels(SD_LATENT_PREVIEW, latents, 4, 16, 16), 16, 16);
    expect(preview).toMatchObject({ width: 128, height: 128 });
    const decoded = await decodeImage(preview.png);
    expect([decoded.width, decoded.height]).toEqual([128, 128]);
  });

  it('encodes the enlarged preview to the same pixels as the general PNG encoder', async () => {
    const pixels = Float32Array.from({ length: 3 * 5 * 7 }, (_, i) => Math.sin(i * 1.7));
    for (const scale of [1, 3, 8]) {
      const [cheap, general] = [await decodeImage(encodeEnlargedPng(pixels, 7, 5, scale)), await decodeImage(await encodePng(pixels, 7, 5, { upscale: scale }))];
      expect([cheap.width, cheap.height]).toEqual([7 * scale, 5 * scale]);
      expect(cheap.data.equals(general.data)).toBe(true);
    }
  });

  it('refuses a pictalk.json map of the wrong shape, naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-preview-'));
    try {
      cpSync(BUILTIN, dir, { recursive: true });
      const json = JSON.parse(readFileSync(join(dir, 'pictalk.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ ...json, latent_preview: { rgb_factors: [[1, 2, 3]] } }));
      expect(() => readTextToImageFolder(dir)).toThrow(/latent_preview\.rgb_factors.*4 rows of three numbers/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the schedule', () => {
  it('waits until the job has run long enough, then takes every few steps, never the last', () => {
    const schedule = new PreviewSchedule({ afterMs: 2000 }, 0, 20);
    const due = (step: number, now: number): boolean => schedule.due(step, now);
    expect(due(1, 500)).toBe(false);
    expect(due(5, 2100)).toBe(true);
    expect(due(6, 2200)).toBe(false);
    expect(due(8, 2300)).toBe(false);
    expect(due(9, 2400)).toBe(true);       // four steps (a fifth of 20) after the last
    expect(due(20, 9000)).toBe(false);
  });
});

describe('previews while the builtin model denoises', () => {
  let eager: TextToImage;
  let plain: TextToImage;
  beforeAll(async () => {
    eager = await loadTextToImage(BUILTIN, { previews: { afterMs: 0, everySteps: 1 } });
    plain = await loadTextToImage(BUILTIN);
  }, 30_000);
  afterAll(async () => { await Promise.all([eager?.dispose(), plain?.dispose()]); });

  const run = async (pipeline: TextToImage, steps = 10): Promise<{ events: Progress[]; png: Buffer }> => {
    const events: Progress[] = [];
    const result = await pipeline.imagine({ prompt: PROMPT, seed: 11, steps, candidates: 1 }, { onProgress: (p) => events.push(p) });
    return { events, png: result.images[0]!.png };
  };

  it('come with denoise progress when asked for, and change nothing in the result', async () => {
    const [withPreviews, without] = [await run(eager), await run(plain)];
    // one asked for at each of steps 1-9 (never the last), each encoded while the next UNet call runs and reported
    // with the step reached by then; one still encoding when the denoising ends is dropped
    const previews = withPreviews.events.filter((e) => e.preview);
    const steps = previews.map((e) => e.step);
    expect(previews.length).toBeGreaterThanOrEqual(6);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(steps.every((step) => step >= 1 && step < 10)).toBe(true);
    // no step goes backwards in what the adapters see
    const denoise = withPreviews.events.filter((e) => e.stage === 'denoise').map((e) => e.step);
    expect(denoise).toEqual([...denoise].sort((a, b) => a - b));
    expect(previews.every((e) => e.stage === 'denoise' && e.preview!.width === 128 && e.preview!.height === 128)).toBe(true);
    expect(withPreviews.png.equals(without.png)).toBe(true);
    // the default waits two seconds: a job this quick shows none
    expect(without.events.some((e) => e.preview)).toBe(false);
  });

  it('show the picture that forms: the last one is close to the finished image, cell by cell', async () => {
    const { events, png } = await run(eager);
    const last = events.filter((e) => e.preview).at(-1)!.preview!;
    const [preview, image] = [await decodeImage(last.png), await decodeImage(png)];
    // the finished 64x64 image averaged over each latent cell (4x4 pixels) against the preview's cell (8x8 pixels)
    let error = 0;
    for (let y = 0; y < 16; y += 1) {
      for (let x = 0; x < 16; x += 1) {
        for (let c = 0; c < 3; c += 1) {
          let sum = 0;
          for (let dy = 0; dy < 4; dy += 1) for (let dx = 0; dx < 4; dx += 1) sum += image.data[((4 * y + dy) * 64 + 4 * x + dx) * 3 + c]!;
          error += Math.abs(sum / 16 - preview.data[((8 * y + 4) * 128 + 8 * x + 4) * 3 + c]!);
        }
      }
    }
    const meanError = error / (16 * 16 * 3);
    expect(meanError).toBeLessThan(25);     // of 255 (about 10 here): the same picture, roughly
  });
});
