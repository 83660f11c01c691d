/**
 * Text-to-image over the diffusers ONNX layout (models/README.md), in the order of diffusers'
 * OnnxStableDiffusionPipeline: validate, encode prompt, prepare latents, denoise with classifier-free guidance,
 * decode with the VAE, run the folder's safety checker when it has one (safety-checker.ts), encode PNG. Prompts
 * take A1111's weights and go in chunks past the text window (prompt.weights.ts); a plain prompt that fits is
 * encoded exactly as the tokenizer pads it.
 *
 * Classifier-free guidance runs the unconditional and conditional halves in ONE UNet call of batch 2 * count,
 * [uncond x count, cond x count] as diffusers orders them, and combines them in place. Buffers that live through
 * the denoising loop (UNet input, timestep, UNet output) are allocated once per request; sessions stay warm in the
 * backend's cache between requests.
 * @see diffusers/pipelines/stable_diffusion/pipeline_onnx_stable_diffusion.py
 */
import { createHash, randomInt } from 'node:crypto';
import { loadClipTokenizer, type ClipTokenizer } from './clip.tokenizer.js';
import { PictalkError, asInferenceError, describe, isPictalkError } from '../common/errors.js';
import { chwToRgb, encodePng, imageToTensor, type ImageInput } from './image.codec.js';
import { MAX_CANDIDATES, hashModelFolder, readTextToImageFolder, type TextToImageFolder } from './model-folder.js';
import { openModel, type BackendOptions, type OnnxModel, type TensorValue } from './onnx.backend.js';
import { UnetBatcher, type UnetBatcherStats } from './unet.batcher.js';
import { MAX_PROMPT_CHUNKS, applyEmphasis, planPrompt } from './prompt.weights.js';
import { createScheduler } from './schedulers/scheduler.factory.js';
import { loadSafetyChecker, type SafetyChecker } from './safety-checker.js';
import { gaussianNoise } from './schedulers/noise.js';
import { DEFAULT_PREVIEW_AFTER_MS, PreviewSchedule, encodePreview, latentsToPixels, previewMapFor, type PreviewPolicy } from './latent.preview.js';
import type { NoiseSource, Scheduler } from './schedulers/scheduler.js';
import {
  DEFAULT_STRENGTH, SCHEDULER_NAMES, type GeneratedImage, type ImagineRequest, type ImagineResult, type ImagineSettings, type RunOptions,
} from './types.js';

export const MAX_PROMPT_CHARS = 1000;
export const MAX_COUNT = 4;
export const MAX_STEPS = 100;
export const MAX_GUIDANCE = 30;

export interface TextToImageOptions {
  backend?: BackendOptions;
  /**
   * Most UNet rows in one merged run when several imagine jobs run at once (default 16; 1 turns merging off).
   * A request takes 2 x count rows with guidance, count without.
   */
  unetMaxRows?: number;
  /** Observes every UNet run: how many requests' calls and rows it carried (for metrics). */
  onUnetRun?: (calls: number, rows: number) => void;
  /**
   * Ranks candidate pictures against their prompt, higher = closer (the captioner's `scoreText`). Without it every
   * request draws one picture per image and a request for more candidates is refused.
   */
  scorer?: TextScorer;
  /**
   * Live previews in the denoise progress (inference/latent.preview.ts): when they start and how often (default:
   * after 2 s, every fifth of the steps), or false for none. A folder with no latent-to-RGB map has none.
   */
  previews?: PreviewPolicy | false;
}

/** Scores of pictures (encoded, or RGB pixels) against one text, higher = closer; one number per picture, in order. */
export type TextScorer = (images: readonly ImageInput[], text: string, options?: { signal?: AbortSignal }) => Promise<number[]>;

export interface TextToImage {
  readonly folder: TextToImageFolder;
  /** UNet runs and the calls they served: calls > runs means requests shared runs. */
  readonly unetStats: Readonly<UnetBatcherStats>;
  imagine(request: ImagineRequest, options?: RunOptions): Promise<ImagineResult>;
  /** Resolve a request's defaults and validate it without running anything (`input.invalid` on a bad value). */
  settingsFor(request: ImagineRequest): ImagineSettings;
  dispose(): Promise<void>;
}

/** Per image i, noise from its own stream (seed + i), so image i of a batch is reproducible with count 1. */
class BatchNoise implements NoiseSource {
  private constructor(private readonly sources: readonly NoiseSource[]) {}

  static of(seeds: readonly number[], stream: number): BatchNoise {
    return new BatchNoise(seeds.map((seed) => gaussianNoise(seed, stream)));
  }

  /** The streams of the given pictures only, each going on from where it is. */
  keep(rows: readonly number[]): BatchNoise {
    return new BatchNoise(rows.map((r) => this.sources[r]!));
  }

  fill(out: Float32Array): Float32Array {
    const per = out.length / this.sources.length;
    this.sources.forEach((source, i) => source.fill(out.subarray(i * per, (i + 1) * per)));
    return out;
  }
}

/** Samplers whose step holds no state from earlier steps, so candidates can be dropped between two steps. */
const MEMORYLESS: ReadonlySet<string> = new Set(['euler-a', 'ddim', 'lcm']);

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);

/** A small cache of text-encoder outputs: a reroll or a second image of the same prompt skips the encoder. */
class EmbeddingCache {
  private readonly entries = new Map<string, Float32Array>();
  constructor(private readonly capacity = 32) {}
  get(text: string): Float32Array | undefined {
    const hit = this.entries.get(text);
    if (hit) { this.entries.delete(text); this.entries.set(text, hit); }
    return hit;
  }

  set(text: string, value: Float32Array): void {
    this.entries.set(text, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}

export async function loadTextToImage(dir: string, options: TextToImageOptions = {}): Promise<TextToImage> {
  // validate the folder before opening anything
  const folder = readTextToImageFolder(dir);
  const hash = hashModelFolder(folder.dir);
  hash.catch(() => undefined);
  const tokenizer: ClipTokenizer = await loadClipTokenizer(folder.tokenizerDir);
  const opened: OnnxModel[] = [];
  try {
    for (const path of [folder.textEncoderPath, folder.unetPath, folder.vaeDecoderPath]) opened.push(await openModel(path, options.backend));
  } catch (error) {
    await Promise.all(opened.map((model) => model.dispose()));
    throw error;
  }
  const [textEncoder, unet, vaeDecoder] = opened as [OnnxModel, OnnxModel, OnnxModel];
  let safety: SafetyChecker | undefined;
  try {
    // the folder's safety checker, when it has one: opened and validated now, so a broken one fails at start-up
    if (folder.safetyChecker) safety = await loadSafetyChecker(folder.safetyChecker, options.backend);
    return createPipeline(folder, await hash, tokenizer, textEncoder, unet, vaeDecoder, options, safety);
  } catch (error) {
    await Promise.all([...opened.map((model) => model.dispose()), safety?.dispose()]);
    throw error;
  }
}

function requireInputs(model: OnnxModel, names: readonly string[]): void {
  for (const name of names) {
    if (!model.hasInput(name)) {
      throw new PictalkError('model.invalid', `Expected ${model.path} to have an input named \`${name}\`, it has ${model.inputNames.join(', ')}`,
        { path: model.path });
    }
  }
  const extra = model.inputNames.filter((name) => !names.includes(name));
  if (extra.length > 0) {
    throw new PictalkError('model.invalid', `Expected ${model.path} to take only ${names.join(', ')}, it also takes ${extra.join(', ')}`,
      { path: model.path });
  }
}

function createPipeline(
  folder: TextToImageFolder, modelHash: string, tokenizer: ClipTokenizer,
  textEncoder: OnnxModel, unet: OnnxModel, vaeDecoder: OnnxModel, options: TextToImageOptions, safety?: SafetyChecker,
): TextToImage {
  requireInputs(textEncoder, ['input_ids']);
  requireInputs(unet, ['sample', 'timestep', 'encoder_hidden_states']);
  requireInputs(vaeDecoder, ['latent_sample']);
  // dtypes from the session: input_ids int32 (optimum) or int64; the UNet timestep int64 or float32
  const idsType = textEncoder.inputType('input_ids');
  const timestepType = unet.inputType('timestep');
  const previewMap = options.previews === false ? undefined : previewMapFor(folder);
  for (const [model, name, type, allowed] of [
    [textEncoder, 'input_ids', idsType, ['int32', 'int64']],
    [unet, 'timestep', timestepType, ['int64', 'float32']],
    [unet, 'sample', unet.inputType('sample'), ['float32']],
    [vaeDecoder, 'latent_sample', vaeDecoder.inputType('latent_sample'), ['float32']],
  ] as const) {
    if (!(allowed as readonly string[]).includes(type)) {
      throw new PictalkError('model.invalid', `Expected input \`${name}\` of ${model.path} to be ${allowed.join(' or ')}, got ${type}`, { path: model.path });
    }
  }
  // timestep [1] in the original diffusers export (broadcast), [B] or symbolic elsewhere: feed [1] only when fixed so
  const timestepShape = unet.inputs.find((info) => info.name === 'timestep')!.shape;
  const timestepPerRow = !(timestepShape.length === 1 && timestepShape[0] === 1);
  const textLength = tokenizer.modelMaxLength;
  const idsShape = textEncoder.inputs.find((info) => info.name === 'input_ids')!.shape;
  if (typeof idsShape[1] === 'number' && idsShape[1] !== textLength) {
    throw new PictalkError('model.invalid',
      `Expected ${textEncoder.path} to take ${textLength} tokens (model_max_length in tokenizer_config.json), it takes ${idsShape[1]}`,
      { path: textEncoder.path });
  }
  // A prompt longer than the text window goes in chunks of textLength concatenated along the sequence axis, which
  // needs a UNet whose text length is symbolic (diffusers' and optimum's exports); a graph that fixes it takes one chunk.
  const contextLength = unet.inputs.find((info) => info.name === 'encoder_hidden_states')!.shape[1];
  const fixedContext = typeof contextLength === 'number';
  if (fixedContext && contextLength !== textLength) {
    throw new PictalkError('model.invalid',
      `Expected \`encoder_hidden_states\` of ${unet.path} to take ${textLength} text positions (model_max_length in tokenizer_config.json), it takes ${contextLength}`,
      { path: unet.path });
  }
  const maxChunks = fixedContext ? 1 : MAX_PROMPT_CHUNKS;
  let textWidth = 0;                                   // D of the text encoder's hidden states, from its first run
  const { latentChannels: channels, latentFactor: factor, scalingFactor, defaults, maxSize } = folder;
  const model = { name: folder.name, hash: modelHash };
  const embeddings = new EmbeddingCache();
  // A UNet that takes each latent once with guidance (pictalk.json `unet_shared_latents`): its `sample` and
  // `encoder_hidden_states` have batch dimensions of their own
  const sharedLatents = folder.unetSharedLatents;
  if (sharedLatents) {
    const batchOf = (name: string): number | string | undefined => unet.inputs.find((info) => info.name === name)!.shape[0];
    if (batchOf('sample') === batchOf('encoder_hidden_states')) {
      throw new PictalkError('model.invalid',
        `Expected ${unet.path} to take each latent once (\`unet_shared_latents\` in pictalk.json), but its \`sample\` and \`encoder_hidden_states\` share the batch dimension ${describe(batchOf('sample'))}; run models/train/t2i_share_latents.py on the folder or remove the setting`,
        { path: unet.path });
    }
  }
  // every request's UNet calls go through one batcher, so jobs running side by side share runs
  const batcher = new UnetBatcher(unet, timestepPerRow, options.unetMaxRows ?? 16, options.onUnetRun, sharedLatents);

  function settingsFor(request: ImagineRequest): ImagineSettings {
    const fail = (message: string): PictalkError => new PictalkError('input.invalid', message);
    if (typeof request.prompt !== 'string') throw fail(`Expected \`prompt\` to be a string, got ${describe(request.prompt)}`);
    if (request.prompt.trim() === '') throw fail(`Expected \`prompt\` to describe the image, got ${describe(request.prompt)}`);
    const negativePrompt = request.negativePrompt ?? '';
    if (typeof negativePrompt !== 'string') throw fail(`Expected \`negativePrompt\` to be a string, got ${describe(negativePrompt)}`);
    for (const [name, text] of [['prompt', request.prompt], ['negativePrompt', negativePrompt]] as const) {
      if (text.length > MAX_PROMPT_CHARS) {
        throw new PictalkError('input.too_large', `Expected \`${name}\` to be at most ${MAX_PROMPT_CHARS} characters, got ${text.length}`,
          { limit: MAX_PROMPT_CHARS });
      }
    }
    // prompt weights and length in tokens (input.invalid for a malformed weight, input.too_large past the chunks)
    for (const [name, text] of [['prompt', request.prompt], ['negativePrompt', negativePrompt]] as const) {
      planPrompt(text, tokenizer, name, maxChunks, fixedContext);
    }
    const seed = request.seed ?? randomInt(0, 2 ** 32 - 1);
    if (!isInt(seed) || seed < 0 || seed > 0xffffffff) throw fail(`Expected \`seed\` to be an integer from 0 to 4294967295, got ${describe(seed)}`);
    // a space's step limit (bot/user.settings.ts) caps the folder's default too, when the request names no steps
    const steps = request.steps ?? (request.maxSteps !== undefined ? Math.min(defaults.steps, request.maxSteps) : defaults.steps);
    if (!isInt(steps) || steps < 1 || steps > MAX_STEPS) throw fail(`Expected \`steps\` to be an integer from 1 to ${MAX_STEPS}, got ${describe(steps)}`);
    const guidance = request.guidance ?? defaults.guidance;
    if (typeof guidance !== 'number' || !(guidance >= 0 && guidance <= MAX_GUIDANCE)) {
      throw fail(`Expected \`guidance\` to be a number from 0 to ${MAX_GUIDANCE}, got ${describe(guidance)}`);
    }
    const width = request.width ?? defaults.width;
    const height = request.height ?? defaults.height;
    for (const [name, side] of [['width', width], ['height', height]] as const) {
      if (!isInt(side) || side < factor || side > maxSize || side % factor !== 0) {
        throw fail(`Expected \`${name}\` to be a multiple of ${factor} from ${factor} to ${maxSize}, got ${describe(side)}`);
      }
    }
    const scheduler = request.scheduler ?? defaults.scheduler;
    if (!SCHEDULER_NAMES.includes(scheduler)) throw fail(`Expected \`scheduler\` to be one of ${SCHEDULER_NAMES.join(', ')}, got ${describe(scheduler)}`);
    const count = request.count ?? 1;
    if (!isInt(count) || count < 1 || count > MAX_COUNT) throw fail(`Expected \`count\` to be an integer from 1 to ${MAX_COUNT}, got ${describe(count)}`);
    const candidates = request.candidates ?? (options.scorer ? defaults.candidates : 1);
    if (!isInt(candidates) || candidates < 1 || candidates > MAX_CANDIDATES) {
      throw fail(`Expected \`candidates\` to be an integer from 1 to ${MAX_CANDIDATES}, got ${describe(candidates)}`);
    }
    if (candidates > 1 && !options.scorer) throw fail(`Expected \`candidates\` 1: ranking candidates needs a captioner, and this pipeline has none`);
    if (candidates > 1 && request.latents !== undefined) throw fail('Expected `candidates` 1 with `latents`: given latents make one picture per image');
    const strength = imageToImageStrength(request, steps, fail);
    const pictures = count * candidates;
    if (pictures > 1 && seed + pictures - 1 > 0xffffffff) {
      throw fail(`Expected \`seed\` + \`count\` x \`candidates\` - 1 to stay below 2^32, got seed ${seed} with ${pictures} pictures`);
    }
    return {
      prompt: request.prompt, negativePrompt, seed, steps, guidance, width, height, scheduler, count, candidates,
      ...(strength !== undefined ? { strength } : {}),
    };
  }

  /** Validate image-to-image's inputs: the strength it runs at, or undefined for plain text-to-image. */
  function imageToImageStrength(request: ImagineRequest, steps: number, fail: (message: string) => PictalkError): number | undefined {
    if (request.image === undefined && request.strength === undefined) return undefined;
    if (request.image === undefined) throw fail(`Expected an \`image\` to start from with \`strength\` ${describe(request.strength)}, got none`);
    if (!Buffer.isBuffer(request.image) || request.image.length === 0) {
      throw fail(`Expected \`image\` to be the bytes of a PNG, JPEG, WebP or GIF picture, got ${Buffer.isBuffer(request.image) ? 'an empty file' : describe(request.image)}`);
    }
    if (request.latents !== undefined) throw fail('Expected `image` or `latents`, not both: both give the starting latents');
    if (!folder.vaeEncoderPath) {
      throw fail(`Expected a model with a VAE encoder (vae_encoder/model.onnx) for image-to-image; the model \`${folder.name}\` has none`);
    }
    const strength = request.strength ?? DEFAULT_STRENGTH;
    if (typeof strength !== 'number' || !(strength > 0 && strength <= 1)) {
      throw fail(`Expected \`strength\` to be a number above 0 and at most 1, got ${describe(strength)}`);
    }
    if (Math.floor(steps * strength) < 1) {
      throw fail(`Expected \`steps\` x \`strength\` to be at least 1 (image-to-image runs that many steps), got ${steps} x ${strength}`);
    }
    return strength;
  }

  /** The VAE encoder, opened on the first image-to-image request (text-to-image never needs it). */
  let vaeEncoder: Promise<OnnxModel> | undefined;
  function openEncoder(): Promise<OnnxModel> {
    vaeEncoder ??= openModel(folder.vaeEncoderPath!, options.backend).then(async (model) => {
      try {
        requireInputs(model, ['sample']);
        if (model.inputType('sample') !== 'float32') {
          throw new PictalkError('model.invalid', `Expected input \`sample\` of ${model.path} to be float32, got ${model.inputType('sample')}`, { path: model.path });
        }
        // diffusers' converter exports `latent_dist.sample()`: a draw from onnxruntime's own unseeded generator inside
        // the graph. Two encodings of one probe picture tell it apart from a mean or mean-and-log-variance output.
        const side = 8 * factor;
        const probe = Float32Array.from({ length: 3 * side * side }, (_, i) => Math.sin(i * 0.37));
        const outputs: Float32Array[] = [];
        for (let k = 0; k < 2; k += 1) {
          const out = await model.run({ sample: { data: probe, dims: [1, 3, side, side] } }, [model.outputNames[0]!]);
          outputs.push((out[model.outputNames[0]!] as TensorValue<Float32Array>).data);
        }
        if (outputs[0]!.some((value, i) => value !== outputs[1]![i])) {
          throw new PictalkError('model.invalid',
            `Expected ${model.path} to return the posterior mean (or mean and log-variance), but it draws a sample inside the graph `
            + '(two encodings of one picture differ), so image-to-image could not be reproduced from its seed; '
            + 'export the encoder as models/README.md says', { path: model.path });
        }
        return model;
      } catch (error) {
        await model.dispose();
        throw error;
      }
    });
    // a graph that cannot serve (model.invalid) stays refused; anything else (a busy disk) is tried again next time
    vaeEncoder.catch((error: unknown) => { if (!(isPictalkError(error) && error.code === 'model.invalid')) vaeEncoder = undefined; });
    return vaeEncoder;
  }

  /**
   * Encode the starting picture to latents [C, h, w], scaled by scaling_factor, for picture seeds `seeds`.
   * An encoder that returns C channels gives its latents as they are (pictalk's exports: the posterior mean); one
   * that returns 2C (optimum's `latent_parameters`: mean and log-variance) is sampled with pictalk's own seeded
   * noise (stream 2 of each picture's seed), so every picture is reproducible. Returns [pictures, C, h, w].
   */
  async function encodeImage(image: Buffer, width: number, height: number, seeds: readonly number[]): Promise<Float32Array> {
    const encoder = await openEncoder();
    // diffusers' preprocess: RGB in [0, 1] -> [-1, 1], [1, 3, H, W]; resized with Lanczos as PIL's resize there
    const pixels = await imageToTensor(image, { size: [height, width], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], kernel: 'lanczos' });
    const out = await encoder.run({ sample: { data: pixels, dims: [1, 3, height, width] } }, [encoder.outputNames[0]!]);
    const moments = out[encoder.outputNames[0]!] as TensorValue<Float32Array>;   // [1, C or 2C, h, w]
    const h = height / factor;
    const w = width / factor;
    const [, got, gotH, gotW] = moments.dims;
    if (moments.dims.length !== 4 || (got !== channels && got !== 2 * channels) || gotH !== h || gotW !== w) {
      throw new PictalkError('model.invalid',
        `Expected ${encoder.path} to output [1, ${channels}, ${h}, ${w}] (latents) or [1, ${2 * channels}, ${h}, ${w}] (mean and log-variance), got [${moments.dims.join(', ')}]`,
        { path: encoder.path });
    }
    const per = channels * h * w;
    const latents = new Float32Array(seeds.length * per);
    const eps = new Float32Array(per);
    seeds.forEach((seed, j) => {
      const row = latents.subarray(j * per, (j + 1) * per);
      if (got === channels) {
        row.set(moments.data.subarray(0, per));
      } else {
        // DiagonalGaussianDistribution.sample(): mean + exp(0.5 * clamp(logvar, -30, 20)) * eps
        gaussianNoise(seed, 2).fill(eps);
        for (let i = 0; i < per; i += 1) {
          const logvar = Math.min(20, Math.max(-30, moments.data[per + i]!));
          row[i] = moments.data[i]! + Math.exp(0.5 * logvar) * eps[i]!;
        }
      }
      for (let i = 0; i < per; i += 1) row[i]! *= scalingFactor;
    });
    return latents;
  }

  /**
   * Text-encoder output [chunks x L, D] for one text, cached: the prompt's chunks (inference/prompt.weights.ts) in one
   * encoder call with every other missing text's, each chunk's weights applied, the chunks concatenated. A plain
   * prompt is one chunk of exactly `tokenizer.encode`'s ids, and its hidden states are left as the encoder gave them.
   */
  async function embed(texts: readonly string[]): Promise<Float32Array[]> {
    const missing = [...new Set(texts.filter((text) => !embeddings.get(text)))];
    if (missing.length > 0) {
      const plans = missing.map((text) => planPrompt(text, tokenizer, 'prompt', maxChunks, fixedContext));
      const rows = plans.reduce((sum, plan) => sum + plan.chunks, 0);
      const ids = new Int32Array(rows * textLength);                                // [rows, L]
      let row = 0;
      for (const plan of plans) { ids.set(plan.ids, row * textLength); row += plan.chunks; }
      const data = idsType === 'int64' ? BigInt64Array.from(ids, (id) => BigInt(id)) : ids;
      const out = await textEncoder.run({ input_ids: { data, dims: [rows, textLength] } }, [textEncoder.outputNames[0]!]);
      const hidden = out[textEncoder.outputNames[0]!] as TensorValue<Float32Array>;   // [rows, L, D]
      const per = hidden.data.length / rows;                                         // L * D
      textWidth = per / textLength;
      row = 0;
      missing.forEach((text, i) => {
        const plan = plans[i]!;
        const z = hidden.data.slice(row * per, (row + plan.chunks) * per);           // [chunks x L, D]
        for (let c = 0; plan.weights && c < plan.chunks; c += 1) {
          const weights = plan.weights.subarray(c * textLength, (c + 1) * textLength);
          if (weights.some((weight) => weight !== 1)) applyEmphasis(z.subarray(c * per, (c + 1) * per), weights, textWidth);
        }
        embeddings.set(text, z);
        row += plan.chunks;
      });
    }
    return texts.map((text) => embeddings.get(text)!);
  }

  async function imagine(request: ImagineRequest, run: RunOptions = {}): Promise<ImagineResult> {
    const settings = settingsFor(request);
    const { seed, steps, guidance, width, height, count, candidates } = settings;
    // every picture drawn: image i's candidates are pictures i * candidates .. (i + 1) * candidates - 1
    const pictures = count * candidates;
    const h = height / factor;
    const w = width / factor;
    const perImage = channels * h * w;
    const latentSize = pictures * perImage;
    if (request.latents !== undefined) {
      if (!(request.latents instanceof Float32Array) || request.latents.length !== latentSize) {
        const got = request.latents instanceof Float32Array ? `${request.latents.length} values` : describe(request.latents);
        throw new PictalkError('input.invalid',
          `Expected latents of shape [${count}, ${channels}, ${h}, ${w}] (${latentSize} float32 values) for ${width}x${height}, got ${got}`);
      }
    }
    const upscale = request.upscale ?? 1;
    if (!isInt(upscale) || upscale < 1 || upscale > 8) {
      throw new PictalkError('input.invalid', `Expected \`upscale\` to be an integer from 1 to 8, got ${describe(upscale)}`);
    }
    const checkAbort = (): void => {
      if (run.signal?.aborted) throw new PictalkError('job.cancelled', 'The imagine job was cancelled');
    };
    checkAbort();
    const timingsMs: Record<string, number> = {};
    const started = performance.now();
    let mark = started;
    const lap = (name: string): void => { const now = performance.now(); timingsMs[name] = now - mark; mark = now; };

    // encode prompt: [uncond x n, cond x n] with guidance, [cond x n] without, for the n pictures in flight
    const guided = guidance > 1;
    let [cond, uncond] = await embed(guided ? [settings.prompt, settings.negativePrompt] : [settings.prompt]);
    if (guided && cond!.length !== uncond!.length) {
      // both halves go in one UNet batch: the shorter text is padded with the empty prompt's chunk, as A1111 pads them
      const [empty] = await embed(['']);
      const longest = Math.max(cond!.length, uncond!.length);
      const pad = (z: Float32Array): Float32Array => {
        const out = new Float32Array(longest);
        out.set(z);
        for (let at = z.length; at < longest; at += empty!.length) out.set(empty!, at);
        return out;
      };
      [cond, uncond] = [pad(cond!), pad(uncond!)];
    }
    const textSize = cond!.length;                      // chunks x L x D
    const contextFor = (n: number): Float32Array<ArrayBuffer> => {
      const context = new Float32Array((guided ? 2 * n : n) * textSize); // [batch, L, D]
      for (let i = 0; i < n; i += 1) {
        if (guided) {
          context.set(uncond!, i * textSize);
          context.set(cond!, (n + i) * textSize);
        } else {
          context.set(cond!, i * textSize);
        }
      }
      return context;
    };
    lap('encode');
    checkAbort();

    // prepare latents: [pictures, C, h, w], picture j from seed + j, scaled by the scheduler's initial sigma
    const scheduler = createScheduler(settings.scheduler, folder.schedulerConfig, folder.schedulerConfigPath);
    scheduler.setTimesteps(steps);
    const seeds = Array.from({ length: pictures }, (_, j) => seed + j);
    let latents: Float32Array = new Float32Array(latentSize);
    if (request.latents) latents.set(request.latents);
    else BatchNoise.of(seeds, 0).fill(latents);
    // image-to-image: the encoded picture, noised to the level of the step the strength picks, where denoising starts
    const timesteps = startingTimesteps(scheduler, steps, settings.strength);
    if (settings.strength !== undefined && settings.strength < 1) {
      const init = await encodeImage(request.image!, width, height, seeds);
      checkAbort();
      latents = scheduler.addNoise(init, latents, timesteps[0]!);
    } else if (scheduler.initNoiseSigma !== 1) {
      for (let i = 0; i < latentSize; i += 1) latents[i]! *= scheduler.initNoiseSigma;
    }
    let stepNoise = BatchNoise.of(seeds, 1);
    lap('latents');

    // Candidates are ranked on their finished pictures, or, with a memoryless sampler and pictalk.json `rank_at`
    // below 1, on the clean pictures the sampler predicts after that share of the steps; then only the kept one of
    // each image is denoised to the end. Its noise stream goes on as it would have, so it ends as it would alone.
    const total = timesteps.length;
    const rankStep = candidates > 1 && MEMORYLESS.has(settings.scheduler) && defaults.rankAt < 1
      ? Math.min(total, Math.max(1, Math.round(defaults.rankAt * total))) : total;
    let live = seeds.map((_, j) => j);                              // the pictures still in flight
    const kept = Array.from({ length: count }, (_, i) => i * candidates);
    const fits: Array<number | undefined> = kept.map(() => undefined);
    /** Decode [n, C, h, w] latents (unscaled by scaling_factor here) to [n, 3, H, W] pixels in [-1, 1]. */
    const decode = async (z: Float32Array, n: number): Promise<Float32Array> => {
      for (let i = 0; i < z.length; i += 1) z[i]! /= scalingFactor;
      const decoded = await vaeDecoder.run({ latent_sample: { data: z, dims: [n, channels, h, w] } }, [vaeDecoder.outputNames[0]!]);
      const out = decoded[vaeDecoder.outputNames[0]!] as TensorValue<Float32Array>;
      if (out.dims[1] !== 3 || out.dims[2] !== height || out.dims[3] !== width) {
        throw new PictalkError('model.invalid', `Expected ${vaeDecoder.path} to output [${n}, 3, ${height}, ${width}], got [${out.dims.join(', ')}]`,
          { path: vaeDecoder.path });
      }
      return out.data;
    };
    /** Keep, per image, the candidate whose picture the scorer ranks first (the first on a tie). */
    const rank = async (pixels: Float32Array): Promise<void> => {
      // the drafts' 8-bit pixels, as their PNG would hold them (none is made: the scorer reads pixels)
      const plain = live.map((_, r) => ({ rgb: chwToRgb(pixels, width, height, r * 3 * width * height), width, height }));
      for (let i = 0; i < count; i += 1) {
        const group = plain.slice(i * candidates, (i + 1) * candidates);
        const scores = await options.scorer!(group, settings.prompt, { ...(run.signal ? { signal: run.signal } : {}) });
        if (!Array.isArray(scores) || scores.length !== candidates || scores.some((score) => typeof score !== 'number' || Number.isNaN(score))) {
          throw new PictalkError('inference.failed', `Expected ${candidates} scores from the ranking captioner, got ${describe(scores)}`);
        }
        let best = 0;
        for (let k = 1; k < candidates; k += 1) if (scores[k]! > scores[best]!) best = k;
        kept[i] = i * candidates + best;
        fits[i] = scores[best];
      }
      run.onProgress?.({ stage: 'rank', step: 1, total: 1 });
    };

    // denoise: one UNet call per step over every picture in flight; buffers reused across steps
    let batch = 0;
    let latentRows = 0;
    let context = new Float32Array(0);
    let sample = new Float32Array(0);
    let eps = new Float32Array(0);
    let timestepData: BigInt64Array | Float32Array = new Float32Array(0);
    let inFlight = 0;
    const previews = previewMap ? new PreviewSchedule(options.previews || { afterMs: DEFAULT_PREVIEW_AFTER_MS }, started, total) : undefined;
    let denoised = 0;                                               // steps done; a late preview is dropped after the last
    for (const [index, t] of timesteps.entries()) {
      checkAbort();
      const n = live.length;
      const size = n * perImage;
      if (n !== inFlight) {                                          // first step, or after the draft ranking
        inFlight = n;
        batch = guided ? 2 * n : n;
        latentRows = sharedLatents ? n : batch;                      // each latent once, or once per text row
        context = contextFor(n);
        sample = new Float32Array(latentRows * perImage);            // [latent rows, C, h, w]
        eps = new Float32Array(batch * perImage);                    // [batch, C, h, w]
        timestepData = timestepType === 'int64' ? new BigInt64Array(timestepPerRow ? latentRows : 1) : new Float32Array(timestepPerRow ? latentRows : 1);
      }
      const input = scheduler.scaleModelInput(latents, t);
      sample.set(input, 0);
      if (latentRows > n) sample.set(input, size);
      // Euler's timesteps are fractional: int64 exports truncate, as NumPy's astype does
      if (timestepData instanceof BigInt64Array) timestepData.fill(BigInt(Math.trunc(t)));
      else timestepData.fill(t);
      await batcher.run({
        sample, timestep: timestepData, context, out: eps,
        sampleDims: [latentRows, channels, h, w], contextDims: [batch, textSize / textWidth, textWidth],
      });
      // classifier-free guidance, in place into the unconditional half: eps_u + g * (eps_c - eps_u)
      if (guided) {
        for (let i = 0; i < size; i += 1) {
          const u = eps[i]!;
          eps[i] = u + guidance * (eps[size + i]! - u);
        }
      }
      const stepped = scheduler.step(guided ? eps.subarray(0, size) : eps, t, latents, stepNoise);
      latents = stepped.prevSample;
      denoised = index + 1;
      run.onProgress?.({ stage: 'denoise', step: index + 1, total });
      if (previewMap && run.onProgress && previews!.due(index + 1, performance.now())) {
        // image 1's picture (its kept candidate once ranked), from the clean picture the sampler predicts if it does:
        // mapped to RGB now (a few microseconds), encoded as PNG on the next turn of the event loop, while the next
        // UNet call runs on the inference thread, and reported with the latest step unless the denoising is over
        const source = stepped.predOriginal ?? latents;
        const row = Math.max(0, live.indexOf(kept[0]!));
        const pixels = latentsToPixels(previewMap, source, channels, h, w, row * perImage);
        setImmediate(() => {
          if (denoised >= total) return;
          try {
            run.onProgress?.({ stage: 'denoise', step: denoised, total, preview: encodePreview(pixels, h, w) });
          } catch {
            // a preview that cannot be made is only a preview missed
          }
        });
      }
      if (index + 1 === rankStep && rankStep < total && stepped.predOriginal) {
        await rank(await decode(stepped.predOriginal, n));
        const rows = kept.map((j) => live.indexOf(j));
        const next = new Float32Array(rows.length * perImage);
        rows.forEach((r, i) => next.set(latents.subarray(r * perImage, (r + 1) * perImage), i * perImage));
        latents = next;
        stepNoise = stepNoise.keep(rows);
        live = [...kept];
        lap('rank');
      }
    }
    lap('denoise');
    checkAbort();

    // decode: latents / scaling_factor -> [pictures in flight, 3, H, W] in [-1, 1]
    const pixels = await decode(latents, live.length);
    run.onProgress?.({ stage: 'decode', step: 1, total: 1 });
    lap('decode');

    // rank the finished pictures (unless the drafts were ranked)
    if (live.length > count) {
      await rank(pixels);
      lap('rank');
    }

    // safety checker (when the folder has one): has_nsfw_concepts for each kept image; bot/ decides what a flag means
    const flags = safety ? await safety.check(pixels, kept.map((j) => live.indexOf(j) * 3 * width * height), width, height) : undefined;
    if (flags) lap('safety');

    // encode PNG, with the settings that reproduce each image and the AI-generated marker
    const images: GeneratedImage[] = await Promise.all(kept.map(async (j, i) => ({
      png: await encodePng(pixels, width, height, {
        aiGenerated: true,
        upscale,
        text: {
          prompt: settings.prompt,
          negative_prompt: settings.negativePrompt,
          seed: String(seeds[i * candidates]),
          steps: String(steps),
          guidance: String(guidance),
          scheduler: settings.scheduler,
          size: `${width}x${height}`,
          model: model.name,
          model_hash: model.hash,
          ...(settings.strength !== undefined ? {
            strength: String(settings.strength),
            init_image_sha256: createHash('sha256').update(request.image!).digest('hex'),
          } : {}),
          ...(candidates > 1 ? {
            candidates: String(candidates),
            ranking: `kept candidate ${j - i * candidates + 1} of ${candidates} (seed ${seeds[j]} with candidates 1 draws it alone), ranked by the captioner`,
          } : {}),
        },
      }, live.indexOf(j) * 3 * width * height),
      seed: seeds[i * candidates]!,
      width: width * upscale,
      height: height * upscale,
      ...(fits[i] !== undefined ? { ranking: { fit: fits[i]!, candidates, kept: j - i * candidates, keptSeed: seeds[j]! } } : {}),
      ...(flags ? { nsfw: flags[i]! } : {}),
    })));
    lap('png');
    timingsMs.total = performance.now() - started;
    return { kind: 'imagine', images, settings, model, timingsMs };
  }

  return {
    folder,
    unetStats: batcher.stats,
    settingsFor,
    imagine: async (request, run) => {
      try {
        return await imagine(request, run);
      } catch (error) {
        throw asInferenceError(error, 'Text-to-image');
      }
    },
    async dispose() {
      const encoder = await vaeEncoder?.catch(() => undefined);
      await Promise.all([textEncoder.dispose(), unet.dispose(), vaeDecoder.dispose(), encoder?.dispose(), safety?.dispose()]);
    },
  };
}

/**
 * The timesteps a request denoises. Text-to-image (no strength) and strength 1: all of them, from pure noise.
 * Image-to-image: diffusers' StableDiffusionImg2ImgPipeline.get_timesteps: init_timestep = min(int(steps x strength),
 * steps), t_start = max(steps - init_timestep, 0), timesteps[t_start x order:] (every scheduler here has order 1);
 * the picture is noised to the first of them. (diffusers' ONNX img2img pipeline adds `steps_offset` to
 * init_timestep and noises one step above where it starts denoising; pictalk follows the newer rule.)
 * @see diffusers/pipelines/stable_diffusion/pipeline_stable_diffusion_img2img.py (get_timesteps, prepare_latents)
 */
export function startingTimesteps(scheduler: Scheduler, steps: number, strength: number | undefined): readonly number[] {
  if (strength === undefined || strength >= 1) return scheduler.timesteps;
  const initTimestep = Math.min(Math.floor(steps * strength), steps);
  const tStart = Math.max(steps - initTimestep, 0);
  return scheduler.timesteps.slice(tStart);
}
