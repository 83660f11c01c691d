/**
 * Text-to-image over the diffusers ONNX layout (models/README.md), in the order of diffusers'
 * OnnxStableDiffusionPipeline: validate, encode prompt, prepare latents, denoise with classifier-free guidance,
 * decode with the VAE, encode PNG.
 *
 * Classifier-free guidance runs the unconditional and conditional halves in ONE UNet call of batch 2 * count,
 * [uncond x count, cond x count] as diffusers orders them, and combines them in place. Buffers that live through
 * the denoising loop (UNet input, timestep, UNet output) are allocated once per request; sessions stay warm in the
 * backend's cache between requests.
 * @see diffusers/pipelines/stable_diffusion/pipeline_onnx_stable_diffusion.py
 */
import { randomInt } from 'node:crypto';
import { loadClipTokenizer, type ClipTokenizer } from './clip.tokenizer.js';
import { PictalkError, asInferenceError, describe } from '../common/errors.js';
import { encodePng } from './image.codec.js';
import { MAX_CANDIDATES, hashModelFolder, readTextToImageFolder, type TextToImageFolder } from './model-folder.js';
import { openModel, type BackendOptions, type OnnxModel, type TensorValue } from './onnx.backend.js';
import { UnetBatcher, type UnetBatcherStats } from './unet.batcher.js';
import { createScheduler } from './schedulers/scheduler.factory.js';
import { gaussianNoise } from './schedulers/noise.js';
import type { NoiseSource } from './schedulers/scheduler.js';
import {
  SCHEDULER_NAMES, type GeneratedImage, type ImagineRequest, type ImagineResult, type ImagineSettings, type RunOptions,
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
}

/** Scores of PNG pictures against one text, higher = closer; one number per picture, in order. */
export type TextScorer = (images: readonly Buffer[], text: string, options?: { signal?: AbortSignal }) => Promise<number[]>;

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
  try {
    return createPipeline(folder, await hash, tokenizer, textEncoder, unet, vaeDecoder, options);
  } catch (error) {
    await Promise.all(opened.map((model) => model.dispose()));
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
  textEncoder: OnnxModel, unet: OnnxModel, vaeDecoder: OnnxModel, options: TextToImageOptions,
): TextToImage {
  requireInputs(textEncoder, ['input_ids']);
  requireInputs(unet, ['sample', 'timestep', 'encoder_hidden_states']);
  requireInputs(vaeDecoder, ['latent_sample']);
  // dtypes from the session: input_ids int32 (optimum) or int64; the UNet timestep int64 or float32
  const idsType = textEncoder.inputType('input_ids');
  const timestepType = unet.inputType('timestep');
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
  const { latentChannels: channels, latentFactor: factor, scalingFactor, defaults, maxSize } = folder;
  const model = { name: folder.name, hash: modelHash };
  const embeddings = new EmbeddingCache();
  // every request's UNet calls go through one batcher, so jobs running side by side share runs
  const batcher = new UnetBatcher(unet, timestepPerRow, options.unetMaxRows ?? 16, options.onUnetRun);

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
    const seed = request.seed ?? randomInt(0, 2 ** 32 - 1);
    if (!isInt(seed) || seed < 0 || seed > 0xffffffff) throw fail(`Expected \`seed\` to be an integer from 0 to 4294967295, got ${describe(seed)}`);
    const steps = request.steps ?? defaults.steps;
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
    const pictures = count * candidates;
    if (pictures > 1 && seed + pictures - 1 > 0xffffffff) {
      throw fail(`Expected \`seed\` + \`count\` x \`candidates\` - 1 to stay below 2^32, got seed ${seed} with ${pictures} pictures`);
    }
    return { prompt: request.prompt, negativePrompt, seed, steps, guidance, width, height, scheduler, count, candidates };
  }

  /** Text-encoder output [L, D] for one text, cached. */
  async function embed(texts: readonly string[]): Promise<Float32Array[]> {
    const missing = [...new Set(texts.filter((text) => !embeddings.get(text)))];
    if (missing.length > 0) {
      const ids = new Int32Array(missing.length * textLength);
      missing.forEach((text, i) => ids.set(tokenizer.encode(text).ids, i * textLength));
      const data = idsType === 'int64' ? BigInt64Array.from(ids, (id) => BigInt(id)) : ids;
      const out = await textEncoder.run({ input_ids: { data, dims: [missing.length, textLength] } }, [textEncoder.outputNames[0]!]);
      const hidden = out[textEncoder.outputNames[0]!] as TensorValue<Float32Array>;   // [n, L, D]
      const per = hidden.data.length / missing.length;
      missing.forEach((text, i) => embeddings.set(text, hidden.data.slice(i * per, (i + 1) * per)));
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
    const [cond, uncond] = await embed(guided ? [settings.prompt, settings.negativePrompt] : [settings.prompt]);
    const textSize = cond!.length;                      // L * D
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
    if (scheduler.initNoiseSigma !== 1) for (let i = 0; i < latentSize; i += 1) latents[i]! *= scheduler.initNoiseSigma;
    let stepNoise = BatchNoise.of(seeds, 1);
    lap('latents');

    // Candidates are ranked on their finished pictures, or, with a memoryless sampler and pictalk.json `rank_at`
    // below 1, on the clean pictures the sampler predicts after that share of the steps; then only the kept one of
    // each image is denoised to the end. Its noise stream goes on as it would have, so it ends as it would alone.
    const total = scheduler.timesteps.length;
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
      const plain = await Promise.all(live.map((_, r) => encodePng(pixels, width, height, {}, r * 3 * width * height)));
      checkAbort();
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
    let context = new Float32Array(0);
    let sample = new Float32Array(0);
    let eps = new Float32Array(0);
    let timestepData: BigInt64Array | Float32Array = new Float32Array(0);
    let inFlight = 0;
    for (const [index, t] of scheduler.timesteps.entries()) {
      checkAbort();
      const n = live.length;
      const size = n * perImage;
      if (n !== inFlight) {                                          // first step, or after the draft ranking
        inFlight = n;
        batch = guided ? 2 * n : n;
        context = contextFor(n);
        sample = new Float32Array(batch * perImage);                 // [batch, C, h, w]
        eps = new Float32Array(batch * perImage);                    // [batch, C, h, w]
        timestepData = timestepType === 'int64' ? new BigInt64Array(timestepPerRow ? batch : 1) : new Float32Array(timestepPerRow ? batch : 1);
      }
      const input = scheduler.scaleModelInput(latents, t);
      sample.set(input, 0);
      if (guided) sample.set(input, size);
      // Euler's timesteps are fractional: int64 exports truncate, as NumPy's astype does
      if (timestepData instanceof BigInt64Array) timestepData.fill(BigInt(Math.trunc(t)));
      else timestepData.fill(t);
      await batcher.run({
        sample, timestep: timestepData, context, out: eps,
        sampleDims: [batch, channels, h, w], contextDims: [batch, textLength, textSize / textLength],
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
      run.onProgress?.({ stage: 'denoise', step: index + 1, total });
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
      await Promise.all([textEncoder.dispose(), unet.dispose(), vaeDecoder.dispose()]);
    },
  };
}
