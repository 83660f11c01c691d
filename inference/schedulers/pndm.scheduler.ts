/**
 * PNDM with skip_prk_steps: the pseudo linear multistep (PLMS) part only, as Stable Diffusion 1.x configs name it.
 * @see diffusers/schedulers/scheduling_pndm.py (set_timesteps, step_plms, _get_prev_sample)
 */
import { PictalkError } from '../../common/errors.js';
import type { ResolvedSchedulerConfig, Scheduler, StepResult } from './scheduler.js';
import { addNoiseAtTimestep, alphasCumprod, arangeDown, checkStepCount, linspace, roundHalfEven } from './scheduler.config.js';

export class PndmScheduler implements Scheduler {
  readonly name = 'pndm' as const;
  readonly className = 'PNDMScheduler';
  readonly initNoiseSigma = 1;
  readonly sigmas: readonly number[] = [];
  timesteps: number[] = [];
  private readonly alphas: Float64Array;
  private readonly finalAlpha: number;
  private stepCount = 0;
  private counter = 0;
  private ets: Float32Array[] = [];        // the last (up to) four model outputs, oldest first
  private curSample: Float32Array | null = null;

  constructor(readonly config: Readonly<ResolvedSchedulerConfig>) {
    if (config.predictionType === 'sample') {
      throw new PictalkError('model.invalid', 'PNDMScheduler supports prediction_type epsilon or v_prediction, got `sample`');
    }
    this.alphas = alphasCumprod(config);
    this.finalAlpha = config.setAlphaToOne ? 1 : this.alphas[0]!;
  }

  setTimesteps(steps: number): void {
    checkStepCount(steps, this.config);
    const n = this.config.numTrainTimesteps;
    let base: number[];
    if (this.config.timestepSpacing === 'linspace') {
      base = linspace(0, n - 1, steps).map(roundHalfEven);
    } else if (this.config.timestepSpacing === 'leading') {
      const ratio = Math.floor(n / steps);
      base = Array.from({ length: steps }, (_, i) => i * ratio + this.config.stepsOffset);
    } else {
      const ratio = n / steps;
      base = arangeDown(n, ratio).map(roundHalfEven).reverse().map((t) => t - 1);
    }
    // [t0 .. t_{n-2}, t_{n-2}, t_{n-1}] reversed: the second-highest timestep repeats (PLMS warm-up).
    const plms = [...base.slice(0, -1), ...base.slice(-2, -1), ...base.slice(-1)].reverse();
    this.timesteps = plms;
    this.stepCount = steps;
    this.counter = 0;
    this.ets = [];
    this.curSample = null;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    if (this.stepCount === 0) throw new PictalkError('inference.failed', 'PNDMScheduler.step called before setTimesteps');
    const ratio = Math.floor(this.config.numTrainTimesteps / this.stepCount);
    let prevTimestep = timestep - ratio;
    if (this.counter !== 1) {
      // keep the last three plus the new one; copy, as the caller may reuse its buffer
      const reuse = this.ets.length === 4 ? this.ets.shift()! : new Float32Array(modelOutput.length);
      reuse.set(modelOutput);
      this.ets.push(reuse);
    } else {
      prevTimestep = timestep;
      timestep += ratio;
    }

    const e = this.ets;
    const k = e.length;
    const out = new Float32Array(sample.length);
    let x = sample;
    if (k === 1 && this.counter === 0) {
      out.set(modelOutput);
      this.curSample = Float32Array.from(sample);
    } else if (k === 1 && this.counter === 1) {
      const last = e[0]!;
      for (let i = 0; i < out.length; i++) out[i] = (modelOutput[i]! + last[i]!) / 2;
      x = this.curSample!;
      this.curSample = null;
    } else if (k === 2) {
      const [a, b] = [e[1]!, e[0]!];
      for (let i = 0; i < out.length; i++) out[i] = (3 * a[i]! - b[i]!) / 2;
    } else if (k === 3) {
      const [a, b, c] = [e[2]!, e[1]!, e[0]!];
      for (let i = 0; i < out.length; i++) out[i] = (23 * a[i]! - 16 * b[i]! + 5 * c[i]!) / 12;
    } else {
      const [a, b, c, d] = [e[3]!, e[2]!, e[1]!, e[0]!];
      for (let i = 0; i < out.length; i++) out[i] = (55 * a[i]! - 59 * b[i]! + 37 * c[i]! - 9 * d[i]!) / 24;
    }
    this.prevSample(x, timestep, prevTimestep, out);
    this.counter += 1;
    return { prevSample: out };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array<ArrayBuffer> {
    return addNoiseAtTimestep(this.alphas, original, noise, timestep, this.className);
  }

  /** Formula (9) of the PNDM paper, written into `eps` (which holds the combined model output). */
  private prevSample(sample: Float32Array, timestep: number, prevTimestep: number, eps: Float32Array): void {
    const alphaT = this.alphas[timestep]!;
    const alphaPrev = prevTimestep >= 0 ? this.alphas[prevTimestep]! : this.finalAlpha;
    const betaT = 1 - alphaT;
    const betaPrev = 1 - alphaPrev;
    const sampleCoeff = Math.sqrt(alphaPrev / alphaT);
    const denom = alphaT * Math.sqrt(betaPrev) + Math.sqrt(alphaT * betaT * alphaPrev);
    const epsCoeff = (alphaPrev - alphaT) / denom;
    if (this.config.predictionType === 'v_prediction') {
      const a = Math.sqrt(alphaT);
      const b = Math.sqrt(betaT);
      for (let i = 0; i < eps.length; i++) eps[i] = sampleCoeff * sample[i]! - epsCoeff * (a * eps[i]! + b * sample[i]!);
    } else {
      for (let i = 0; i < eps.length; i++) eps[i] = sampleCoeff * sample[i]! - epsCoeff * eps[i]!;
    }
  }
}
