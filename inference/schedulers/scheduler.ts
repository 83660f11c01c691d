/**
 * The scheduler port: what the text-to-image pipeline calls once per denoising step.
 * Implementations follow diffusers' definitions exactly (PNDM/PLMS, DDIM, Euler ancestral, DPM-Solver++ 2M, LCM),
 * so a folder's `scheduler/scheduler_config.json` gives the same timesteps and samples as the Python pipeline.
 *
 * Tensors are flat float32 arrays in C order (latents `[B, C, h, w]`); every op is element-wise,
 * so the scheduler never needs the shape.
 */
import type { SchedulerName } from '../types.js';

/** Fills `out` with independent standard normal draws; the seeded generator in `noise.ts` is one. */
export interface NoiseSource {
  fill(out: Float32Array): Float32Array;
}

export interface StepResult {
  /** x_{t-1}: a new array owned by the caller (the inputs are never mutated). */
  prevSample: Float32Array<ArrayBuffer>;
  /** The predicted clean sample x_0 (DDIM, Euler ancestral; LCM's `denoised`), where the class computes one. */
  predOriginal?: Float32Array<ArrayBuffer>;
}

export interface Scheduler {
  /** pictalk's name for the algorithm. */
  readonly name: SchedulerName;
  /** The diffusers class it implements (`EulerAncestralDiscreteScheduler`, ...). */
  readonly className: string;
  /** The resolved config: the folder's values with this class's defaults where the folder is silent. */
  readonly config: Readonly<ResolvedSchedulerConfig>;
  /**
   * The timesteps to run, in order, after `setTimesteps`; one UNet call and one `step` per entry.
   * PNDM repeats one (901, 801, 801, 701, ...), as diffusers does. Euler's are fractional: cast to the UNet's
   * timestep dtype (int64: truncate, as NumPy's astype does; float32: as is).
   */
  readonly timesteps: readonly number[];
  /** Multiply the unit-variance starting noise by this (Euler ancestral: sigma_max; others 1). */
  readonly initNoiseSigma: number;
  /** Sigmas (length timesteps + 1, ending in 0) for the classes that have them; empty otherwise. */
  readonly sigmas: readonly number[];

  /** Prepare `numInferenceSteps` steps (an integer from 1 to num_train_timesteps) and reset the multistep state. */
  setTimesteps(numInferenceSteps: number): void;
  /**
   * The UNet input for `sample` at `timestep`. Identity for every class but Euler ancestral (divides by
   * sqrt(sigma^2 + 1)); may return `sample` itself, so treat the result as read-only.
   */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /**
   * One denoising step from the UNet's (guided) output at `timestep`, which must be the next entry of `timesteps`.
   * `noise` is required by Euler ancestral and LCM (except on LCM's last step) and by DDIM with eta > 0.
   */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: NoiseSource): StepResult;
  /**
   * diffusers' `add_noise`, which image-to-image uses to start mid-schedule: the clean latents `original` taken to
   * the noise level of `timestep` (an entry of `timesteps`) with unit-variance `noise`; a new array.
   * DDPM-family classes: sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise; Euler: x0 + sigma_t * noise.
   */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array<ArrayBuffer>;
}

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

/** The config keys pictalk's schedulers read, every one resolved (see `scheduler.config.ts`). */
export interface ResolvedSchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  trainedBetas: number[] | null;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
  setAlphaToOne: boolean;
  predictionType: PredictionType;
  clipSample: boolean;
  clipSampleRange: number;
  /** DDIM only: the eta of its step (0: deterministic). Not a diffusers config key; diffusers passes it to step(). */
  eta: number;
  /** LCM only. */
  originalInferenceSteps: number;
  timestepScaling: number;
  /** DPM-Solver++ only. */
  lowerOrderFinal: boolean;
}
