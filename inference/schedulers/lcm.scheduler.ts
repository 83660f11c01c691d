/**
 * Latent Consistency Model multistep sampling: each step predicts the clean sample (c_skip/c_out boundary
 * condition) and re-noises it to the next timestep, except the last step, which returns `denoised`.
 * Its timesteps come from the `original_inference_steps` grid; `timestep_spacing` does not apply.
 * @see diffusers/schedulers/scheduling_lcm.py (set_timesteps, get_scalings_for_boundary_condition_discrete, step)
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { NoiseSource, ResolvedSchedulerConfig, Scheduler, StepResult } from './scheduler.js';
import { addNoiseAtTimestep, alphasCumprod, checkStepCount, indexForTimestep, linspace } from './scheduler.config.js';

const SIGMA_DATA = 0.5;

export class LcmScheduler implements Scheduler {
  readonly name = 'lcm' as const;
  readonly className = 'LCMScheduler';
  readonly initNoiseSigma = 1;
  readonly sigmas: readonly number[] = [];
  timesteps: number[] = [];
  private readonly alphas: Float64Array;
  private readonly finalAlpha: number;
  private stepIndex: number | null = null;
  private noiseBuffer: Float32Array | null = null;

  constructor(readonly config: Readonly<ResolvedSchedulerConfig>) {
    this.alphas = alphasCumprod(config);
    this.finalAlpha = config.setAlphaToOne ? 1 : this.alphas[0]!;
  }

  setTimesteps(steps: number): void {
    checkStepCount(steps, this.config);
    const original = this.config.originalInferenceSteps;
    if (steps > original) {
      throw new PictalkError('input.invalid', `Expected \`steps\` to be at most LCM's original_inference_steps (${original}), got ${describe(steps)}`);
    }
    const k = Math.floor(this.config.numTrainTimesteps / original);
    // [k-1, 2k-1, ..., original*k - 1], highest first, then `steps` of them at floor(linspace) indices
    const grid = Array.from({ length: original }, (_, i) => (original - i) * k - 1);
    this.timesteps = linspace(0, original, steps, false).map((x) => grid[Math.floor(x)]!);
    this.stepIndex = null;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: NoiseSource): StepResult {
    if (this.timesteps.length === 0) throw new PictalkError('inference.failed', 'LCMScheduler.step called before setTimesteps');
    if (this.stepIndex === null) this.stepIndex = indexForTimestep(this.timesteps, timestep, this.className);
    const last = this.stepIndex === this.timesteps.length - 1;
    if (!last && !noise) throw new PictalkError('inference.failed', 'LCMScheduler.step needs a noise source before its last step');
    const prevTimestep = last ? timestep : this.timesteps[this.stepIndex + 1]!;
    const alphaT = this.alphas[timestep]!;
    const alphaPrev = prevTimestep >= 0 ? this.alphas[prevTimestep]! : this.finalAlpha;
    const sqrtA = Math.sqrt(alphaT);
    const sqrtB = Math.sqrt(1 - alphaT);
    const scaled = timestep * this.config.timestepScaling;
    const cSkip = SIGMA_DATA ** 2 / (scaled ** 2 + SIGMA_DATA ** 2);
    const cOut = scaled / Math.sqrt(scaled ** 2 + SIGMA_DATA ** 2);
    const clip = this.config.clipSample ? this.config.clipSampleRange : Infinity;
    const kind = this.config.predictionType;

    const denoised = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      let x0 = kind === 'epsilon' ? (x - sqrtB * m) / sqrtA : kind === 'sample' ? m : sqrtA * x - sqrtB * m;
      if (x0 > clip) x0 = clip; else if (x0 < -clip) x0 = -clip;
      denoised[i] = cOut * x0 + cSkip * x;
    }
    let prevSample = denoised;
    if (!last) {
      if (this.noiseBuffer?.length !== sample.length) this.noiseBuffer = new Float32Array(sample.length);
      const z = noise!.fill(this.noiseBuffer);
      const a = Math.sqrt(alphaPrev);
      const b = Math.sqrt(1 - alphaPrev);
      prevSample = new Float32Array(sample.length);
      for (let i = 0; i < sample.length; i++) prevSample[i] = a * denoised[i]! + b * z[i]!;
    }
    this.stepIndex += 1;
    return { prevSample, predOriginal: denoised };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array<ArrayBuffer> {
    return addNoiseAtTimestep(this.alphas, original, noise, timestep, this.className);
  }
}
