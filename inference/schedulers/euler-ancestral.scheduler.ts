/**
 * Euler ancestral (k-diffusion's sample_euler_ancestral) on the discrete SD sigmas; timesteps are fractional.
 * @see diffusers/schedulers/scheduling_euler_ancestral_discrete.py (set_timesteps, scale_model_input, step)
 */
import { PictalkError } from '../../common/errors.js';
import type { NoiseSource, ResolvedSchedulerConfig, Scheduler, StepResult } from './scheduler.js';
import {
  alphasCumprod, arangeDown, checkStepCount, indexForTimestep, interpOnIndex, linspace, mixNoise, roundHalfEven, trainingSigmas,
} from './scheduler.config.js';

export class EulerAncestralScheduler implements Scheduler {
  readonly name = 'euler-a' as const;
  readonly className = 'EulerAncestralDiscreteScheduler';
  timesteps: number[] = [];
  sigmas: number[] = [];
  private readonly trainSigmas: Float64Array;
  private stepIndex: number | null = null;
  private noiseBuffer: Float32Array | null = null;

  constructor(readonly config: Readonly<ResolvedSchedulerConfig>) {
    if (config.predictionType === 'sample') {
      throw new PictalkError('model.invalid', 'EulerAncestralDiscreteScheduler supports prediction_type epsilon or v_prediction, got `sample`');
    }
    this.trainSigmas = trainingSigmas(alphasCumprod(config));
    // Before setTimesteps, diffusers' sigmas are the training ones, highest first.
    this.sigmas = [...this.trainSigmas].reverse().concat(0);
    this.updateInitNoiseSigma();
  }

  /** sigma_max for linspace/trailing spacing, sqrt(sigma_max^2 + 1) for leading (diffusers' property). */
  initNoiseSigma = 1;

  private updateInitNoiseSigma(): void {
    const max = this.sigmas.reduce((a, b) => Math.max(a, b), 0);
    this.initNoiseSigma = this.config.timestepSpacing === 'leading' ? Math.sqrt(max * max + 1) : max;
  }

  setTimesteps(steps: number): void {
    checkStepCount(steps, this.config);
    const n = this.config.numTrainTimesteps;
    let timesteps: number[];
    if (this.config.timestepSpacing === 'linspace') {
      timesteps = linspace(0, n - 1, steps).map(Math.fround).reverse();
    } else if (this.config.timestepSpacing === 'leading') {
      const ratio = Math.floor(n / steps);
      timesteps = Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + this.config.stepsOffset);
    } else {
      timesteps = arangeDown(n, n / steps).map((t) => roundHalfEven(t) - 1);
    }
    this.timesteps = timesteps;
    this.sigmas = timesteps.map((t) => Math.fround(interpOnIndex(t, this.trainSigmas))).concat(0);
    this.updateInitNoiseSigma();
    this.stepIndex = null;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    if (this.stepIndex === null) this.stepIndex = indexForTimestep(this.timesteps, timestep, this.className);
    const sigma = this.sigmas[this.stepIndex]!;
    const scale = 1 / Math.sqrt(sigma * sigma + 1);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) out[i] = sample[i]! * scale;
    return out;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: NoiseSource): StepResult {
    if (this.timesteps.length === 0) throw new PictalkError('inference.failed', 'EulerAncestralDiscreteScheduler.step called before setTimesteps');
    if (!noise) throw new PictalkError('inference.failed', 'EulerAncestralDiscreteScheduler.step needs a noise source');
    if (this.stepIndex === null) this.stepIndex = indexForTimestep(this.timesteps, timestep, this.className);
    const sigma = this.sigmas[this.stepIndex]!;
    const sigmaTo = this.sigmas[this.stepIndex + 1]!;
    const sigmaUp = Math.sqrt((sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo)) / (sigma * sigma));
    const sigmaDown = Math.sqrt(sigmaTo * sigmaTo - sigmaUp * sigmaUp);
    const dt = sigmaDown - sigma;
    const vScale = -sigma / Math.sqrt(sigma * sigma + 1);
    const vSample = 1 / (sigma * sigma + 1);

    if (this.noiseBuffer?.length !== sample.length) this.noiseBuffer = new Float32Array(sample.length);
    const z = noise.fill(this.noiseBuffer);
    const predOriginal = new Float32Array(sample.length);
    const prevSample = new Float32Array(sample.length);
    const epsilon = this.config.predictionType === 'epsilon';
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const x0 = epsilon ? x - sigma * modelOutput[i]! : modelOutput[i]! * vScale + x * vSample;
      predOriginal[i] = x0;
      const derivative = (x - x0) / sigma;
      prevSample[i] = x + derivative * dt + z[i]! * sigmaUp;
    }
    this.stepIndex += 1;
    return { prevSample, predOriginal };
  }

  /** x0 + sigma_t * noise, sigma_t of the timestep's place in the schedule (diffusers' begin_index there). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array<ArrayBuffer> {
    const sigma = this.sigmas[indexForTimestep(this.timesteps, timestep, this.className)]!;
    return mixNoise(original, noise, 1, sigma);
  }
}
