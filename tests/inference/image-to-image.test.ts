import { copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { decodeImage, imageToTensor, readPngText } from '../../inference/image.codec.js';
import { OnnxModel, openModel, type TensorValue } from '../../inference/onnx.backend.js';
import { gaussianNoise } from '../../inference/schedulers/noise.js';
import { createScheduler } from '../../inference/schedulers/scheduler.factory.js';
import { alphasCumprod } from '../../inference/schedulers/scheduler.config.js';
import { loadTextToImage, startingTimesteps, type TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { ImagineResult, Progress } from '../../inference/types.js';

// tests/fixtures/tiny-sd: random weights, f = 4, 32x32 images from [B, 4, 8, 8] latents, scaling_factor 0.5;
// its vae_encoder returns the posterior mean. tests/fixtures/vae-encoders: the optimum (mean and log-variance) and
// diffusers-converter (samples inside the graph) variants of it (models/train/vae_encoder_variants.py).
const FIXTURE = join(process.cwd(), 'tests/fixtures/tiny-sd');
const ENCODERS = join(process.cwd(), 'tests/fixtures/vae-encoders');
const BUILTIN = join(process.cwd(), 'models/builtin/text-to-image');
const PROMPT = 'a small red circle to the left of a big cat';

async function pixels(result: ImagineResult, index = 0): Promise<Buffer> {
  return (await decodeImage(result.images[index]!.png)).data;
}

function maxDiff(a: Float32Array | Buffer, b: Float32Array | Buffer): number {
  let worst = 0;
  for (let i = 0; i < a.length; i += 1) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** A copy of the tiny folder with another vae_encoder graph (or none). */
function folderWith(encoder: string | null): string {
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-i2i-'));
  cpSync(FIXTURE, dir, { recursive: true });
  if (encoder === null) rmSync(join(dir, 'vae_encoder'), { recursive: true });
  else copyFileSync(join(ENCODERS, encoder), join(dir, 'vae_encoder', 'model.onnx'));
  return dir;
}

describe('the image-to-image start (diffusers img2img get_timesteps)', () => {
  it('starts at the step the strength picks: int(steps x strength) steps from the end', () => {
    const config = { _class_name: 'DDIMScheduler', steps_offset: 1, beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 };
    const ddim = createScheduler('ddim', config, 'test');
    ddim.setTimesteps(10);
    expect(ddim.timesteps).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(startingTimesteps(ddim, 10, 0.3)).toEqual([201, 101, 1]);
    expect(startingTimesteps(ddim, 10, 0.5)).toEqual([401, 301, 201, 101, 1]);
    expect(startingTimesteps(ddim, 10, 0.75)).toEqual([601, 501, 401, 301, 201, 101, 1]); // int(7.5) = 7
    expect(startingTimesteps(ddim, 10, 1)).toEqual(ddim.timesteps);
    expect(startingTimesteps(ddim, 10, undefined)).toEqual(ddim.timesteps);
    // PLMS repeats its second timestep (steps + 1 entries); diffusers slices the same list at t_start (order 1)
    const pndm = createScheduler('pndm', { ...config, _class_name: 'PNDMScheduler', skip_prk_steps: true }, 'test');
    pndm.setTimesteps(10);
    expect(pndm.timesteps.slice(0, 4)).toEqual([901, 801, 801, 701]);
    expect(startingTimesteps(pndm, 10, 0.3)).toEqual([301, 201, 101, 1]);
  });

  it('noises the clean latents to the level of a timestep as each scheduler class does', () => {
    const base = { steps_offset: 1, beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 };
    const x0 = Float32Array.from({ length: 16 }, (_, i) => (i - 8) / 8);
    const noise = gaussianNoise(3).fill(new Float32Array(16));
    for (const name of ['ddim', 'pndm', 'lcm'] as const) {
      const scheduler = createScheduler(name, { ...base, _class_name: 'DDIMScheduler' }, 'test');
      scheduler.setTimesteps(4);
      const t = scheduler.timesteps[1]!;
      const alpha = alphasCumprod(scheduler.config)[t]!;
      const got = scheduler.addNoise(x0, noise, t);
      const want = x0.map((x, i) => Math.sqrt(alpha) * x + Math.sqrt(1 - alpha) * noise[i]!);
      expect(maxDiff(got, want)).toBeLessThan(1e-6);
    }
    // sigma-parameterised: Euler adds sigma x noise; DPM-Solver scales to alpha_t x0 + sigma_t noise (the same level)
    const euler = createScheduler('euler-a', { ...base, _class_name: 'EulerAncestralDiscreteScheduler' }, 'test');
    euler.setTimesteps(4);
    const sigma = euler.sigmas[2]!;
    expect(maxDiff(euler.addNoise(x0, noise, euler.timesteps[2]!), x0.map((x, i) => x + sigma * noise[i]!))).toBeLessThan(1e-6);
    const dpm = createScheduler('dpmpp-2m', { ...base, _class_name: 'DPMSolverMultistepScheduler' }, 'test');
    dpm.setTimesteps(4);
    const ddim = createScheduler('ddim', { ...base, _class_name: 'DDIMScheduler' }, 'test');
    const t = dpm.timesteps[1]!;
    expect(maxDiff(dpm.addNoise(x0, noise, t), ddim.addNoise(x0, noise, t))).toBeLessThan(1e-5);
    expect(() => ddim.addNoise(x0, noise, 1000)).toThrow(/timestep/);
  });
});

describe('image-to-image on the tiny diffusers folder', () => {
  let pipeline: TextToImage;
  let source: Buffer;
  beforeAll(async () => {
    pipeline = await loadTextToImage(FIXTURE);
    source = (await pipeline.imagine({ prompt: PROMPT, seed: 11, steps: 3, scheduler: 'ddim' })).images[0]!.png;
  }, 20_000);
  afterAll(async () => { await pipeline.dispose(); });

  it('is plain text-to-image at strength 1: the same pixels as without a picture, for the same seed', async () => {
    for (const scheduler of ['ddim', 'euler-a', 'pndm'] as const) {
      const plain = await pipeline.imagine({ prompt: PROMPT, seed: 5, steps: 4, scheduler });
      const full = await pipeline.imagine({ prompt: PROMPT, seed: 5, steps: 4, scheduler, image: source, strength: 1 });
      expect((await pixels(full)).equals(await pixels(plain))).toBe(true);
      expect(full.settings.strength).toBe(1);
    }
  });

  it('is seeded and reproducible below strength 1, and the seed, the strength and the picture each change it', async () => {
    const request = { prompt: PROMPT, seed: 21, steps: 10, scheduler: 'ddim' as const, image: source, strength: 0.5 };
    const a = await pipeline.imagine(request);
    const b = await pipeline.imagine(request);
    expect(a.images[0]!.png.equals(b.images[0]!.png)).toBe(true);
    const others = await Promise.all([
      pipeline.imagine({ ...request, seed: 22 }),
      pipeline.imagine({ ...request, strength: 0.3 }),
      pipeline.imagine({ ...request, strength: 1 }),
      pipeline.imagine({ ...request, image: a.images[0]!.png }),
    ]);
    for (const other of others) expect((await pixels(other)).equals(await pixels(a))).toBe(false);
    expect(readPngText(a.images[0]!.png)).toMatchObject({ strength: '0.5', init_image_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('denoises int(steps x strength) steps, starting from the encoded picture noised to the first of them', async () => {
    // the UNet buffers are reused across steps: copy what each call is fed
    const run = OnnxModel.prototype.run;
    const timesteps: number[] = [];
    const samples: Float32Array[] = [];
    const spy = jest.spyOn(OnnxModel.prototype, 'run').mockImplementation(function (this: OnnxModel, feeds, ...rest) {
      if ('encoder_hidden_states' in feeds) {
        timesteps.push(Number(feeds.timestep!.data[0]));
        samples.push(Float32Array.from(feeds.sample!.data as Float32Array));
      }
      return run.call(this, feeds, ...rest);
    });
    const events: Progress[] = [];
    try {
      await pipeline.imagine(
        { prompt: PROMPT, seed: 9, steps: 10, guidance: 1, scheduler: 'ddim', image: source, strength: 0.3 },
        { onProgress: (progress) => events.push(progress) },
      );
      expect(timesteps).toEqual([201, 101, 1]);
      expect(events.filter((e) => e.stage === 'denoise').map((e) => `${e.step}/${e.total}`)).toEqual(['1/3', '2/3', '3/3']);

      // the first UNet input, rebuilt by hand: sqrt(a_201) * 0.5 * E(picture) + sqrt(1 - a_201) * noise(seed 9)
      const encoder = await openModel(join(FIXTURE, 'vae_encoder', 'model.onnx'));
      try {
        const x = await imageToTensor(source, { size: [32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], kernel: 'lanczos' });
        const out = await encoder.run({ sample: { data: x, dims: [1, 3, 32, 32] } });
        const mean = (out[encoder.outputNames[0]!] as TensorValue<Float32Array>).data;
        const noise = gaussianNoise(9, 0).fill(new Float32Array(mean.length));
        const alpha = alphasCumprod(createScheduler('ddim', pipeline.folder.schedulerConfig, 'tiny').config)[201]!;
        const want = mean.map((m, i) => Math.sqrt(alpha) * 0.5 * m + Math.sqrt(1 - alpha) * noise[i]!);
        expect(maxDiff(samples[0]!, want)).toBeLessThan(1e-5);
      } finally {
        await encoder.dispose();
      }
    } finally {
      spy.mockRestore();
    }
  });

  it('stretches any picture to the request size and makes `count` images from it, image i alone with seed + i', async () => {
    const wide = (await pipeline.imagine({ prompt: PROMPT, seed: 2, steps: 2, width: 64, height: 32, scheduler: 'ddim' })).images[0]!.png;
    const batch = await pipeline.imagine({ prompt: PROMPT, seed: 40, steps: 4, count: 2, scheduler: 'euler-a', image: wide, strength: 0.5 });
    expect(batch.images.map((image) => [image.seed, image.width, image.height])).toEqual([[40, 32, 32], [41, 32, 32]]);
    const alone = await pipeline.imagine({ prompt: PROMPT, seed: 41, steps: 4, scheduler: 'euler-a', image: wide, strength: 0.5 });
    expect(maxDiff(await pixels(batch, 1), await pixels(alone))).toBeLessThanOrEqual(2);
  });

  it('refuses bad image-to-image input with a specific message before running anything', async () => {
    const spy = jest.spyOn(OnnxModel.prototype, 'run');
    try {
      const cases: Array<[object, RegExp]> = [
        [{ image: source, strength: 7 }, /`strength` to be a number above 0 and at most 1, got `7`/],
        [{ image: source, strength: 0 }, /`strength` to be a number above 0 and at most 1, got `0`/],
        [{ image: source, strength: Number.NaN }, /`strength`/],
        [{ image: source, strength: '0.5' }, /`strength`.*\(string\)/],
        [{ strength: 0.5 }, /an `image` to start from with `strength`/],
        [{ image: 'picture.png' }, /`image` to be the bytes of a PNG, JPEG, WebP or GIF picture, got `"picture.png"`/],
        [{ image: Buffer.alloc(0) }, /an empty file/],
        [{ image: source, strength: 0.05, steps: 10 }, /`steps` x `strength` to be at least 1/],
        [{ image: source, latents: new Float32Array(256) }, /`image` or `latents`, not both/],
      ];
      for (const [extra, message] of cases) {
        expect(() => pipeline.settingsFor({ prompt: PROMPT, ...extra } as never)).toThrow(expect.objectContaining({ code: 'input.invalid', message: expect.stringMatching(message) }));
      }
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    await expect(pipeline.imagine({ prompt: PROMPT, image: Buffer.from('not a picture at all'), strength: 0.5 }))
      .rejects.toMatchObject({ code: 'input.unsupported', message: expect.stringContaining('PNG, JPEG, WebP or GIF') });
  });
});

describe('image-to-image and the folder\'s VAE encoder', () => {
  it('gives a clear error for a folder without vae_encoder/, and text-to-image still works there', async () => {
    const dir = folderWith(null);
    const pipeline = await loadTextToImage(dir);
    try {
      expect(pipeline.folder.vaeEncoderPath).toBeUndefined();
      const png = (await pipeline.imagine({ prompt: PROMPT, seed: 1, steps: 2 })).images[0]!.png;
      expect(() => pipeline.settingsFor({ prompt: PROMPT, image: png, strength: 0.5 }))
        .toThrow(expect.objectContaining({ code: 'input.invalid', message: expect.stringMatching(/VAE encoder \(vae_encoder\/model\.onnx\) for image-to-image; the model `.+` has none/) }));
    } finally {
      await pipeline.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('samples a mean-and-log-variance encoder (optimum\'s latent_parameters) with its own seeded noise', async () => {
    const dir = folderWith('moments.onnx');
    const [moments, mean] = await Promise.all([loadTextToImage(dir), loadTextToImage(FIXTURE)]);
    try {
      const source = (await mean.imagine({ prompt: PROMPT, seed: 3, steps: 2 })).images[0]!.png;
      const request = { prompt: PROMPT, seed: 8, steps: 6, scheduler: 'ddim' as const, image: source, strength: 0.5 };
      const [a, b, fromMean] = await Promise.all([moments.imagine(request), moments.imagine(request), mean.imagine(request)]);
      expect(a.images[0]!.png.equals(b.images[0]!.png)).toBe(true);
      // the same mean, plus exp(logvar / 2) x noise: close to the mean encoder's picture, not equal
      expect((await pixels(a)).equals(await pixels(fromMean))).toBe(false);
    } finally {
      await Promise.all([moments.dispose(), mean.dispose()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an encoder that samples inside the graph (diffusers\' converter), whose draws no seed reproduces', async () => {
    const dir = folderWith('sampling.onnx');
    const pipeline = await loadTextToImage(dir);
    try {
      const png = (await pipeline.imagine({ prompt: PROMPT, seed: 1, steps: 2 })).images[0]!.png;
      await expect(pipeline.imagine({ prompt: PROMPT, seed: 1, steps: 4, image: png, strength: 0.5 }))
        .rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('draws a sample inside the graph') });
      // refused again without opening the graph again; text-to-image goes on
      const spy = jest.spyOn(OnnxModel.prototype, 'run');
      try {
        await expect(pipeline.imagine({ prompt: PROMPT, seed: 2, steps: 4, image: png, strength: 0.5 })).rejects.toMatchObject({ code: 'model.invalid' });
        expect(spy.mock.contexts.filter((model) => (model as OnnxModel).path.includes('vae_encoder'))).toHaveLength(0);
      } finally {
        spy.mockRestore();
      }
      expect((await pipeline.imagine({ prompt: PROMPT, seed: 3, steps: 2 })).images).toHaveLength(1);
    } finally {
      await pipeline.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('image-to-image on the builtin model', () => {
  let pipeline: TextToImage;
  beforeAll(async () => { pipeline = await loadTextToImage(BUILTIN); }, 30_000);
  afterAll(async () => { await pipeline.dispose(); });

  it('equals text-to-image with the same seed at strength 1, and reproduces itself at 0.4', async () => {
    const prompt = 'a red circle to the left of a blue square';
    const source = (await pipeline.imagine({ prompt, seed: 1, candidates: 1 })).images[0]!.png;
    const plain = await pipeline.imagine({ prompt, seed: 2, candidates: 1 });
    const full = await pipeline.imagine({ prompt, seed: 2, candidates: 1, image: source, strength: 1 });
    expect((await pixels(full)).equals(await pixels(plain))).toBe(true);
    const a = await pipeline.imagine({ prompt, seed: 2, candidates: 1, image: source, strength: 0.4 });
    const b = await pipeline.imagine({ prompt, seed: 2, candidates: 1, image: source, strength: 0.4 });
    expect(a.images[0]!.png.equals(b.images[0]!.png)).toBe(true);
    expect((await pixels(a)).equals(await pixels(plain))).toBe(false);
    // closer to the picture it started from than the plain picture of another seed is
    const [start, variation, other] = await Promise.all([decodeImage(source), decodeImage(a.images[0]!.png), decodeImage(plain.images[0]!.png)]);
    const distance = (x: Buffer, y: Buffer): number => x.reduce((sum, v, i) => sum + Math.abs(v - y[i]!), 0) / x.length;
    expect(distance(variation.data, start.data)).toBeLessThan(distance(other.data, start.data));
  }, 30_000);
});
