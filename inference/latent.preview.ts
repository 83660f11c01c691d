/**
 * Live previews: a small picture of a job's latents while it denoises, made without the VAE by a fixed linear map of
 * the latent channels to RGB (the cheap approximation A1111's "Approx cheap" and ComfyUI's latent2rgb previewer use).
 *
 * The map works on the latents as the sampler holds them (scaled by the VAE's scaling factor) and gives RGB in
 * [-1, 1]: rgb = z · factors + bias, then (rgb + 1) / 2 clamped to [0, 1]. A model folder names its own map in
 * pictalk.json (`latent_preview`: `rgb_factors`, C rows of three, `rgb_bias`, three, and its `source`); the builtin
 * model's map is fitted to its VAE by models/train/fit_latent_preview.ts. A Stable Diffusion 1.x or 2.x export (four
 * latent channels, scaling factor 0.18215, the VAE both share) gets the published SD 1.5 factors.
 */
import { encodeEnlargedPng } from './image.codec.js';
import type { PreviewImage } from './types.js';

export interface LatentPreviewMap {
  /** One row of [r, g, b] weights per latent channel. */
  factors: ReadonlyArray<readonly [number, number, number]>;
  bias: readonly [number, number, number];
  /** Where the numbers come from. */
  source: string;
}

/**
 * SD 1.x and 2.x share one VAE: ComfyUI's latent2rgb factors for it, on the scaled latents, no bias.
 * @see https://github.com/comfyanonymous/ComfyUI/blob/master/comfy/latent_formats.py (class SD15)
 */
export const SD_LATENT_PREVIEW: LatentPreviewMap = {
  factors: [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
  ],
  bias: [0, 0, 0],
  source: 'ComfyUI comfy/latent_formats.py, class SD15 (SD 1.x and 2.x share the VAE)',
};

/** The scaling factor of the VAE SD 1.x and 2.x share. */
const SD_SCALING_FACTOR = 0.18215;

/** The long side of a preview picture, at least: small latents are enlarged (nearest) to about this. */
export const PREVIEW_SIDE = 128;

/** The map for a model folder: its own from pictalk.json, the SD one for an SD 1.x/2.x VAE, or none. */
export function previewMapFor(folder: { latentChannels: number; scalingFactor: number; latentPreview?: LatentPreviewMap }): LatentPreviewMap | undefined {
  if (folder.latentPreview) return folder.latentPreview;
  if (folder.latentChannels === 4 && Math.abs(folder.scalingFactor - SD_SCALING_FACTOR) < 1e-6) return SD_LATENT_PREVIEW;
  return undefined;
}

/**
 * Latents of one picture [C, h, w] (from `offset` in `latents`) to pixels [3, h, w] in [-1, 1], the layout the PNG
 * encoder takes.
 */
export function latentsToPixels(map: LatentPreviewMap, latents: Float32Array, channels: number, h: number, w: number, offset = 0): Float32Array {
  if (map.factors.length !== channels) {
    throw new RangeError(`Expected a preview map with ${channels} rows (one per latent channel), got ${map.factors.length}`);
  }
  const area = h * w;
  const out = new Float32Array(3 * area);
  for (let rgb = 0; rgb < 3; rgb += 1) {
    const row = out.subarray(rgb * area, (rgb + 1) * area);
    row.fill(map.bias[rgb]!);
    for (let c = 0; c < channels; c += 1) {
      const weight = map.factors[c]![rgb]!;
      if (weight === 0) continue;
      const plane = offset + c * area;
      for (let i = 0; i < area; i += 1) row[i]! += weight * latents[plane + i]!;
    }
  }
  return out;
}

/** The PNG of preview pixels [3, h, w] in [-1, 1] (from `latentsToPixels`), enlarged (nearest) to about PREVIEW_SIDE. */
export function encodePreview(pixels: Float32Array, h: number, w: number): PreviewImage {
  const upscale = Math.min(8, Math.max(1, Math.round(PREVIEW_SIDE / Math.max(h, w))));
  return { png: encodeEnlargedPng(pixels, w, h, upscale), width: w * upscale, height: h * upscale };
}

export interface PreviewPolicy {
  /** No preview before the job has run this long (default 2000 ms): a job that finishes sooner shows none. */
  afterMs: number;
  /** At most one preview every this many denoising steps (default: a fifth of the steps, at least one). */
  everySteps?: number;
}

export const DEFAULT_PREVIEW_AFTER_MS = 2000;

/** When a job's next preview is due. */
export class PreviewSchedule {
  private readonly every: number;
  private last = Number.NEGATIVE_INFINITY;

  constructor(private readonly policy: PreviewPolicy, private readonly startedAt: number, private readonly total: number) {
    this.every = policy.everySteps ?? Math.max(1, Math.round(total / 5));
  }

  /** Whether step `step` (1-based) should carry a preview at time `now` (never the last step). */
  due(step: number, now: number): boolean {
    if (step >= this.total || now - this.startedAt < this.policy.afterMs || step - this.last < this.every) return false;
    this.last = step;
    return true;
  }
}
