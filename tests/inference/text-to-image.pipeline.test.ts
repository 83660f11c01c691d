import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { decodeImage, readPngText } from '../../inference/image.codec.js';
import { readNpy } from '../../inference/npy.js';
import { OnnxModel, type Feeds } from '../../inference/onnx.backend.js';
import { loadTextToImage, type TextScorer, type TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { ImagineResult } from '../../inference/types.js';
import { createScheduler } from '../../inference/schedulers/scheduler.factory.js';

// tests/fixtures/tiny-sd: random weights, f = 4, 32x32 images from [B, 4, 8, 8] latents, float32 timestep.
const FIXTURE = join(process.cwd(), 'tests/fixtures/tiny-sd');
const PARITY = join(process.cwd(), 'tests/fixtures/tiny-sd-parity');
const PROMPT = 'a small red circle to the left of a big cat';

describe('text-to-image on the tiny diffusers folder', () => {
  let pipeline: TextToImage;
  beforeAll(async () => { pipeline = await loadTextToImage(FIXTURE); }, 20_000);
  afterAll(async () => { await pipeline.dispose(); });

  it('reads its defaults from the folder', () => {
    expect(pipeline.folder.defaults).toEqual({ scheduler: 'pndm', steps: 20, guidance: 7.5, width: 32, height: 32, candidates: 1, rankAt: 1 });
    expect(pipeline.folder).toMatchObject({ latentFactor: 4, latentChannels: 4, scalingFactor: 0.5 });
  });

  it('lets a space\'s `maxSteps` cap the folder\'s default steps, and only the default', () => {
    expect(pipeline.settingsFor({ prompt: 'x', seed: 1, maxSteps: 8 }).steps).toBe(8);
    expect(pipeline.settingsFor({ prompt: 'x', seed: 1, maxSteps: 30 }).steps).toBe(20);
    expect(pipeline.settingsFor({ prompt: 'x', seed: 1, steps: 25, maxSteps: 8 }).steps).toBe(25);
  });

  it('gives the same PNG bytes for the same seed, prompt and settings, and different ones for another seed', async () => {
    const a = await pipeline.imagine({ prompt: PROMPT, seed: 7, steps: 5 });
    const b = await pipeline.imagine({ prompt: PROMPT, seed: 7, steps: 5 });
    const c = await pipeline.imagine({ prompt: PROMPT, seed: 8, steps: 5 });
    expect(a.images[0]!.png.equals(b.images[0]!.png)).toBe(true);
    expect(a.images[0]!.png.equals(c.images[0]!.png)).toBe(false);
    expect(a.settings).toMatchObject({ seed: 7, steps: 5, scheduler: 'pndm', guidance: 7.5, width: 32, height: 32, count: 1 });
    expect(a.model.name).toBe('tiny-sd');
    expect(a.model.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('writes the settings and the AI-generated marker into the PNG', async () => {
    const result = await pipeline.imagine({ prompt: PROMPT, negativePrompt: 'blurry', seed: 3, steps: 2, scheduler: 'ddim', guidance: 5 });
    const text = readPngText(result.images[0]!.png);
    expect(text).toMatchObject({
      prompt: PROMPT, negative_prompt: 'blurry', seed: '3', steps: '2', guidance: '5', scheduler: 'ddim',
      model: 'tiny-sd', model_hash: result.model.hash, ai_generated: 'true', Software: 'pictalk',
    });
  });

  it('makes `count` images in one batch, image i reproducible alone with seed + i', async () => {
    const batch = await pipeline.imagine({ prompt: PROMPT, seed: 100, steps: 3, count: 3, scheduler: 'euler-a' });
    expect(batch.images.map((image) => image.seed)).toEqual([100, 101, 102]);
    const alone = await pipeline.imagine({ prompt: PROMPT, seed: 101, steps: 3, scheduler: 'euler-a' });
    const [x, y] = await Promise.all([decodeImage(batch.images[1]!.png), decodeImage(alone.images[0]!.png)]);
    let worst = 0;
    for (let i = 0; i < x.data.length; i += 1) worst = Math.max(worst, Math.abs(x.data[i]! - y.data[i]!));
    expect(worst).toBeLessThanOrEqual(2); // batch-size numerics in the convolutions, nothing more
    expect(batch.images[0]!.png.equals(batch.images[1]!.png)).toBe(false);
  });

  it('lets the negative prompt replace the unconditional text', async () => {
    const plain = await pipeline.imagine({ prompt: PROMPT, seed: 5, steps: 3 });
    const negative = await pipeline.imagine({ prompt: PROMPT, seed: 5, steps: 3, negativePrompt: 'a green square' });
    expect(plain.images[0]!.png.equals(negative.images[0]!.png)).toBe(false);
    // without guidance the unconditional branch is not run, so the negative prompt has no effect
    const off1 = await pipeline.imagine({ prompt: PROMPT, seed: 5, steps: 3, guidance: 1 });
    const off2 = await pipeline.imagine({ prompt: PROMPT, seed: 5, steps: 3, guidance: 1, negativePrompt: 'a green square' });
    const [p1, p2] = await Promise.all([decodeImage(off1.images[0]!.png), decodeImage(off2.images[0]!.png)]);
    expect(p1.data.equals(p2.data)).toBe(true); // the pixels; the PNG text still records the negative prompt
  });

  it('runs both guidance halves in one UNet call per step (batch 2 x count)', async () => {
    const spy = jest.spyOn(OnnxModel.prototype, 'run');
    try {
      // DDIM: one UNet call per step (PNDM's PLMS repeats its second timestep: steps + 1 calls)
      await pipeline.imagine({ prompt: 'a spy prompt', negativePrompt: 'a unique negative', seed: 1, steps: 4, count: 2, scheduler: 'ddim' });
      const unetCalls = spy.mock.calls.filter(([feeds]) => 'sample' in (feeds as Feeds));
      expect(unetCalls).toHaveLength(4);
      for (const [feeds] of unetCalls) {
        expect((feeds as Feeds).sample!.dims).toEqual([4, 4, 8, 8]);
        expect((feeds as Feeds).encoder_hidden_states!.dims[0]).toBe(4);
        expect((feeds as Feeds).timestep!.data).toBeInstanceOf(Float32Array); // the fixture's timestep is float
      }
      const textCalls = spy.mock.calls.filter(([feeds]) => 'input_ids' in (feeds as Feeds));
      expect(textCalls).toHaveLength(1);                     // prompt and negative prompt in one encoder call
      expect((textCalls[0]![0] as Feeds).input_ids!.dims).toEqual([2, 16]);
      // a second request with the same texts reuses the cached embeddings
      spy.mockClear();
      await pipeline.imagine({ prompt: 'a spy prompt', negativePrompt: 'a unique negative', seed: 2, steps: 1, scheduler: 'ddim' });
      expect(spy.mock.calls.filter(([feeds]) => 'input_ids' in (feeds as Feeds))).toHaveLength(0);
      spy.mockClear();
      await pipeline.imagine({ prompt: 'another spy prompt', seed: 1, steps: 2, guidance: 1, scheduler: 'ddim' });
      const unguided = spy.mock.calls.filter(([feeds]) => 'sample' in (feeds as Feeds));
      expect(unguided.map(([feeds]) => (feeds as Feeds).sample!.dims[0])).toEqual([1, 1]);
    } finally {
      spy.mockRestore();
    }
  });

  it('shares UNet runs between requests running side by side, with the same bytes as running alone', async () => {
    const requests = [
      { prompt: PROMPT, seed: 11, steps: 3, scheduler: 'ddim' as const },
      { prompt: 'a big blue star', seed: 12, steps: 3, scheduler: 'euler-a' as const, count: 2 },
      { prompt: 'a small cat above a big tree', seed: 13, steps: 5, scheduler: 'pndm' as const, guidance: 1 },
    ];
    const alone: ImagineResult[] = [];
    for (const request of requests) alone.push(await pipeline.imagine(request));
    const before = { ...pipeline.unetStats };
    const together = await Promise.all(requests.map((request) => pipeline.imagine(request)));
    const runs = pipeline.unetStats.runs - before.runs;
    const calls = pipeline.unetStats.calls - before.calls;
    expect(calls).toBe(3 + 3 + 6);                  // DDIM 3, Euler a 3, PNDM 5 steps + 1
    expect(runs).toBeLessThan(calls);               // requests shared runs
    expect(pipeline.unetStats.maxMerged).toBeGreaterThanOrEqual(2);
    together.forEach((result, i) => {
      expect(result.images.map((image) => image.png)).toEqual(alone[i]!.images.map((image) => image.png));
    });
  });

  it('validates sizes against the latent factor and the model limit', async () => {
    await expect(pipeline.imagine({ prompt: 'x', width: 30 })).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringMatching(/multiple of 4.*`30`/) });
    await expect(pipeline.imagine({ prompt: 'x', height: 0 })).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(pipeline.imagine({ prompt: 'x', width: 68 })).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('64') });
    const wide = await pipeline.imagine({ prompt: 'x', width: 48, height: 16, steps: 1 });
    expect([wide.images[0]!.width, wide.images[0]!.height]).toEqual([48, 16]);
    await expect(pipeline.imagine({ prompt: 'x', steps: 101 })).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('`101`') });
    await expect(pipeline.imagine({ prompt: 'x', count: 5 })).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(pipeline.imagine({ prompt: 'x', guidance: -1 })).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(pipeline.imagine({ prompt: 'x', seed: 2 ** 32 })).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(pipeline.imagine({ prompt: 'x'.repeat(1001) })).rejects.toMatchObject({ code: 'input.too_large' });
  });

  it('reports one progress event per denoising step, then the decode', async () => {
    const events: string[] = [];
    await pipeline.imagine({ prompt: PROMPT, seed: 1, steps: 6, scheduler: 'ddim' }, { onProgress: (p) => events.push(`${p.stage} ${p.step}/${p.total}`) });
    expect(events).toEqual(['denoise 1/6', 'denoise 2/6', 'denoise 3/6', 'denoise 4/6', 'denoise 5/6', 'denoise 6/6', 'decode 1/1']);
  });

  it('stops between steps when cancelled', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = pipeline.imagine({ prompt: PROMPT, seed: 1, steps: 10 }, {
      signal: controller.signal,
      onProgress: (p) => { seen.push(p.step); if (p.step === 2) controller.abort(); },
    });
    await expect(run).rejects.toMatchObject({ code: 'job.cancelled' });
    expect(seen).toEqual([1, 2]);
  });

  it('checks the shape of given latents against the model and size', async () => {
    await expect(pipeline.imagine({ prompt: PROMPT, latents: new Float32Array(4 * 8 * 7) }))
      .rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('[1, 4, 8, 8]') });
    await expect(pipeline.imagine({ prompt: PROMPT, latents: new Float32Array(4 * 8 * 8), width: 64 }))
      .rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('[1, 4, 8, 16]') });
    const zeros = await pipeline.imagine({ prompt: PROMPT, latents: new Float32Array(256), steps: 2, seed: 1 });
    const zeros2 = await pipeline.imagine({ prompt: PROMPT, latents: new Float32Array(256), steps: 2, seed: 2 });
    expect(zeros.images[0]!.png.equals(zeros2.images[0]!.png)).toBe(false); // the seed only changes the PNG's text
    expect((await decodeImage(zeros.images[0]!.png)).data.equals((await decodeImage(zeros2.images[0]!.png)).data)).toBe(true);
  });

  it('upscales the PNG by an integer factor', async () => {
    const result = await pipeline.imagine({ prompt: PROMPT, seed: 1, steps: 1, upscale: 3 });
    expect(result.images[0]).toMatchObject({ width: 96, height: 96 });
    expect(await decodeImage(result.images[0]!.png)).toMatchObject({ width: 96, height: 96 });
  });

  (existsSync(PARITY) ? it : it.skip)('matches the PyTorch DDIM reference from the saved latents', async () => {
    const parity = JSON.parse(readFileSync(join(PARITY, 'parity.json'), 'utf8')) as { prompt: string; negative_prompt: string; steps: number; guidance: number; scheduler: 'ddim' };
    const latents = readNpy(readFileSync(join(PARITY, 'initial_latents.npy'))).data;
    const reference = readNpy(readFileSync(join(PARITY, 'image.npy')));              // [1, 3, 32, 32] in [-1, 1]
    const result = await pipeline.imagine({
      prompt: parity.prompt, negativePrompt: parity.negative_prompt, steps: parity.steps, guidance: parity.guidance,
      scheduler: parity.scheduler, latents, seed: 0,
    });
    const image = await decodeImage(result.images[0]!.png);
    const [, , height, width] = reference.shape as [number, number, number, number];
    let worst = 0;
    for (let c = 0; c < 3; c += 1) {
      for (let i = 0; i < height * width; i += 1) {
        const expected = Math.round(Math.min(1, Math.max(0, reference.data[c * height * width + i]! / 2 + 0.5)) * 255);
        worst = Math.max(worst, Math.abs(image.data[i * 3 + c]! - expected));
      }
    }
    expect(worst).toBeLessThanOrEqual(1);
  });
});

describe('text-to-image with an int64 [1] timestep (the original diffusers export)', () => {
  it('reads the dtype and shape from the session and truncates fractional timesteps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-'));
    // record the timestep values as they are fed (the pipeline refills one buffer every step)
    const original = OnnxModel.prototype.run;
    const fed: { data: bigint[]; dims: readonly number[]; type: string }[] = [];
    const spy = jest.spyOn(OnnxModel.prototype, 'run').mockImplementation(function (this: OnnxModel, feeds, outputs) {
      const timestep = feeds.timestep;
      if (timestep) fed.push({ data: Array.from(timestep.data as BigInt64Array), dims: timestep.dims, type: timestep.data.constructor.name });
      return original.call(this, feeds, outputs);
    });
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      cpSync(join(process.cwd(), 'tests/fixtures/onnx-backend/unet_int64_timestep.onnx'), join(dir, 'unet', 'model.onnx'));
      const pipeline = await loadTextToImage(dir);
      try {
        const result = await pipeline.imagine({ prompt: PROMPT, seed: 1, steps: 3, scheduler: 'euler-a', count: 2 });
        expect(result.images).toHaveLength(2);
        const scheduler = createScheduler('euler-a', pipeline.folder.schedulerConfig);
        scheduler.setTimesteps(3);
        expect(scheduler.timesteps.some((t) => !Number.isInteger(t))).toBe(true); // 999, 499.5, 0
        expect(fed).toEqual(scheduler.timesteps.map((t) => ({ data: [BigInt(Math.trunc(t))], dims: [1], type: 'BigInt64Array' })));
      } finally {
        await pipeline.dispose();
      }
    } finally {
      spy.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ranking candidates with a scorer', () => {
  // a scorer that can be checked by hand: brighter pictures score higher
  const calls: Array<{ count: number; text: string }> = [];
  const brightness: TextScorer = async (images, text) => {
    calls.push({ count: images.length, text });
    return Promise.all(images.map(async (image) => {
      // the pipeline hands its drafts over as RGB pixels; an encoded picture is read like one
      const data = Buffer.isBuffer(image) ? (await decodeImage(image)).data : image.rgb;
      let sum = 0;
      for (const v of data) sum += v;
      return sum / data.length;
    }));
  };
  let ranked: TextToImage;
  let plain: TextToImage;
  beforeAll(async () => {
    [ranked, plain] = await Promise.all([loadTextToImage(FIXTURE, { scorer: brightness }), loadTextToImage(FIXTURE)]);
  }, 20_000);
  afterAll(async () => { await Promise.all([ranked.dispose(), plain.dispose()]); });

  it('keeps, per image, the candidate the scorer ranks first; its seed redraws it with the same candidates', async () => {
    calls.length = 0;
    const settings = { prompt: PROMPT, steps: 3, scheduler: 'euler-a' as const };
    const result = await ranked.imagine({ ...settings, seed: 40, count: 2, candidates: 3 });
    expect(calls).toEqual([{ count: 3, text: PROMPT }, { count: 3, text: PROMPT }]);
    expect(result.settings).toMatchObject({ count: 2, candidates: 3 });
    // every candidate drawn alone: image i picks among seeds 40 + 3i .. 42 + 3i
    const alone = await Promise.all([40, 41, 42, 43, 44, 45].map((seed) => plain.imagine({ ...settings, seed })));
    const scores = await brightness(alone.map((r) => r.images[0]!.png), PROMPT);
    for (const [i, image] of result.images.entries()) {
      const group = scores.slice(3 * i, 3 * i + 3);
      const best = group.indexOf(Math.max(...group));
      expect(image.seed).toBe(40 + 3 * i);
      expect(image.ranking).toEqual({ fit: expect.closeTo(group[best]!, 0), candidates: 3, kept: best, keptSeed: 40 + 3 * i + best });
      const [x, y] = await Promise.all([decodeImage(image.png), decodeImage(alone[3 * i + best]!.images[0]!.png)]);
      let worst = 0;
      for (let k = 0; k < x.data.length; k += 1) worst = Math.max(worst, Math.abs(x.data[k]! - y.data[k]!));
      expect(worst).toBeLessThanOrEqual(2);
      expect(readPngText(image.png)).toMatchObject({
        seed: String(40 + 3 * i), candidates: '3', ranking: expect.stringContaining(`candidate ${best + 1} of 3 (seed ${40 + 3 * i + best} with candidates 1`),
      });
    }
    // image 1 again on its own: count 1 from its seed, same candidates
    const again = await ranked.imagine({ ...settings, seed: result.images[1]!.seed, candidates: 3 });
    expect(again.images[0]!.ranking).toEqual(result.images[1]!.ranking);
  });

  it('draws one picture per image with candidates 1, and ranks by the folder default otherwise', async () => {
    const one = await ranked.imagine({ prompt: PROMPT, seed: 40, steps: 2, candidates: 1 });
    expect(one.images[0]!.ranking).toBeUndefined();
    expect(readPngText(one.images[0]!.png)).not.toHaveProperty('ranking');
    expect(readPngText(one.images[0]!.png)).not.toHaveProperty('candidates');
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-'));
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ candidates: 2, steps: 2 }));
      const [withScorer, without] = await Promise.all([loadTextToImage(dir, { scorer: brightness }), loadTextToImage(dir)]);
      try {
        expect((await withScorer.imagine({ prompt: PROMPT, seed: 1 })).images[0]!.ranking).toMatchObject({ candidates: 2 });
        // without a captioner the folder's default cannot apply: one picture, and an explicit request is refused
        expect((await without.imagine({ prompt: PROMPT, seed: 1 })).settings.candidates).toBe(1);
        await expect(without.imagine({ prompt: PROMPT, candidates: 2 })).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('needs a captioner') });
      } finally {
        await Promise.all([withScorer.dispose(), without.dispose()]);
      }
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ candidates: 9 }));
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringMatching(/candidates.*1 to 8.*9/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('with rank_at, ranks the drafts a memoryless sampler predicts and finishes only the kept ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-'));
    const seen: number[][] = [];
    const recording: TextScorer = async (images, text) => {
      const scores = await brightness(images, text);
      seen.push(scores);
      return scores;
    };
    const spy = jest.spyOn(OnnxModel.prototype, 'run');
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ candidates: 3, rank_at: 0.5, scheduler: 'euler-a', steps: 6 }));
      const draft = await loadTextToImage(dir, { scorer: recording });
      try {
        spy.mockClear();
        const events: string[] = [];
        const result = await draft.imagine({ prompt: PROMPT, seed: 70, count: 2 }, { onProgress: (p) => events.push(`${p.stage} ${p.step}`) });
        expect(events).toEqual(['denoise 1', 'denoise 2', 'denoise 3', 'rank 1', 'denoise 4', 'denoise 5', 'denoise 6', 'decode 1']);
        // UNet rows: both guidance halves of 2 images x 3 candidates for three steps, of the 2 kept ones after
        const unetRows = spy.mock.calls.map(([feeds]) => (feeds as Feeds).sample?.dims[0]).filter((rows) => rows !== undefined);
        expect(unetRows).toEqual([12, 12, 12, 4, 4, 4]);
        expect(seen).toHaveLength(2);
        for (const [i, image] of result.images.entries()) {
          const best = seen[i]!.indexOf(Math.max(...seen[i]!));
          expect(image.ranking).toMatchObject({ candidates: 3, kept: best, keptSeed: 70 + 3 * i + best });
          // the kept picture ends as it would have alone: its noise stream went on where it was
          const alone = await plain.imagine({ prompt: PROMPT, seed: 70 + 3 * i + best, steps: 6, scheduler: 'euler-a' });
          const [x, y] = await Promise.all([decodeImage(image.png), decodeImage(alone.images[0]!.png)]);
          let worst = 0;
          for (let k = 0; k < x.data.length; k += 1) worst = Math.max(worst, Math.abs(x.data[k]! - y.data[k]!));
          expect(worst).toBeLessThanOrEqual(2);
        }
        // a sampler with memory (PNDM) ranks the finished pictures instead
        events.length = 0;
        await draft.imagine({ prompt: PROMPT, seed: 70, scheduler: 'pndm' }, { onProgress: (p) => events.push(`${p.stage} ${p.step}`) });
        expect(events.slice(-2)).toEqual(['decode 1', 'rank 1']);
      } finally {
        await draft.dispose();
      }
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ rank_at: 0 }));
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('rank_at') });
    } finally {
      spy.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('refuses bad candidate counts and fails the job when the scorer misbehaves', async () => {
    for (const candidates of [0, 9, 1.5]) {
      await expect(ranked.imagine({ prompt: PROMPT, candidates })).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('`candidates`') });
    }
    await expect(ranked.imagine({ prompt: PROMPT, seed: 2 ** 32 - 3, count: 2, candidates: 2 })).rejects.toMatchObject({ code: 'input.invalid' });
    const broken = await loadTextToImage(FIXTURE, { scorer: async () => [1] });
    try {
      await expect(broken.imagine({ prompt: PROMPT, steps: 1, candidates: 2 })).rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('2 scores') });
    } finally {
      await broken.dispose();
    }
  });
});

// The second tier: the shipped model, when it is there (its speed is measured by `npm run bench`, not here).
const BUILTIN = join(process.cwd(), 'models/builtin/text-to-image');
(existsSync(join(BUILTIN, 'model_index.json')) ? describe : describe.skip)('the builtin text-to-image model', () => {
  it('draws a PNG of its default size with its default settings', async () => {
    const pipeline = await loadTextToImage(BUILTIN);
    try {
      const result = await pipeline.imagine({ prompt: 'a red circle', seed: 1 });
      const { width, height } = pipeline.folder.defaults;
      expect(await decodeImage(result.images[0]!.png)).toMatchObject({ width, height });
    } finally {
      await pipeline.dispose();
    }
  }, 60_000);

  it('feeds each latent once with guidance (unet_shared_latents) and draws the same pixels as one latent per text row', async () => {
    const plainDir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-'));
    cpSync(BUILTIN, plainDir, { recursive: true });
    const extra = JSON.parse(readFileSync(join(BUILTIN, 'pictalk.json'), 'utf8')) as Record<string, unknown>;
    expect(extra.unet_shared_latents).toBe(true);
    writeFileSync(join(plainDir, 'pictalk.json'), JSON.stringify({ ...extra, unet_shared_latents: false }));
    // ranks by brightness: deterministic, so both ways keep the same candidates
    const scorer: TextScorer = async (images) => images.map((image) => {
      const bytes = Buffer.isBuffer(image) ? image : image.rgb;
      let sum = 0;
      for (const v of bytes) sum += v;
      return sum;
    });
    const shared = await loadTextToImage(BUILTIN, { scorer });
    const plain = await loadTextToImage(plainDir, { scorer });
    const spy = jest.spyOn(OnnxModel.prototype, 'run');
    try {
      const requests = [
        { prompt: 'a red circle', seed: 3, steps: 4, scheduler: 'ddim' as const },
        { prompt: 'a small blue square', seed: 4, steps: 4, candidates: 3, count: 2, scheduler: 'euler-a' as const },
        { prompt: 'a big green star', seed: 5, steps: 3, guidance: 1, scheduler: 'ddim' as const },
      ];
      const pixels = async (results: ImagineResult[]): Promise<Buffer[]> =>
        Promise.all(results.flatMap((result) => result.images.map(async (image) => (await decodeImage(image.png)).data)));
      // one request at a time: the int8 UNet quantizes its activations per run, so a run merged with other jobs
      // draws within a step of 255 of the same picture, not to the bit (the batcher's own test covers merged runs)
      const each = async (pipeline: TextToImage): Promise<Buffer[]> => {
        const results: ImagineResult[] = [];
        for (const request of requests) results.push(await pipeline.imagine(request));
        return pixels(results);
      };
      spy.mockClear();
      const once = await each(shared);
      const unetFeeds = spy.mock.calls.map(([feeds]) => feeds as Feeds).filter((feeds) => 'sample' in feeds && 'encoder_hidden_states' in feeds);
      // guided runs give the UNet half as many latents as text rows; the unguided one a latent per row
      expect(unetFeeds.filter((feeds) => feeds.encoder_hidden_states!.dims[0] === 2 * feeds.sample!.dims[0]!)).toHaveLength(4 + 4);
      expect(unetFeeds.filter((feeds) => feeds.encoder_hidden_states!.dims[0] === feeds.sample!.dims[0])).toHaveLength(3);
      spy.mockClear();
      const perRow = await each(plain);
      for (const [feeds] of spy.mock.calls as Array<[Feeds]>) {
        if ('sample' in feeds && 'encoder_hidden_states' in feeds) expect(feeds.sample!.dims[0]).toBe(feeds.encoder_hidden_states!.dims[0]);
      }
      expect(once).toHaveLength(4);
      expect(once).toEqual(perRow);
    } finally {
      spy.mockRestore();
      await shared.dispose();
      await plain.dispose();
      rmSync(plainDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('text-to-image folder errors', () => {
  it('names the missing graph', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-'));
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      rmSync(join(dir, 'unet', 'model.onnx'));
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining(join(dir, 'unet', 'model.onnx')) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a malformed config and honours pictalk.json defaults', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-'));
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), '{ "_class_name": "KarrasVeScheduler" }');
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('KarrasVeScheduler') });
      cpSync(join(FIXTURE, 'scheduler'), join(dir, 'scheduler'), { recursive: true });
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ name: 'tiny', scheduler: 'ddim', steps: 3, guidance: 4, width: 16, height: 16 }));
      const pipeline = await loadTextToImage(dir);
      try {
        const result = await pipeline.imagine({ prompt: 'x', seed: 1 });
        expect(result.settings).toMatchObject({ scheduler: 'ddim', steps: 3, guidance: 4, width: 16, height: 16 });
        expect(result.model.name).toBe('tiny');
      } finally {
        await pipeline.dispose();
      }
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ width: 30 }));
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringMatching(/width.*pictalk\.json/) });
      // a UNet that takes a latent per text row cannot be told to take each latent once
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ unet_shared_latents: true }));
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringMatching(/unet_shared_latents.*t2i_share_latents\.py/) });
      writeFileSync(join(dir, 'pictalk.json'), JSON.stringify({ unet_shared_latents: 'yes' }));
      await expect(loadTextToImage(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringMatching(/unet_shared_latents.*true or false/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
