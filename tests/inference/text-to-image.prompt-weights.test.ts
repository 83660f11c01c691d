/**
 * Prompt weights and long prompts through the real text-to-image pipeline: what reaches the UNet as
 * `encoder_hidden_states`, checked against the text encoder run directly on the tokenizer's ids.
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { loadClipTokenizer, type ClipTokenizer } from '../../inference/clip.tokenizer.js';
import { OnnxModel, openModel, type Feeds, type TensorValue } from '../../inference/onnx.backend.js';
import { chunkPrompt, parsePromptWeights } from '../../inference/prompt.weights.js';
import { loadTextToImage, type TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { ImagineRequest } from '../../inference/types.js';

// tiny-sd: random weights, model_max_length 16 (chunks of 14 tokens), hidden size 32, its UNet fixes the text at 16
const FIXTURE = join(process.cwd(), 'tests/fixtures/tiny-sd');
// the same UNet with a symbolic text axis, as diffusers' and optimum's exports declare it
const DYNAMIC_UNET = join(process.cwd(), 'tests/fixtures/onnx-backend/unet_dynamic_text.onnx');
const BUILTIN = join(process.cwd(), 'models/builtin/text-to-image');
// 34 tokens: three chunks, the first ending at the comma (A1111's comma padding)
const LONG = 'a small red circle to the left of a big cat, a green square above a blue star and a tree below a yellow house';

/** The UNet's `encoder_hidden_states` of the first step of one request, copied, with its dims. */
async function contextOf(pipeline: TextToImage, request: ImagineRequest): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const spy = jest.spyOn(OnnxModel.prototype, 'run');
  try {
    await pipeline.imagine({ seed: 1, steps: 1, scheduler: 'ddim', ...request });
    const [feeds] = spy.mock.calls.find(([f]) => 'encoder_hidden_states' in (f as Feeds))! as [Feeds];
    const context = feeds.encoder_hidden_states!;
    return { data: Float32Array.from(context.data as Float32Array), dims: context.dims };
  } finally {
    spy.mockRestore();
  }
}

/** A model folder's pipeline, its text encoder opened on its own, and its tokenizer. */
function openFolder(folder: string): Promise<[TextToImage, OnnxModel, ClipTokenizer]> {
  return Promise.all([loadTextToImage(folder), openModel(join(folder, 'text_encoder/model.onnx')), loadClipTokenizer(join(folder, 'tokenizer'))]);
}

/** The text encoder run directly: [rows, L] ids -> [rows, L, D] hidden states. */
async function encode(encoder: OnnxModel, ids: Int32Array, length: number): Promise<Float32Array> {
  const out = await encoder.run({ input_ids: { data: ids, dims: [ids.length / length, length] } }, [encoder.outputNames[0]!]);
  return (out[encoder.outputNames[0]!] as TensorValue<Float32Array>).data;
}

const ints = (...parts: Int32Array[]): Int32Array => {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
};

const concat = (...parts: Float32Array[]): Float32Array => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
};

/**
 * A1111's emphasis spelled out here, rounding as the pipeline documents (products to float32, sums in float64, the
 * rescale kept only within [1 / largest weight, 1 / smallest weight]), for comparison with what reaches the UNet.
 */
function emphasised(hidden: Float32Array, weights: Float32Array, dim: number): { data: Float32Array; rescaled: boolean } {
  const before = hidden.reduce((a, b) => a + b, 0);
  const scaled = Float32Array.from(hidden, (v, i) => v * weights[Math.floor(i / dim)]!);
  const factor = Math.fround(before / scaled.reduce((a, b) => a + b, 0));
  const rescaled = factor >= (1 / Math.max(...weights)) * (1 - 1e-6) && factor <= (1 / Math.min(...weights)) * (1 + 1e-6);
  return { data: rescaled ? scaled.map((v) => v * factor) : scaled, rescaled };
}

function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let most = 0;
  for (let i = 0; i < a.length; i += 1) most = Math.max(most, Math.abs(a[i]! - b[i]!));
  return most;
}

/** The largest difference, relative to the largest magnitude (float32 rounding of values in the hundreds). */
function relative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i += 1) scale = Math.max(scale, Math.abs(b[i]!));
  return worst(a, b) / scale;
}

describe('prompt weights on the tiny folder (its UNet fixes the text length)', () => {
  let pipeline: TextToImage;
  let encoder: OnnxModel;
  let tokenizer: ClipTokenizer;
  beforeAll(async () => {
    [pipeline, encoder, tokenizer] = await openFolder(FIXTURE);
  }, 20_000);
  afterAll(async () => { await Promise.all([pipeline.dispose(), encoder.dispose()]); });

  it('gives a plain prompt bit for bit the embeddings of the tokenizer\'s ids through the encoder', async () => {
    const prompt = 'a small red circle to the left of a cat';
    const context = await contextOf(pipeline, { prompt, negativePrompt: 'blurry' });
    expect(context.dims).toEqual([2, 16, 32]);
    const ids = ints(tokenizer.encode('blurry').ids, tokenizer.encode(prompt).ids);
    const direct = await encode(encoder, ids, 16);                   // [uncond, cond], one call as before
    expect(Buffer.from(context.data.buffer).equals(Buffer.from(direct.buffer))).toBe(true);
  });

  it('scales a weighted word\'s hidden states and restores the chunk mean (A1111), the negative prompt too', async () => {
    const prompt = 'a (red:1.5) circle and a [cat]';
    const negative = '(blurry:0.5)';
    const context = await contextOf(pipeline, { prompt, negativePrompt: negative });
    const plans = [negative, prompt].map((text) => chunkPrompt(parsePromptWeights(text), tokenizer));
    const hidden = await encode(encoder, ints(...plans.map((plan) => plan.ids)), 16);
    const size = 16 * 32;
    plans.forEach((plan, row) => {
      const want = emphasised(hidden.subarray(row * size, (row + 1) * size), plan.weights!, 32);
      expect(relative(context.data.subarray(row * size, (row + 1) * size), want.data)).toBeLessThan(1e-6);
      // and it is not the unweighted encoding
      expect(worst(context.data.subarray(row * size, (row + 1) * size), hidden.subarray(row * size, (row + 1) * size))).toBeGreaterThan(1e-3);
    });
    // the ids are the ones of the weighted stretches: `red` is weighted, `cat` de-weighted
    const cond = plans[1]!;
    const red = tokenizer.idOf(tokenizer.tokenize('red')[0]!);
    expect(cond.weights![Array.from(cond.ids).indexOf(red)]).toBeCloseTo(1.5, 6);
  });

  it('changes the picture with a weight, and gives the plain picture for escaped brackets of weight 1', async () => {
    const run = async (prompt: string) => (await pipeline.imagine({ prompt, seed: 3, steps: 2, scheduler: 'ddim' })).images[0]!.png;
    const plain = await run('a red circle');
    expect((await run('a (red:1.8) circle')).equals(plain)).toBe(false);
    // `\(` is a literal bracket: the ids of `(red) circle` tokenized as text, with no weights
    const literal = chunkPrompt(parsePromptWeights('a \\(red\\) circle'), tokenizer);
    expect(literal.weights).toBeUndefined();
    expect(Array.from(literal.ids)).toEqual(Array.from(tokenizer.encode('a (red) circle').ids));
  });

  it('refuses a bad weight and a prompt past the fixed text length before running anything', async () => {
    const spy = jest.spyOn(OnnxModel.prototype, 'run');
    try {
      await expect(pipeline.imagine({ prompt: 'a (cat:99)' })).rejects.toMatchObject({
        code: 'input.invalid', message: 'Expected the weight in `(cat:99)` of `prompt` to be a number from 0 to 2, got `99`',
      });
      await expect(pipeline.imagine({ prompt: 'a cat', negativePrompt: '((((((((blur))))))))' })).rejects.toMatchObject({
        code: 'input.invalid', message: expect.stringContaining('in `negativePrompt`'),
      });
      expect(() => pipeline.settingsFor({ prompt: LONG })).toThrow(expect.objectContaining({
        code: 'input.too_large',
        message: expect.stringMatching(/^Expected `prompt` to fit in 14 tokens: this model's UNet takes a text of exactly 16 positions.*got \d+ tokens$/),
      }));
      await expect(pipeline.imagine({ prompt: 'a cat BREAK a dog' })).rejects.toMatchObject({ code: 'input.too_large' });
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('long prompts in chunks (a UNet with a symbolic text length)', () => {
  let dir: string;
  let pipeline: TextToImage;
  let encoder: OnnxModel;
  let tokenizer: ClipTokenizer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-long-'));
    cpSync(FIXTURE, dir, { recursive: true });
    cpSync(DYNAMIC_UNET, join(dir, 'unet', 'model.onnx'));
    [pipeline, encoder, tokenizer] = await openFolder(dir);
  }, 20_000);
  afterAll(async () => {
    await Promise.all([pipeline?.dispose(), encoder?.dispose()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('concatenates the chunks\' hidden states and pads the shorter guidance half with empty chunks', async () => {
    const plan = chunkPrompt(parsePromptWeights(LONG), tokenizer);
    expect(plan.chunks).toBe(3);
    const context = await contextOf(pipeline, { prompt: LONG });
    expect(context.dims).toEqual([2, 48, 32]);                                   // [uncond, cond], 3 chunks x 16
    const chunks = await encode(encoder, plan.ids, 16);                          // [3, 16, 32]
    const empty = await encode(encoder, tokenizer.encode('').ids, 16);           // the empty prompt's one chunk
    const size = 48 * 32;
    expect(worst(context.data.subarray(size), chunks)).toBeLessThan(1e-6);
    expect(worst(context.data.subarray(0, size), concat(empty, empty, empty))).toBeLessThan(1e-6);
    // each chunk is the tokenizer's own encoding of its tokens; the first ends at the comma, the rest moved on
    expect(Array.from(plan.ids.subarray(0, 16))).toEqual(Array.from(tokenizer.encode('a small red circle to the left of a big cat,').ids));
  });

  it('pads the prompt when the negative prompt is the longer one, and runs one half without guidance', async () => {
    const guided = await contextOf(pipeline, { prompt: 'a cat', negativePrompt: LONG });
    expect(guided.dims).toEqual([2, 48, 32]);
    const cat = await encode(encoder, tokenizer.encode('a cat').ids, 16);
    const empty = await encode(encoder, tokenizer.encode('').ids, 16);
    expect(worst(guided.data.subarray(48 * 32), concat(cat, empty, empty))).toBeLessThan(1e-6);
    const unguided = await contextOf(pipeline, { prompt: LONG, guidance: 1 });
    expect(unguided.dims).toEqual([1, 48, 32]);
    const short = await contextOf(pipeline, { prompt: 'a cat', guidance: 1 });
    expect(short.dims).toEqual([1, 16, 32]);
  });

  it('draws a long prompt reproducibly, differently from its first chunk alone', async () => {
    const first = (await pipeline.imagine({ prompt: LONG, seed: 4, steps: 2 })).images[0]!.png;
    const again = (await pipeline.imagine({ prompt: LONG, seed: 4, steps: 2 })).images[0]!.png;
    const head = (await pipeline.imagine({ prompt: 'a small red circle to the left of a big cat,', seed: 4, steps: 2 })).images[0]!.png;
    expect(first.equals(again)).toBe(true);
    expect(first.equals(head)).toBe(false);
  });

  it('refuses more than three chunks with the limit in tokens', async () => {
    const tooLong = Array.from({ length: 6 }, () => LONG).join(' ');
    await expect(pipeline.imagine({ prompt: tooLong })).rejects.toMatchObject({
      code: 'input.too_large', message: expect.stringMatching(/^Expected `prompt` to fit in 3 chunks of 14 tokens \(42 tokens.*got \d+ chunks/),
    });
  });
});

(existsSync(join(BUILTIN, 'model_index.json')) ? describe : describe.skip)('prompt weights on the builtin model', () => {
  let pipeline: TextToImage;
  let encoder: OnnxModel;
  let tokenizer: ClipTokenizer;
  beforeAll(async () => {
    [pipeline, encoder, tokenizer] = await openFolder(BUILTIN);
  }, 60_000);
  afterAll(async () => { await Promise.all([pipeline?.dispose(), encoder?.dispose()]); });

  it('keeps plain prompts bit for bit, weights a word, takes a long prompt in chunks, and refuses one past three chunks', async () => {
    const prompt = 'a big red circle to the left of a small blue square';
    const plain = await contextOf(pipeline, { prompt, steps: 1 });
    const length = tokenizer.modelMaxLength;
    const ids = new Int32Array(2 * length);
    ids.set(tokenizer.encode('').ids, 0);
    ids.set(tokenizer.encode(prompt).ids, length);
    const direct = await encode(encoder, ids, length);
    expect(plain.dims).toEqual([2, length, direct.length / (2 * length)]);
    expect(Buffer.from(plain.data.buffer).equals(Buffer.from(direct.buffer))).toBe(true);

    const weighted = await contextOf(pipeline, { prompt: 'a big (red:1.4) circle to the left of a small blue square', steps: 1 });
    const size = direct.length / 2;
    const plan = chunkPrompt(parsePromptWeights('a big (red:1.4) circle to the left of a small blue square'), tokenizer);
    const hidden = await encode(encoder, plan.ids, length);
    const want = emphasised(hidden, plan.weights!, size / length);
    expect(relative(weighted.data.subarray(size), want.data)).toBeLessThan(1e-6);
    // the builtin encoder's hidden states have a mean near 0 (final layer norm): A1111's rescale is skipped there
    expect(want.rescaled).toBe(false);

    // its UNet takes any text length (the `sequence` axis): 40 words are two chunks of the encoder's 32 tokens
    const long = await contextOf(pipeline, { prompt: Array(40).fill('red').join(' '), steps: 1 });
    expect(long.dims).toEqual([2, 2 * length, direct.length / (2 * length)]);
    await expect(pipeline.imagine({ prompt: Array(100).fill('red').join(' ') })).rejects.toMatchObject({ code: 'input.too_large' });
  }, 60_000);
});
