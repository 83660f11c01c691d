/**
 * The inference core's own words. Adapters and bot/ speak these; nothing here knows a platform.
 */

export type SchedulerName = 'pndm' | 'ddim' | 'euler-a' | 'dpmpp-2m' | 'lcm';
export const SCHEDULER_NAMES: readonly SchedulerName[] = ['pndm', 'ddim', 'euler-a', 'dpmpp-2m', 'lcm'];

/** One text-to-image request; every field but the prompt has a default from the model folder or the pipeline. */
export interface ImagineRequest {
  prompt: string;
  negativePrompt?: string;
  seed?: number;             // 0 .. 2^32-1; drawn at random when absent
  steps?: number;            // 1 .. 100
  guidance?: number;         // 0 .. 30; <= 1 turns classifier-free guidance off
  width?: number;            // multiple of the latent factor (8 for Stable Diffusion)
  height?: number;
  scheduler?: SchedulerName;
  count?: number;            // images per request, 1 .. 4
  /** Candidates drawn per image, the one the captioner ranks first kept (1 .. 4; default: the model folder's). */
  candidates?: number;
  /** Initial latents, float32 [1, C, H/f, W/f], for parity checks against other implementations. */
  latents?: Float32Array;
  /** Integer upscale factor applied to the decoded PNG (the builtin model draws 64x64). */
  upscale?: number;
}

export interface ImagineSettings {
  prompt: string;
  negativePrompt: string;
  seed: number;
  steps: number;
  guidance: number;
  width: number;
  height: number;
  scheduler: SchedulerName;
  count: number;
  candidates: number;
}

export interface GeneratedImage {
  png: Buffer;
  /** The seed that reproduces this one image with count 1 and the same candidates: seed + index x candidates. */
  seed: number;
  width: number;             // of the PNG, after upscaling
  height: number;
  /**
   * With candidates > 1: how well the kept picture fits the prompt (the captioner's mean log-probability per word),
   * which candidate (0-based) was kept, and the seed that draws it alone with candidates 1.
   */
  ranking?: { fit: number; candidates: number; kept: number; keptSeed: number };
}

export interface ImagineResult {
  kind: 'imagine';
  images: GeneratedImage[];
  settings: ImagineSettings;
  model: { name: string; hash: string };
  timingsMs: Record<string, number>;
}

export interface CaptionRequest {
  image: Buffer;             // PNG, JPEG, WebP or GIF (first frame)
  beam?: number;             // 1 = greedy
  lengthPenalty?: number;
  maxLength?: number;
}

export interface CaptionResult {
  kind: 'caption';
  caption: string;           // post-processed: capital letter, full stop
  tokens: string[];          // the raw words
  score: number;             // mean log-probability per token (higher is better), length-penalised for beams
  timingsMs: Record<string, number>;
}

export interface SpeakRequest {
  text: string;
  voice?: string;
}

export interface SpeechResult {
  kind: 'speak';
  ogg: Buffer;               // Ogg Opus, 48 kHz mono
  durationSecs: number;
  waveform: Uint8Array;      // 256 values 0..255, what a Discord voice message shows
  timingsMs: Record<string, number>;
}

export type JobKind = 'imagine' | 'caption' | 'speak';

export type JobInput =
  | { kind: 'imagine'; request: ImagineRequest }
  | { kind: 'caption'; request: CaptionRequest }
  | { kind: 'speak'; request: SpeakRequest };

export type JobResult = ImagineResult | CaptionResult | SpeechResult;
export type ResultOf<K extends JobKind> = Extract<JobResult, { kind: K }>;

/** Progress inside one job: `step` of `total` in a named stage (`denoise`, `decode`, `encode`, ...). */
export interface Progress {
  stage: string;
  step: number;
  total: number;
}

/** Options every pipeline call takes. */
export interface RunOptions {
  signal?: AbortSignal;                      // checked between steps; aborts with `job.cancelled`
  onProgress?: (progress: Progress) => void;
}

/** A caption batch's options: `onCaption` hears each image's result (by its index in the batch) as soon as that
 * image's search ends, before the batch's slowest caption. */
export interface CaptionRunOptions extends RunOptions {
  onCaption?: (index: number, result: CaptionResult) => void;
}

/** Who asked: fairness is across users and across spaces (a Discord guild, a Slack workspace, the terminal). */
export interface JobOwner {
  userId: string;
  spaceId: string;
}
