/**
 * DDIM: deterministic at eta 0; eta > 0 adds `std_dev_t * noise` (eta 1 is DDPM-like).
 * `eta` is not a diffusers config key (diffusers passes it to step()); pictalk takes it from the resolved config.
 * @see diffusers/schedulers/scheduling_ddim.py (set_timesteps, step, _get_variance)
 */
import { PictalkError } from '../../common/errors.js';
import type { NoiseSource, ResolvedSchedulerConfig, Scheduler, StepResult } from './scheduler.js';
import { addNoiseAtTimestep, alphasCumprod, arangeDown, checkStepCount, linspace, roundHalfEven } from './scheduler.config.js';

export class DdimScheduler implements Scheduler {
  readonly name = 'ddim' as const;
  readonly className = 'DDIMScheduler';
  readonly initNoiseSigma = 1;
  readonly sigmas: readonly number[] = [];
  timesteps: number[] = [];
  private readonly alphas: Float64Array;
  private readonly finalAlpha: number;
  private stepCount = 0;
  private noiseBuffer: Float32Array | null = null;

  constructor(readonly config: Readonly<ResolvedSchedulerConfig>) {
    this.alphas = alphasCumprod(config);
    this.finalAlpha = config.setAlphaToOne ? 1 : this.alphas[0]!;
  }

  setTimesteps(steps: number): void {
    checkStepCount(steps, this.config);
    const n = this.config.numTrainTimesteps;
    if (this.config.timestepSpacing === 'linspace') {
      this.timesteps = linspace(0, n - 1, steps).map(roundHalfEven).reverse();
    } else if (this.config.timestepSpacing === 'leading') {
      const ratio = Math.floor(n / steps);
      this.timesteps = Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + this.config.stepsOffset);
    } else {
      this.timesteps = arangeDown(n, n / steps).map((t) => roundHalfEven(t) - 1);
    }
    this.stepCount = steps;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: NoiseSource): StepResult {
    if (this.stepCount === 0) throw new PictalkError('inference.failed', 'DDIMScheduler.step called before setTimesteps');
    const { eta, predictionType } = this.config;
    if (eta > 0 && !noise) throw new PictalkError('inference.failed', 'DDIMScheduler.step with eta > 0 needs a noise source');
    const prevTimestep = timestep - Math.floor(this.config.numTrainTimesteps / this.stepCount);
    const alphaT = this.alphas[timestep]!;
    const alphaPrev = prevTimestep >= 0 ? this.alphas[prevTimestep]! : this.finalAlpha;
    const betaT = 1 - alphaT;
    const betaPrev = 1 - alphaPrev;
    const sqrtA = Math.sqrt(alphaT);
    const sqrtB = Math.sqrt(betaT);
    const variance = (betaPrev / betaT) * (1 - alphaT / alphaPrev);
    const std = eta * Math.sqrt(variance);
    const dirCoeff = Math.sqrt(1 - alphaPrev - std * std);
    const sqrtAPrev = Math.sqrt(alphaPrev);
    const clip = this.config.clipSample ? this.config.clipSampleRange : Infinity;

    const predOriginal = new Float32Array(sample.length);
    const prevSample = new Float32Array(sample.length);
    let z: Float32Array | null = null;
    if (eta > 0) {
      if (this.noiseBuffer?.length !== sample.length) this.noiseBuffer = new Float32Array(sample.length);
      z = noise!.fill(this.noiseBuffer);
    }
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      let x0: number;
      let epsilon: number;
      if (predictionType === 'epsilon') { x0 = (x - sqrtB * m) / sqrtA; epsilon = m; }
      else if (predictionType === 'sample') { x0 = m; epsilon = (x - sqrtA * x0) / sqrtB; }
      else { x0 = sqrtA * x - sqrtB * m; epsilon = sqrtA * m + sqrtB * x; }
      if (x0 > clip) x0 = clip; else if (x0 < -clip) x0 = -clip; // the config's clip_sample, as diffusers does
      predOriginal[i] = x0;
      prevSample[i] = sqrtAPrev * x0 + dirCoeff * epsilon + (z ? std * z[i]! : 0);
    }
    return { prevSample, predOriginal };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array<ArrayBuffer> {
    return addNoiseAtTimestep(this.alphas, original, noise, timestep, this.className);
  }
}
