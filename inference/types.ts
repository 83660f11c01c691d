/**
 * The inference core's own words. Adapters and bot/ speak these; nothing here knows a platform.
 */

export type SchedulerName = 'pndm' | 'ddim' | 'euler-a' | 'dpmpp-2m' | 'lcm';
export const SCHEDULER_NAMES: readonly SchedulerName[] = ['pndm', 'ddim', 'euler-a', 'dpmpp-2m', 'lcm'];

/** One text-to-image request; every field but the prompt has a default from the model folder or the pipeline. */
export interface ImagineRequest {
  /** With A1111's weights, `(word:1.3)`, `(word)`, `[word]`, `BREAK` (inference/prompt.weights.ts); so is the negative. */
  prompt: string;
  negativePrompt?: string;
  seed?: number;             // 0 .. 2^32-1; drawn at random when absent
  steps?: number;            // 1 .. 100
  /** Without `steps`: the most steps the folder's default may use (a space's limit); ignored when `steps` is given. */
  maxSteps?: number;
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
  /**
   * Image-to-image: the starting picture (PNG, JPEG, WebP or GIF's first frame), stretched to width x height and
   * encoded by the folder's `vae_encoder/`; needs a folder that has one.
   */
  image?: Buffer;
  /** With `image`: how far from it to go, above 0 and at most 1 (default DEFAULT_STRENGTH); 1 ignores the picture. */
  strength?: number;
}

/**
 * Image-to-image strength when nothing else says (the request, a user's or server's setting): the one place the
 * default lives (diffusers' img2img defaults to 0.8; 0.6 keeps more of the picture).
 */
export const DEFAULT_STRENGTH = 0.6;

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
  /** Image-to-image only: the strength used. */
  strength?: number;
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
  /**
   * What the model folder's safety checker said (`has_nsfw_concepts`): true when it flagged this image. Absent when
   * the folder has no `safety_checker/`. The PNG is still here: bot/ decides whether a flagged image is withheld or
   * sent as a spoiler, and the command line never writes one.
   */
  nsfw?: boolean;
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
  /**
   * The captioner's out-of-domain check (domain.check.ts): false when the picture is unlike the ones the captioner
   * knows (a photograph or a screenshot for the builtin one), and `caption` is then only a guess. Absent (a result
   * from a worker older than the check) reads as true.
   */
  inDomain?: boolean;
  /** The check's distance over its threshold (above 1: out of domain); absent when the folder has no check. */
  domainScore?: number;
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
  /**
   * A live preview of the picture at this step (denoise only, every few steps, once the job has run a while): a small
   * PNG made from the latents without the VAE (inference/latent.preview.ts).
   */
  preview?: PreviewImage;
}

export interface PreviewImage {
  png: Buffer;
  width: number;
  height: number;
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
