/**
 * DPM-Solver++ 2M: DPMSolverMultistepScheduler with algorithm_type dpmsolver++, solver_order 2 (midpoint or heun),
 * lower_order_final, final sigma zero. Data prediction (x0) is what the solver keeps between steps.
 * @see diffusers/schedulers/scheduling_dpmsolver_multistep.py (set_timesteps, convert_model_output,
 *   dpm_solver_first_order_update, multistep_dpm_solver_second_order_update, step)
 */
import { PictalkError } from '../../common/errors.js';
import type { ResolvedSchedulerConfig, Scheduler, StepResult } from './scheduler.js';
import {
  alphasCumprod, arangeDown, checkStepCount, indexForTimestep, interpOnIndex, linspace, mixNoise, roundHalfEven, trainingSigmas,
} from './scheduler.config.js';

export class DpmSolverPlusPlus2MScheduler implements Scheduler {
  readonly name = 'dpmpp-2m' as const;
  readonly className = 'DPMSolverMultistepScheduler';
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  sigmas: number[] = [];
  private readonly trainSigmas: Float64Array;
  private stepIndex: number | null = null;
  private lowerOrderNums = 0;
  private previousX0: Float32Array | null = null;   // m1: the data prediction of the previous step
  private currentX0: Float32Array | null = null;    // m0, swapped with previousX0 each step (no allocation)

  constructor(readonly config: Readonly<ResolvedSchedulerConfig>, private readonly solverType: 'midpoint' | 'heun' = 'midpoint') {
    this.trainSigmas = trainingSigmas(alphasCumprod(config));
  }

  setTimesteps(steps: number): void {
    checkStepCount(steps, this.config);
    // lambda_min_clipped is -inf (the only value pictalk accepts), so the last timestep is num_train_timesteps.
    const n = this.config.numTrainTimesteps;
    let timesteps: number[];
    if (this.config.timestepSpacing === 'linspace') {
      timesteps = linspace(0, n - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
    } else if (this.config.timestepSpacing === 'leading') {
      const ratio = Math.floor(n / (steps + 1));
      timesteps = Array.from({ length: steps + 1 }, (_, i) => (steps - i) * ratio).slice(0, -1).map((t) => t + this.config.stepsOffset);
    } else {
      timesteps = arangeDown(n, n / steps).map((t) => roundHalfEven(t) - 1);
    }
    this.timesteps = timesteps;
    this.sigmas = timesteps.map((t) => Math.fround(interpOnIndex(t, this.trainSigmas))).concat(0);
    this.stepIndex = null;
    this.lowerOrderNums = 0;
    this.previousX0 = null;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    if (this.timesteps.length === 0) throw new PictalkError('inference.failed', 'DPMSolverMultistepScheduler.step called before setTimesteps');
    if (this.stepIndex === null) {
      // diffusers: the (second) match, or the last step when the timestep is not in the schedule
      const first = this.timesteps.indexOf(timestep);
      const second = first >= 0 ? this.timesteps.indexOf(timestep, first + 1) : -1;
      this.stepIndex = first < 0 ? this.timesteps.length - 1 : second >= 0 ? second : first;
    }
    const index = this.stepIndex;
    const count = this.timesteps.length;
    // final_sigmas_type "zero" always makes the last step first order; with order 2 at most, diffusers'
    // lower_order_second case is second order anyway.
    const lowerOrderFinal = index === count - 1;

    // convert_model_output: the data prediction x0 at sigma_s0
    const { alpha: alphaS0, sigma: sigmaS0 } = alphaSigma(this.sigmas[index]!);
    if (this.currentX0?.length !== sample.length) this.currentX0 = new Float32Array(sample.length);
    const m0 = this.currentX0;
    const kind = this.config.predictionType;
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      m0[i] = kind === 'epsilon' ? (x - sigmaS0 * m) / alphaS0 : kind === 'sample' ? m : alphaS0 * x - sigmaS0 * m;
    }

    const { alpha: alphaT, sigma: sigmaT } = alphaSigma(this.sigmas[index + 1]!);
    const lambdaT = Math.log(alphaT) - Math.log(sigmaT);   // +inf at the final sigma 0: exp(-h) is then 0
    const lambdaS0 = Math.log(alphaS0) - Math.log(sigmaS0);
    const h = lambdaT - lambdaS0;
    const ratio = sigmaT / sigmaS0;
    const phi = alphaT * (Math.exp(-h) - 1);
    const prevSample = new Float32Array(sample.length);
    const m1 = this.previousX0;
    if (this.lowerOrderNums < 1 || lowerOrderFinal || !m1) {
      for (let i = 0; i < sample.length; i++) prevSample[i] = ratio * sample[i]! - phi * m0[i]!;
    } else {
      const { alpha: alphaS1, sigma: sigmaS1 } = alphaSigma(this.sigmas[index - 1]!);
      const lambdaS1 = Math.log(alphaS1) - Math.log(sigmaS1);
      const r0 = (lambdaS0 - lambdaS1) / h;
      // D1 = (m0 - m1) / r0; midpoint: - 0.5 * phi * D1; heun: + alpha_t * ((exp(-h) - 1) / h + 1) * D1
      const d1Coeff = this.solverType === 'midpoint' ? -0.5 * phi / r0 : (alphaT * ((Math.exp(-h) - 1) / h + 1)) / r0;
      for (let i = 0; i < sample.length; i++) {
        prevSample[i] = ratio * sample[i]! - phi * m0[i]! + d1Coeff * (m0[i]! - m1[i]!);
      }
    }
    if (this.lowerOrderNums < 2) this.lowerOrderNums += 1;
    // m0 becomes m1; the old m1 buffer is reused for the next m0
    this.currentX0 = this.previousX0;
    this.previousX0 = m0;
    this.stepIndex += 1;
    return { prevSample };
  }

  /** alpha_t * x0 + sigma_t * noise from the timestep's sigma, as diffusers' add_noise for this class. */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array<ArrayBuffer> {
    const { alpha, sigma } = alphaSigma(this.sigmas[indexForTimestep(this.timesteps, timestep, this.className)]!);
    return mixNoise(original, noise, alpha, sigma);
  }
}

/** diffusers' _sigma_to_alpha_sigma_t for variance-preserving schedules. */
function alphaSigma(sigma: number): { alpha: number; sigma: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { alpha, sigma: sigma * alpha };
}
