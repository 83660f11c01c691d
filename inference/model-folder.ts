/**
 * Reading and validating model folders (the contracts of models/README.md), before any session is opened:
 * a folder with a missing or malformed file fails here with `model.invalid` naming the file.
 *
 * - Text-to-image: the diffusers ONNX layout (what `optimum` exports for Stable Diffusion 1.x/2.x), plus an optional
 *   `pictalk.json` beside `model_index.json` (or a `pictalk` key inside it) with the model's own defaults, and an
 *   optional `safety_checker/` with its `feature_extractor/preprocessor_config.json`.
 * - Captioner: `config.json`, `vocab.json`, `encoder.onnx`, `decoder_step.onnx`; `encoder_file` in config.json may
 *   name another encoder graph in the folder (the builtin captioner's int8 `encoder.int8.onnx`); an optional
 *   `domain.json` (the out-of-domain check, domain.check.ts), off when config.json says `general_purpose: true`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { PictalkError, describe } from '../common/errors.js';
import { schedulerNameForClass } from './schedulers/scheduler.factory.js';
import { SCHEDULER_NAMES, type SchedulerName } from './types.js';
import type { ClipPreprocessing, ResizeKernel } from './image.codec.js';
import type { LatentPreviewMap } from './latent.preview.js';

type Json = Record<string, unknown>;

function invalid(path: string, message: string): PictalkError {
  return new PictalkError('model.invalid', message, { path });
}

export function requireFile(path: string): string {
  if (!existsSync(path) || !statSync(path).isFile()) throw invalid(path, `Expected the model file ${path}, found none`);
  return path;
}

export function readJson(path: string): Json {
  requireFile(path);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw invalid(path, `Expected valid JSON in ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(path, `Expected a JSON object in ${path}, got ${Array.isArray(value) ? 'an array' : describe(value)}`);
  }
  return value as Json;
}

function requireDir(dir: string, what: string): string {
  const absolute = resolve(dir);
  if (!existsSync(absolute) || !statSync(absolute).isDirectory()) {
    throw invalid(absolute, `Expected a ${what} folder at ${absolute}, found none`);
  }
  return absolute;
}

function num(json: Json, key: string, path: string, check: (n: number) => boolean, expected: string, fallback?: number): number {
  const value = json[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
    throw invalid(path, `Expected \`${key}\` in ${path} to be ${expected}, got ${describe(value)}`);
  }
  return value;
}

const isPositiveInt = (n: number): boolean => Number.isInteger(n) && n > 0;
const isNonNegativeInt = (n: number): boolean => Number.isInteger(n) && n >= 0;

// ---- text-to-image -------------------------------------------------------------------------------------------

/** Most candidates per image (pictalk.json `candidates`, the request's `candidates`). */
export const MAX_CANDIDATES = 8;

export interface TextToImageDefaults {
  scheduler: SchedulerName;
  steps: number;
  guidance: number;
  width: number;
  height: number;
  /** Pictures drawn per image asked for, the one the captioner finds closest to the prompt kept (1: no ranking). */
  candidates: number;
  /**
   * When candidates are ranked, as a share of the steps (0 to 1): 1 ranks the finished pictures; below 1, a
   * memoryless sampler's (euler-a, ddim, lcm) predicted clean pictures after that share, and only the kept ones go on.
   */
  rankAt: number;
}

export interface TextToImageFolder {
  dir: string;
  name: string;
  tokenizerDir: string;
  textEncoderPath: string;
  unetPath: string;
  vaeDecoderPath: string;
  /** vae_encoder/model.onnx when the folder has one (image-to-image needs it). */
  vaeEncoderPath?: string;
  /** scheduler/scheduler_config.json as written (the schedulers resolve their own defaults). */
  schedulerConfig: Json;
  schedulerConfigPath: string;
  /** C of the latents [B, C, h, w]. */
  latentChannels: number;
  /** f: image side / latent side = 2^(len(block_out_channels) - 1). */
  latentFactor: number;
  /** Latents are divided by this before the VAE decoder (SD 1.x: 0.18215). */
  scalingFactor: number;
  defaults: TextToImageDefaults;
  /** Largest accepted width or height; twice the default size unless pictalk.json says `max_size`. */
  maxSize: number;
  /** `safety_checker/` with `feature_extractor/`, when the folder has them: run on every decoded image. */
  safetyChecker?: SafetyCheckerFolder;
  /** pictalk.json `latent_preview`: the model's own latent-to-RGB map for live previews (inference/latent.preview.ts). */
  latentPreview?: LatentPreviewMap;
  /**
   * pictalk.json `unet_shared_latents`: the UNet takes each latent once with guidance, `sample` and `timestep` with m
   * rows and `encoder_hidden_states` with k = r * m (text row j with latent j mod m), and runs its layers before the
   * first cross-attention once per latent (models/train/t2i_share_latents.py). False for other exports: they take
   * one latent per text row.
   */
  unetSharedLatents: boolean;
}

const PIPELINE_DEFAULT_STEPS = 20;
const PIPELINE_DEFAULT_GUIDANCE = 7.5;
/** An LCM folder's defaults when pictalk.json does not set them: diffusers' LCM pipelines run 4 steps, LCM-LoRA at guidance 1. */
const LCM_DEFAULT_STEPS = 4;
const LCM_DEFAULT_GUIDANCE = 1;

export function readTextToImageFolder(dirIn: string): TextToImageFolder {
  const dir = requireDir(dirIn, 'text-to-image model');
  const indexPath = join(dir, 'model_index.json');
  const modelIndex = readJson(indexPath);
  const tokenizerDir = join(dir, 'tokenizer');
  for (const file of ['vocab.json', 'merges.txt']) requireFile(join(tokenizerDir, file));
  const textEncoderPath = requireFile(join(dir, 'text_encoder', 'model.onnx'));
  const unetPath = requireFile(join(dir, 'unet', 'model.onnx'));
  const vaeDecoderPath = requireFile(join(dir, 'vae_decoder', 'model.onnx'));
  const vaeEncoderFile = join(dir, 'vae_encoder', 'model.onnx');
  const vaeEncoderPath = existsSync(vaeEncoderFile) ? vaeEncoderFile : undefined;

  const schedulerPath = join(dir, 'scheduler', 'scheduler_config.json');
  const schedulerConfig = readJson(schedulerPath);
  const schedulerClass = schedulerConfig._class_name;
  const ownScheduler = typeof schedulerClass === 'string' ? schedulerNameForClass(schedulerClass) : undefined;

  // The VAE config: optimum copies it beside vae_decoder/model.onnx; older exports keep only vae_encoder's or none.
  const vaePath = [join(dir, 'vae_decoder', 'config.json'), join(dir, 'vae_encoder', 'config.json')].find((p) => existsSync(p));
  const vae = vaePath ? readJson(vaePath) : {};
  const vaeWhere = vaePath ?? join(dir, 'vae_decoder', 'config.json');
  const scalingFactor = num(vae, 'scaling_factor', vaeWhere, (n) => n > 0, 'a positive number', 0.18215);
  const latentChannels = num(vae, 'latent_channels', vaeWhere, isPositiveInt, 'a positive integer', 4);
  const blocks = vae.block_out_channels ?? [128, 256, 512, 512];
  if (!Array.isArray(blocks) || blocks.length < 1) {
    throw invalid(vaeWhere, `Expected \`block_out_channels\` in ${vaeWhere} to be a non-empty array, got ${describe(blocks)}`);
  }
  const latentFactor = 2 ** (blocks.length - 1);

  const unetConfigPath = join(dir, 'unet', 'config.json');
  const unet = existsSync(unetConfigPath) ? readJson(unetConfigPath) : {};
  const sampleSize = unet.sample_size;
  const sideFromUnet = typeof sampleSize === 'number' ? sampleSize * latentFactor
    : Array.isArray(sampleSize) && typeof sampleSize[0] === 'number' ? sampleSize[0] * latentFactor : 512;

  // The model's own defaults: pictalk.json beside model_index.json wins over a `pictalk` key in model_index.json.
  const extraPath = join(dir, 'pictalk.json');
  const extra: Json = existsSync(extraPath) ? readJson(extraPath)
    : (modelIndex.pictalk && typeof modelIndex.pictalk === 'object' ? modelIndex.pictalk as Json : {});
  const extraWhere = existsSync(extraPath) ? extraPath : indexPath;
  // A scheduler class pictalk does not implement (SD-Turbo's EulerDiscreteScheduler) is fine when pictalk.json names
  // the sampler to run: that sampler then reads the folder's config (its spacing too), as diffusers' from_config does.
  if (!ownScheduler && extra.scheduler === undefined) {
    throw invalid(schedulerPath, `Expected \`_class_name\` in ${schedulerPath} to be a scheduler class pictalk implements `
      + `(PNDMScheduler, DDIMScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler, LCMScheduler), got ${describe(schedulerClass)}; `
      + `or name the sampler to run with it as \`scheduler\` in ${extraPath}`);
  }
  const scheduler = extra.scheduler ?? ownScheduler;
  if (typeof scheduler !== 'string' || !(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) {
    throw invalid(extraWhere, `Expected \`scheduler\` in ${extraWhere} to be one of ${SCHEDULER_NAMES.join(', ')}, got ${describe(scheduler)}`);
  }
  const isSide = (n: number): boolean => isPositiveInt(n) && n % latentFactor === 0;
  const width = num(extra, 'width', extraWhere, isSide, `a positive multiple of ${latentFactor}`, sideFromUnet);
  const height = num(extra, 'height', extraWhere, isSide, `a positive multiple of ${latentFactor}`, sideFromUnet);
  // an LCM folder (its scheduler class, or pictalk.json's `scheduler`) runs few steps without classifier-free guidance
  // unless pictalk.json says otherwise; guidance <= 1 runs one UNet batch per step (text-to-image.pipeline.ts)
  const lcm = scheduler === 'lcm';
  const defaults: TextToImageDefaults = {
    scheduler: scheduler as SchedulerName,
    steps: num(extra, 'steps', extraWhere, (n) => isPositiveInt(n) && n <= 100, 'an integer from 1 to 100', lcm ? LCM_DEFAULT_STEPS : PIPELINE_DEFAULT_STEPS),
    guidance: num(extra, 'guidance', extraWhere, (n) => n >= 0 && n <= 30, 'a number from 0 to 30', lcm ? LCM_DEFAULT_GUIDANCE : PIPELINE_DEFAULT_GUIDANCE),
    width,
    height,
    candidates: num(extra, 'candidates', extraWhere, (n) => isPositiveInt(n) && n <= MAX_CANDIDATES, `an integer from 1 to ${MAX_CANDIDATES}`, 1),
    rankAt: num(extra, 'rank_at', extraWhere, (n) => n > 0 && n <= 1, 'a number above 0 and at most 1', 1),
  };
  const maxSize = num(extra, 'max_size', extraWhere, isSide, `a positive multiple of ${latentFactor}`, 2 * Math.max(width, height));
  const latentPreview = extra.latent_preview === undefined ? undefined : readPreviewMap(extra.latent_preview, latentChannels, extraWhere);
  const unetSharedLatents = extra.unet_shared_latents ?? false;
  if (typeof unetSharedLatents !== 'boolean') {
    throw invalid(extraWhere, `Expected \`unet_shared_latents\` in ${extraWhere} to be true or false, got ${describe(unetSharedLatents)}`);
  }
  const name = typeof extra.name === 'string' ? extra.name
    : typeof modelIndex._name_or_path === 'string' && modelIndex._name_or_path ? basename(modelIndex._name_or_path)
      : basename(dir);
  const safetyChecker = readSafetyChecker(dir);
  return {
    ...(safetyChecker ? { safetyChecker } : {}),
    dir, name, tokenizerDir, textEncoderPath, unetPath, vaeDecoderPath, ...(vaeEncoderPath ? { vaeEncoderPath } : {}), schedulerConfig, schedulerConfigPath: schedulerPath,
    latentChannels, latentFactor, scalingFactor, defaults, maxSize, ...(latentPreview ? { latentPreview } : {}), unetSharedLatents,
  };
}

/** pictalk.json `latent_preview`: `rgb_factors` (one [r, g, b] row per latent channel), `rgb_bias` and `source`. */
function readPreviewMap(value: unknown, channels: number, where: string): LatentPreviewMap {
  const map = value as { rgb_factors?: unknown; rgb_bias?: unknown; source?: unknown } | null;
  const isRow = (row: unknown): row is [number, number, number] =>
    Array.isArray(row) && row.length === 3 && row.every((n) => typeof n === 'number' && Number.isFinite(n));
  if (!map || typeof map !== 'object' || !Array.isArray(map.rgb_factors) || map.rgb_factors.length !== channels || !map.rgb_factors.every(isRow)) {
    throw invalid(where, `Expected \`latent_preview.rgb_factors\` in ${where} to be ${channels} rows of three numbers (one per latent channel), got ${describe(map?.rgb_factors)}`);
  }
  const bias = map.rgb_bias ?? [0, 0, 0];
  if (!isRow(bias)) throw invalid(where, `Expected \`latent_preview.rgb_bias\` in ${where} to be three numbers, got ${describe(bias)}`);
  return { factors: map.rgb_factors, bias, source: typeof map.source === 'string' ? map.source : where };
}

// ---- captioner -----------------------------------------------------------------------------------------------

export interface CaptionerConfig {
  architecture: 'cnn-lstm' | 'cnn-lstm-attention';
  imageSize: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  bosId: number;
  eosId: number;
  padId: number;
  unkId: number;
  maxLength: number;
  beamSize: number;
  lengthPenalty: number;
  hiddenSize: number;
  numLayers: number;
}

export interface CaptionerFolder {
  dir: string;
  name: string;
  config: CaptionerConfig;
  vocab: string[];
  encoderPath: string;
  decoderPath: string;
  /** config.json `general_purpose: true`: a captioner of everyday pictures (Flickr8k-trained), no domain check. */
  generalPurpose: boolean;
  /** `domain.json`, the out-of-domain check's statistics (domain.check.ts); absent: no check. */
  domainPath?: string;
}

function triple(json: Json, key: string, path: string, positive: boolean): [number, number, number] {
  const value = json[key];
  if (!Array.isArray(value) || value.length !== 3 || value.some((v) => typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0))) {
    throw invalid(path, `Expected \`${key}\` in ${path} to be three ${positive ? 'positive ' : ''}numbers, got ${describe(JSON.stringify(value))}`);
  }
  return value as [number, number, number];
}

export function readCaptionerFolder(dirIn: string): CaptionerFolder {
  const dir = requireDir(dirIn, 'captioner');
  const configPath = join(dir, 'config.json');
  const json = readJson(configPath);
  const architecture = json.architecture;
  if (architecture !== 'cnn-lstm' && architecture !== 'cnn-lstm-attention') {
    throw invalid(configPath, `Expected \`architecture\` in ${configPath} to be cnn-lstm or cnn-lstm-attention, got ${describe(architecture)}`);
  }
  const size = json.image_size;
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => typeof v === 'number' && isPositiveInt(v))) {
    throw invalid(configPath, `Expected \`image_size\` in ${configPath} to be [H, W] positive integers, got ${describe(JSON.stringify(size))}`);
  }
  const vocabPath = join(dir, 'vocab.json');
  requireFile(vocabPath);
  let vocab: unknown;
  try {
    vocab = JSON.parse(readFileSync(vocabPath, 'utf8'));
  } catch (error) {
    throw invalid(vocabPath, `Expected valid JSON in ${vocabPath}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!Array.isArray(vocab) || vocab.length === 0 || vocab.some((w) => typeof w !== 'string')) {
    throw invalid(vocabPath, `Expected ${vocabPath} to be a JSON array of words, got ${describe(Array.isArray(vocab) ? `an array of ${vocab.length}` : vocab)}`);
  }
  const words = vocab as string[];
  const encoderFile = json.encoder_file ?? 'encoder.onnx';
  if (typeof encoderFile !== 'string' || !/^[\w.-]+\.onnx$/.test(encoderFile)) {
    throw invalid(configPath, `Expected \`encoder_file\` in ${configPath} to be the name of an .onnx file in the same folder, got ${describe(encoderFile)}`);
  }
  const isId = (n: number): boolean => isNonNegativeInt(n) && n < words.length;
  const ids = `an integer id below the vocabulary size ${words.length}`;
  const config: CaptionerConfig = {
    architecture,
    imageSize: [size[0] as number, size[1] as number],
    mean: triple(json, 'mean', configPath, false),
    std: triple(json, 'std', configPath, true),
    bosId: num(json, 'bos_id', configPath, isId, ids),
    eosId: num(json, 'eos_id', configPath, isId, ids),
    padId: num(json, 'pad_id', configPath, isId, ids),
    unkId: num(json, 'unk_id', configPath, isId, ids),
    maxLength: num(json, 'max_length', configPath, (n) => isPositiveInt(n) && n <= 256, 'an integer from 1 to 256'),
    beamSize: num(json, 'beam_size', configPath, (n) => isPositiveInt(n) && n <= 16, 'an integer from 1 to 16', 3),
    lengthPenalty: num(json, 'length_penalty', configPath, (n) => n >= 0 && n <= 5, 'a number from 0 to 5', 1),
    hiddenSize: num(json, 'hidden_size', configPath, isPositiveInt, 'a positive integer'),
    numLayers: num(json, 'num_layers', configPath, isPositiveInt, 'a positive integer'),
  };
  const generalPurpose = json.general_purpose ?? false;
  if (typeof generalPurpose !== 'boolean') {
    throw invalid(configPath, `Expected \`general_purpose\` in ${configPath} to be true or false, got ${describe(generalPurpose)}`);
  }
  const domainPath = join(dir, 'domain.json');
  return {
    dir,
    name: typeof json.name === 'string' ? json.name : basename(dir),
    config,
    vocab: words,
    encoderPath: requireFile(join(dir, encoderFile)),
    decoderPath: requireFile(join(dir, 'decoder_step.onnx')),
    generalPurpose,
    ...(existsSync(domainPath) ? { domainPath } : {}),
  };
}

// ---- safety checker -----------------------------------------------------------------------------------------

export interface SafetyCheckerFolder {
  /** safety_checker/model.onnx: `clip_input` [N, 3, H, W] and `images` [N, H, W, 3] in, `has_nsfw_concepts` [N] out. */
  modelPath: string;
  /** feature_extractor/preprocessor_config.json, read into `preprocessing`. */
  preprocessorPath: string;
  preprocessing: ClipPreprocessing;
}

/** transformers' OPENAI_CLIP_MEAN and OPENAI_CLIP_STD. */
const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** PIL's resample codes as transformers writes them: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic. */
const PIL_RESAMPLE: Record<number, ResizeKernel> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

/**
 * The optional safety checker of a diffusers folder: `safety_checker/model.onnx`, which needs
 * `feature_extractor/preprocessor_config.json` (a CLIPImageProcessor or the older CLIPFeatureExtractor config).
 * Undefined when the folder has no `safety_checker/`.
 */
export function readSafetyChecker(dir: string): SafetyCheckerFolder | undefined {
  const checkerDir = join(dir, 'safety_checker');
  if (!existsSync(checkerDir)) return undefined;
  const modelPath = requireFile(join(checkerDir, 'model.onnx'));
  const preprocessorPath = join(dir, 'feature_extractor', 'preprocessor_config.json');
  if (!existsSync(preprocessorPath)) {
    throw invalid(preprocessorPath, `Expected ${preprocessorPath} beside safety_checker/: the checker needs its CLIP preprocessing, found none`);
  }
  const json = readJson(preprocessorPath);
  const flag = (key: string): boolean => {
    const value = json[key] ?? true;
    if (typeof value !== 'boolean') throw invalid(preprocessorPath, `Expected \`${key}\` in ${preprocessorPath} to be true or false, got ${describe(value)}`);
    return value;
  };
  // `size`: an integer (CLIPFeatureExtractor) or {"shortest_edge": n} (CLIPImageProcessor)
  const edge = (key: string): number => {
    const value = json[key];
    const n = typeof value === 'number' ? value
      : value && typeof value === 'object' && typeof (value as Json).shortest_edge === 'number' ? (value as Json).shortest_edge as number : undefined;
    if (n === undefined || !isPositiveInt(n)) {
      throw invalid(preprocessorPath, `Expected \`${key}\` in ${preprocessorPath} to be a positive integer or {"shortest_edge": n}, got ${describe(JSON.stringify(value))}`);
    }
    return n;
  };
  // `crop_size`: an integer or {"height": h, "width": w}
  const box = (key: string): [number, number] => {
    const value = json[key];
    if (typeof value === 'number' && isPositiveInt(value)) return [value, value];
    const hw = value && typeof value === 'object' ? value as Json : {};
    if (typeof hw.height !== 'number' || typeof hw.width !== 'number' || !isPositiveInt(hw.height) || !isPositiveInt(hw.width)) {
      throw invalid(preprocessorPath, `Expected \`${key}\` in ${preprocessorPath} to be a positive integer or {"height": h, "width": w}, got ${describe(JSON.stringify(value))}`);
    }
    return [hw.height, hw.width];
  };
  const resample = json.resample ?? 3;
  const kernel = typeof resample === 'number' ? PIL_RESAMPLE[resample] : undefined;
  if (!kernel) {
    throw invalid(preprocessorPath, `Expected \`resample\` in ${preprocessorPath} to be 0, 1, 2 or 3 (PIL nearest, lanczos, bilinear, bicubic), got ${describe(resample)}`);
  }
  const normalize = flag('do_normalize');
  const preprocessing: ClipPreprocessing = {
    ...(flag('do_resize') ? { shortestEdge: edge('size') } : {}),
    ...(flag('do_center_crop') ? { crop: box('crop_size') } : {}),
    kernel,
    rescale: flag('do_rescale') ? num(json, 'rescale_factor', preprocessorPath, (n) => n > 0, 'a positive number', 1 / 255) : 1,
    // CLIPImageProcessor's defaults are OpenAI CLIP's mean and std
    mean: !normalize ? [0, 0, 0] : json.image_mean === undefined ? CLIP_MEAN : triple(json, 'image_mean', preprocessorPath, false),
    std: !normalize ? [1, 1, 1] : json.image_std === undefined ? CLIP_STD : triple(json, 'image_std', preprocessorPath, true),
  };
  if (preprocessing.crop && preprocessing.shortestEdge !== undefined && Math.max(...preprocessing.crop) > preprocessing.shortestEdge) {
    throw invalid(preprocessorPath,
      `Expected \`crop_size\` in ${preprocessorPath} to fit inside the resized image (shortest edge ${preprocessing.shortestEdge}), got ${preprocessing.crop.join('x')}`);
  }
  return { modelPath, preprocessorPath, preprocessing };
}

// ---- hashing ---------------------------------------------------------------------------------------------------

/** Files that define a model: graphs, their external weights, configs and tokenizer files. */
const HASHED = /\.(onnx|onnx_data|json|txt|pb)$/;

function listModelFiles(dir: string, prefix = ''): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...listModelFiles(dir, rel));
    else if (entry.isFile() && HASHED.test(entry.name)) files.push(rel);
  }
  return files;
}

const hashes = new Map<string, Promise<string>>();

/**
 * sha256 over the model's files (relative path, then contents, in path order), streamed so multi-GB external
 * weights do not sit in memory; computed once per folder and process.
 */
export function hashModelFolder(dirIn: string): Promise<string> {
  const dir = resolve(dirIn);
  let hash = hashes.get(dir);
  if (!hash) {
    hash = (async () => {
      const digest = createHash('sha256');
      for (const rel of listModelFiles(dir)) {
        digest.update(`${rel}\0`);
        for await (const chunk of createReadStream(join(dir, rel))) digest.update(chunk as Buffer);
        digest.update('\0');
      }
      return digest.digest('hex');
    })();
    hashes.set(dir, hash);
    hash.catch(() => hashes.delete(dir));
  }
  return hash;
}
