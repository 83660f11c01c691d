import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captionWords, loadImageToText, postProcess, type ImageToText } from '../../inference/image-to-text.pipeline.js';
import { drawImage } from '../../models/eval/heldout.set.js';
import { WorldRenderer } from '../../models/world/world.renderer.js';
import { decodeImage, imageToTensor } from '../../inference/image.codec.js';
import { PictalkError } from '../../common/errors.js';
import type { CaptionResult } from '../../inference/types.js';

const FIXTURE = join(process.cwd(), 'tests/fixtures/tiny-captioner');

interface ParityResult { ids: number[]; tokens: string[]; score: number; sum_logprob: number; length: number }
interface ParityImage {
  file: string;
  pixel_values: { shape: number[]; sum: number; first: number[] };
  greedy: ParityResult;
  beam: ParityResult & { beam_size: number; length_penalty: number };
}

// Every variant: features [B, F] row by row (cnn-lstm) and [images, N, F + A] once per image with `feature_rows`
// (cnn-lstm-attention: cells, then attention keys), and the attention variant that carries its glimpse from step to
// step (the decoder's `context` and `context_out`, the encoder's `context0`), whose rows the search must reorder too.
describe.each([['cnn-lstm', FIXTURE], ['cnn-lstm-attention', join(FIXTURE, 'attention')], ['cnn-lstm-attention with the carried glimpse', join(FIXTURE, 'glimpse')]])('captioning with the tiny %s', (_label, folder) => {
  const parity = JSON.parse(readFileSync(join(folder, 'parity.json'), 'utf8')) as { images: ParityImage[] };
  const image = (entry: ParityImage): Buffer => readFileSync(join(folder, entry.file));
  let captioner: ImageToText;

  beforeAll(async () => { captioner = await loadImageToText(folder); });
  afterAll(async () => { await captioner.dispose(); });

  it('preprocesses pixels as the reference does', async () => {
    const { config } = captioner.folder;
    for (const entry of parity.images) {
      const pixels = await imageToTensor(image(entry), { size: config.imageSize, mean: config.mean, std: config.std });
      expect(pixels.length).toBe(entry.pixel_values.shape.reduce((a, b) => a * b, 1));
      let sum = 0;
      for (const v of pixels) sum += v;
      expect(sum).toBeCloseTo(entry.pixel_values.sum, 1);
      entry.pixel_values.first.forEach((v, i) => expect(pixels[i]).toBeCloseTo(v, 5));
    }
  });

  it.each([['greedy', 1], ['beam', 3]] as const)('matches parity.json %s token ids exactly and scores within 1e-4', async (kind, beam) => {
    for (const entry of parity.images) {
      const expected = entry[kind];
      const result = await captioner.caption({ image: image(entry), beam, lengthPenalty: 1 });
      expect(result.tokens).toEqual(expected.tokens);
      expect(Math.abs(result.score - expected.score)).toBeLessThan(1e-4);
      expect(result.caption).toBe(postProcess(expected.tokens));
    }
  });

  it('gives the same results batched as one by one, with mixed beam widths in one batch', async () => {
    const requests = parity.images.flatMap((entry) => [
      { image: image(entry), beam: 3 }, { image: image(entry), beam: 1 }, { image: image(entry), beam: 2, lengthPenalty: 0.5 },
    ]);
    const batched = (await captioner.captionBatch(requests)) as CaptionResult[];
    for (const [i, request] of requests.entries()) {
      const single = await captioner.caption(request);
      expect(batched[i]!.tokens).toEqual(single.tokens);
      expect(batched[i]!.score).toBeCloseTo(single.score, 4);
    }
    expect(batched[0]!.tokens).toEqual(parity.images[0]!.beam.tokens);
    expect(batched[1]!.tokens).toEqual(parity.images[0]!.greedy.tokens);
  });

  it('gives the same results from one lane and from batches running side by side on two', async () => {
    const requests = parity.images.map((entry) => ({ image: image(entry), beam: 3, lengthPenalty: 1 }));
    const oneLane = await loadImageToText(folder, { lanes: 1 });
    try {
      const alone = (await oneLane.captionBatch(requests)) as CaptionResult[];
      // the default captioner has two lanes: two batches at once take one each
      const [left, right] = await Promise.all([captioner.captionBatch(requests), captioner.captionBatch([...requests].reverse())]);
      expect((left as CaptionResult[]).map((r) => r.tokens)).toEqual(alone.map((r) => r.tokens));
      expect((right as CaptionResult[]).map((r) => r.tokens).reverse()).toEqual(alone.map((r) => r.tokens));
      expect(alone.map((r) => r.tokens)).toEqual(parity.images.map((entry) => entry.beam.tokens));
    } finally {
      await oneLane.dispose();
    }
  });
});

describe('captioning: options, progress, cancellation and folder errors', () => {
  let captioner: ImageToText;
  const png = readFileSync(join(FIXTURE, 'image-0.png'));
  beforeAll(async () => { captioner = await loadImageToText(FIXTURE); });
  afterAll(async () => { await captioner.dispose(); });

  it('post-processes words into a sentence', () => {
    expect(postProcess(['a', 'red', 'circle'])).toBe('A red circle.');
    expect(postProcess([])).toBe('');
    expect(postProcess(['two', 'cats', '.'])).toBe('Two cats.');
  });

  it('uses the config beam size by default and respects max length', async () => {
    const result = await captioner.caption({ image: png });
    expect(result.kind).toBe('caption');
    expect(result.tokens.length).toBeLessThanOrEqual(captioner.folder.config.maxLength);
    const short = await captioner.caption({ image: png, beam: 1, maxLength: 2 });
    expect(short.tokens.length).toBeLessThanOrEqual(2);
    expect(Object.keys(result.timingsMs)).toEqual(expect.arrayContaining(['decode', 'encode', 'search', 'total']));
  });

  it('rejects bad options with the value that came', async () => {
    await expect(captioner.caption({ image: png, beam: 0 })).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('`0`') });
    await expect(captioner.caption({ image: png, maxLength: 999 })).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(captioner.caption({ image: Buffer.from('not an image') })).rejects.toMatchObject({ code: 'input.unsupported' });
  });

  it('fails only the bad request of a batch, in its own slot', async () => {
    const results = await captioner.captionBatch([
      { image: Buffer.from('not an image') }, { image: png, beam: 1 }, { image: png, beam: 99 }, { image: png, beam: 1 },
    ]);
    expect(results[0]).toBeInstanceOf(PictalkError);
    expect((results[0] as PictalkError).code).toBe('input.unsupported');
    expect((results[2] as PictalkError).code).toBe('input.invalid');
    const alone = await captioner.caption({ image: png, beam: 1 });
    expect((results[1] as CaptionResult).tokens).toEqual(alone.tokens);
    expect((results[3] as CaptionResult).tokens).toEqual(alone.tokens);
    const allBad = await captioner.captionBatch([{ image: Buffer.alloc(0) }]);
    expect((allBad[0] as PictalkError).code).toBe('input.invalid');
  });

  it('takes prefetched images, reports each caption as its search ends, and keeps errors in their own slots', async () => {
    const requests = [
      { image: png, beam: 3 }, { image: Buffer.from('not an image') }, { image: png, beam: 1, maxLength: 2 }, { image: png, beam: 99 },
      { image: png, beam: 1 },
    ];
    for (const request of requests) captioner.prefetch(request);
    captioner.prefetch(requests[0]!);                          // twice: one decode
    const heard: Array<[number, CaptionResult]> = [];
    const results = await captioner.captionBatch(requests, { onCaption: (i, result) => heard.push([i, result]) });
    expect((results[1] as PictalkError).code).toBe('input.unsupported');
    expect((results[3] as PictalkError).code).toBe('input.invalid');
    // each good image heard once, with the very result the batch returns; the two-word one before the others
    expect(heard.map(([i]) => i).sort()).toEqual([0, 2, 4]);
    for (const [i, result] of heard) expect(results[i]).toBe(result);
    expect(heard[0]![0]).toBe(2);
    const fresh = await captioner.captionBatch(requests);
    expect(fresh.map((r) => (r instanceof PictalkError ? r.code : r.tokens))).toEqual(results.map((r) => (r instanceof PictalkError ? r.code : r.tokens)));
  });

  it('reports progress per decoder step and stops when cancelled', async () => {
    const stages: string[] = [];
    await captioner.caption({ image: png, beam: 1 }, { onProgress: (p) => stages.push(`${p.stage}:${p.step}`) });
    expect(stages[0]).toBe('encode:0');
    expect(stages.filter((s) => s.startsWith('caption:')).length).toBeGreaterThan(0);
    const controller = new AbortController();
    const run = captioner.caption({ image: png, beam: 3 }, {
      signal: controller.signal,
      onProgress: (p) => { if (p.stage === 'caption' && p.step === 1) controller.abort(); },
    });
    await expect(run).rejects.toMatchObject({ code: 'job.cancelled' });
  });

  it('refuses a number of lanes out of range, naming the setting', async () => {
    for (const lanes of [0, 5, 1.5]) {
      await expect(loadImageToText(FIXTURE, { lanes })).rejects.toMatchObject({ code: 'config.invalid', message: expect.stringContaining('`lanes`') });
    }
  });

  it('names the missing file of a broken folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-captioner-'));
    try {
      for (const file of ['config.json', 'vocab.json', 'encoder.onnx']) copyFileSync(join(FIXTURE, file), join(dir, file));
      await expect(loadImageToText(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining(join(dir, 'decoder_step.onnx')) });
      copyFileSync(join(FIXTURE, 'decoder_step.onnx'), join(dir, 'decoder_step.onnx'));
      const config = JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, eos_id: 99 }));
      await expect(loadImageToText(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringMatching(/eos_id.*99/) });
      // `encoder_file` names another encoder graph of the folder, and nothing outside it
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, encoder_file: 'encoder.small.onnx' }));
      await expect(loadImageToText(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining(join(dir, 'encoder.small.onnx')) });
      copyFileSync(join(FIXTURE, 'encoder.onnx'), join(dir, 'encoder.small.onnx'));
      const other = await loadImageToText(dir);
      expect((await other.caption({ image: readFileSync(join(FIXTURE, 'image-0.png')) })).caption.length).toBeGreaterThan(0);
      await other.dispose();
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, encoder_file: '../encoder.onnx' }));
      await expect(loadImageToText(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('`encoder_file`') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the carried glimpse', () => {
  it('refuses a decoder that takes `context` beside an encoder without `context0`, naming the output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-captioner-'));
    try {
      for (const file of ['config.json', 'vocab.json', 'decoder_step.onnx']) copyFileSync(join(FIXTURE, 'glimpse', file), join(dir, file));
      copyFileSync(join(FIXTURE, 'attention', 'encoder.onnx'), join(dir, 'encoder.onnx'));   // the same shapes, no context0
      await expect(loadImageToText(dir)).rejects.toMatchObject({
        code: 'model.invalid', message: expect.stringMatching(/encoder\.onnx to output `context0`.*outputs features, h0, c0$/),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The second tier: the shipped captioner, when it is there (its speed is measured by `npm run bench`, not here).
const BUILTIN = join(process.cwd(), 'models/builtin/captioner');
(existsSync(join(BUILTIN, 'config.json')) ? describe : describe.skip)('the builtin captioner', () => {
  it('scores a text against pictures: a greedy caption gets its own search score, and its picture ranks first', async () => {
    const renderer = await WorldRenderer.create();
    const [a, b] = await Promise.all([drawImage(renderer, 1234, 'test', 0), drawImage(renderer, 1234, 'test', 1)]);
    const captioner = await loadImageToText(BUILTIN, { maxBatch: 4 });
    try {
      const [ca, cb] = [await captioner.caption({ image: a.png, beam: 1 }), await captioner.caption({ image: b.png, beam: 1 })];
      expect(ca.caption).not.toBe(cb.caption);
      const [aOfA, bOfA] = await captioner.scoreText([a.png, b.png], ca.tokens.join(' '));
      expect(aOfA).toBeCloseTo(ca.score, 4);
      expect(aOfA).toBeGreaterThan(bOfA!);
      // the caption as shown (capital, full stop) reads as the same words
      const [aOfB, bOfB] = await captioner.scoreText([a.png, b.png], cb.caption);
      expect(bOfB).toBeCloseTo(cb.score, 4);
      expect(bOfB).toBeGreaterThan(aOfB!);
      expect(captionWords("A dog's 2 RED balls, left.")).toEqual(['a', 'dog', 'red', 'balls', 'left']);
      // pixels in memory (the text-to-image pipeline's drafts) score exactly as their PNG does
      const [pixelsA, pixelsB] = await Promise.all([a.png, b.png].map(async (png) => {
        const { data, width, height } = await decodeImage(png);
        return { rgb: data, width, height };
      }));
      expect(await captioner.scoreText([pixelsA!, b.png, pixelsB!], cb.caption)).toEqual([aOfB, bOfB, bOfB]);
      await expect(captioner.scoreText([{ rgb: Buffer.alloc(5), width: 64, height: 64 }], 'a red circle')).rejects.toMatchObject({ code: 'input.invalid' });
      await expect(captioner.scoreText([], 'a red circle')).resolves.toEqual([]);
      await expect(captioner.scoreText(Array(5).fill(a.png), 'a red circle')).rejects.toMatchObject({ code: 'input.too_large' });
      await expect(captioner.scoreText([a.png, Buffer.from('not an image')], 'a red circle')).rejects.toMatchObject({ code: expect.stringMatching(/^input\./) });
    } finally {
      await captioner.dispose();
    }
  }, 60_000);

  it('captions an image with a sentence', async () => {
    const captioner = await loadImageToText(BUILTIN);
    try {
      const png = readFileSync(join(FIXTURE, 'image-0.png'));
      const result = await captioner.caption({ image: png, beam: 3 });
      expect(result.caption).toMatch(/^[A-Z].*\.$/);
    } finally {
      await captioner.dispose();
    }
  }, 60_000);
});
