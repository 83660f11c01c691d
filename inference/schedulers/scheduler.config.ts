/**
 * Config parsing and the noise schedule shared by the schedulers.
 * Follows diffusers' `from_config`: keys the folder's config has are used (whatever class wrote it), except those
 * it lists in `_use_default_values`; every other key takes the target class's own default.
 * @see diffusers/configuration_utils.py (extract_init_dict), schedulers/scheduling_*.py (defaults, betas)
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { BetaSchedule, PredictionType, ResolvedSchedulerConfig, TimestepSpacing } from './scheduler.js';

/** The diffusers class names pictalk implements, and each one's defaults where they differ from the common ones. */
export const SCHEDULER_CLASSES = {
  PNDMScheduler: { name: 'pndm', defaults: { setAlphaToOne: false, timestepSpacing: 'leading', clipSample: false } },
  DDIMScheduler: { name: 'ddim', defaults: { setAlphaToOne: true, timestepSpacing: 'leading', clipSample: true } },
  EulerAncestralDiscreteScheduler: { name: 'euler-a', defaults: { timestepSpacing: 'linspace' } },
  DPMSolverMultistepScheduler: { name: 'dpmpp-2m', defaults: { timestepSpacing: 'linspace' } },
  LCMScheduler: {
    name: 'lcm',
    defaults: { betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'scaled_linear', setAlphaToOne: true, timestepSpacing: 'leading', clipSample: false },
  },
} as const satisfies Record<string, { name: string; defaults: Partial<ResolvedSchedulerConfig> }>;
export type SchedulerClassName = keyof typeof SCHEDULER_CLASSES;

const COMMON_DEFAULTS: ResolvedSchedulerConfig = {
  numTrainTimesteps: 1000, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear', trainedBetas: null,
  timestepSpacing: 'leading', stepsOffset: 0, setAlphaToOne: false, predictionType: 'epsilon',
  clipSample: false, clipSampleRange: 1, eta: 0, originalInferenceSteps: 50, timestepScaling: 10, lowerOrderFinal: true,
};

const KEYS: Record<keyof ResolvedSchedulerConfig, string> = {
  numTrainTimesteps: 'num_train_timesteps', betaStart: 'beta_start', betaEnd: 'beta_end', betaSchedule: 'beta_schedule',
  trainedBetas: 'trained_betas', timestepSpacing: 'timestep_spacing', stepsOffset: 'steps_offset',
  setAlphaToOne: 'set_alpha_to_one', predictionType: 'prediction_type', clipSample: 'clip_sample',
  clipSampleRange: 'clip_sample_range', eta: 'eta', originalInferenceSteps: 'original_inference_steps',
  timestepScaling: 'timestep_scaling', lowerOrderFinal: 'lower_order_final',
};

// Options pictalk does not implement: a config that turns one on is refused rather than run differently.
const UNSUPPORTED: Record<string, unknown> = {
  thresholding: false, rescale_betas_zero_snr: false, use_karras_sigmas: false, use_exponential_sigmas: false,
  use_beta_sigmas: false, use_lu_lambdas: false, use_flow_sigmas: false, use_dynamic_shifting: false,
  euler_at_final: false, variance_type: null, final_sigmas_type: 'zero', lambda_min_clipped: '-inf',
};

/**
 * Resolve a raw `scheduler_config.json` object for `className`. `overrides` (snake_case keys, like diffusers'
 * from_config kwargs) win over the file. Throws `model.invalid` naming `source` for a malformed value.
 */
export function resolveSchedulerConfig(
  raw: unknown, className: SchedulerClassName, source = 'scheduler_config.json', overrides: Record<string, unknown> = {},
): ResolvedSchedulerConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PictalkError('model.invalid', `Expected ${source} to hold a JSON object, got ${describe(raw)}`, { path: source });
  }
  const defaulted = new Set(Array.isArray((raw as Record<string, unknown>)._use_default_values) ? (raw as { _use_default_values: unknown[] })._use_default_values : []);
  const given: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) if (!key.startsWith('_') && !defaulted.has(key)) given[key] = value;
  Object.assign(given, overrides);

  const bad = (key: string, expected: string) => new PictalkError('model.invalid',
    `Expected \`${key}\` in ${source} to be ${expected}, got ${describe(given[key])}`, { path: source, key });
  for (const [key, off] of Object.entries(UNSUPPORTED)) {
    if (given[key] !== undefined && given[key] !== off) throw bad(key, `${String(off)} (pictalk does not implement it)`);
  }
  const config: ResolvedSchedulerConfig = { ...COMMON_DEFAULTS, ...SCHEDULER_CLASSES[className].defaults } as ResolvedSchedulerConfig;
  const number = (field: keyof ResolvedSchedulerConfig, check: (n: number) => boolean, expected: string) => {
    const value = given[KEYS[field]];
    if (value === undefined || value === null) return;
    if (typeof value !== 'number' || !check(value)) throw bad(KEYS[field], expected);
    (config as unknown as Record<string, unknown>)[field] = value;
  };
  const choice = <T extends string>(field: keyof ResolvedSchedulerConfig, options: readonly T[]) => {
    const value = given[KEYS[field]];
    if (value === undefined || value === null) return;
    if (!options.includes(value as T)) throw bad(KEYS[field], `one of ${options.join(', ')}`);
    (config as unknown as Record<string, unknown>)[field] = value;
  };
  const flag = (field: keyof ResolvedSchedulerConfig) => {
    const value = given[KEYS[field]];
    if (value === undefined || value === null) return;
    if (typeof value !== 'boolean') throw bad(KEYS[field], 'true or false');
    (config as unknown as Record<string, unknown>)[field] = value;
  };
  number('numTrainTimesteps', (n) => Number.isInteger(n) && n >= 2 && n <= 100_000, 'an integer from 2 to 100000');
  number('betaStart', (n) => n > 0 && n < 1, 'a number between 0 and 1');
  number('betaEnd', (n) => n > 0 && n < 1, 'a number between 0 and 1');
  choice<BetaSchedule>('betaSchedule', ['linear', 'scaled_linear', 'squaredcos_cap_v2']);
  choice<TimestepSpacing>('timestepSpacing', ['leading', 'trailing', 'linspace']);
  number('stepsOffset', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
  flag('setAlphaToOne');
  choice<PredictionType>('predictionType', ['epsilon', 'v_prediction', 'sample']);
  flag('clipSample');
  number('clipSampleRange', (n) => n > 0, 'a positive number');
  number('eta', (n) => n >= 0 && n <= 1, 'a number from 0 to 1');
  number('originalInferenceSteps', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  number('timestepScaling', (n) => n > 0, 'a positive number');
  flag('lowerOrderFinal');
  const trained = given.trained_betas;
  if (trained !== undefined && trained !== null) {
    if (!Array.isArray(trained) || trained.length !== config.numTrainTimesteps || !trained.every((b) => typeof b === 'number' && b > 0 && b < 1)) {
      throw bad('trained_betas', `an array of ${config.numTrainTimesteps} numbers between 0 and 1`);
    }
    config.trainedBetas = trained as number[];
  }
  return config;
}

/**
 * alphas_cumprod as diffusers computes it in float32 torch: linspace in float32, cumprod accumulated in double
 * and stored as float32 (torch's CPU cumprod uses a double accumulator for float).
 */
export function alphasCumprod(config: ResolvedSchedulerConfig): Float64Array {
  const n = config.numTrainTimesteps;
  const betas = new Float64Array(n);
  if (config.trainedBetas) {
    for (let i = 0; i < n; i++) betas[i] = Math.fround(config.trainedBetas[i]!);
  } else if (config.betaSchedule === 'squaredcos_cap_v2') {
    // betas_for_alpha_bar with the cosine alpha_bar, max_beta 0.999 (computed in float64, stored as float32)
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
    for (let i = 0; i < n; i++) betas[i] = Math.fround(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
  } else {
    const scaled = config.betaSchedule === 'scaled_linear';
    const values = linspaceFloat32(scaled ? Math.sqrt(config.betaStart) : config.betaStart, scaled ? Math.sqrt(config.betaEnd) : config.betaEnd, n);
    for (let i = 0; i < n; i++) betas[i] = scaled ? Math.fround(values[i]! * values[i]!) : values[i]!;
  }
  const cumprod = new Float64Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) {
    acc *= Math.fround(1 - betas[i]!);
    cumprod[i] = Math.fround(acc);
  }
  return cumprod;
}

/** torch.linspace(start, end, steps, dtype=float32): two halves, from each end, in float32. */
function linspaceFloat32(start: number, end: number, steps: number): Float64Array {
  const out = new Float64Array(steps);
  const s = Math.fround(start);
  const e = Math.fround(end);
  const step = Math.fround((e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < half ? Math.fround(s + Math.fround(step * i)) : Math.fround(e - Math.fround(step * (steps - i - 1)));
  }
  return out;
}

/** numpy.linspace(start, stop, num, endpoint): `i * step + start`, the end point set exactly. */
export function linspace(start: number, stop: number, num: number, endpoint = true): number[] {
  const div = endpoint ? num - 1 : num;
  const step = div > 0 ? (stop - start) / div : 0;
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  if (endpoint && num > 1) out[num - 1] = stop;
  return out;
}

/** numpy.round: halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.interp on an integer grid 0..values.length-1 (xp = arange). */
export function interpOnIndex(x: number, values: ArrayLike<number>): number {
  if (x <= 0) return values[0]!;
  const last = values.length - 1;
  if (x >= last) return values[last]!;
  const i = Math.floor(x);
  const frac = x - i;
  return values[i]! + (values[i + 1]! - values[i]!) * frac;
}

/** sqrt((1 - a) / a) per training step, in float32 as NumPy computes it on the float32 alphas. */
export function trainingSigmas(alphas: Float64Array): Float64Array {
  return alphas.map((a) => Math.fround(Math.sqrt(Math.fround(Math.fround(1 - a) / a))));
}

/** Validate `setTimesteps`' argument. */
export function checkStepCount(steps: number, config: ResolvedSchedulerConfig): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > config.numTrainTimesteps) {
    throw new PictalkError('input.invalid', `Expected \`steps\` to be an integer from 1 to ${config.numTrainTimesteps}, got ${describe(steps)}`);
  }
}

/** Where `timestep` sits in `timesteps` (diffusers' index_for_timestep: the second match when it repeats). */
export function indexForTimestep(timesteps: readonly number[], timestep: number, className: string): number {
  const first = timesteps.indexOf(timestep);
  if (first < 0) {
    throw new PictalkError('input.invalid', `Expected a timestep of ${className}'s schedule (${timesteps.join(', ')}), got ${describe(timestep)}`);
  }
  const second = timesteps.indexOf(timestep, first + 1);
  return second >= 0 ? second : first;
}

/** numpy.arange(start, 0, -step) for a positive float step. */
export function arangeDown(start: number, step: number): number[] {
  const count = Math.ceil(start / step);
  return Array.from({ length: count }, (_, i) => start - i * step);
}

/**
 * add_noise of the DDPM-family schedulers (DDIM, PNDM, LCM): sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise,
 * the coefficients in float32 as diffusers computes them.
 */
export function addNoiseAtTimestep(
  alphas: Float64Array, original: Float32Array, noise: Float32Array, timestep: number, className: string,
): Float32Array<ArrayBuffer> {
  if (!Number.isInteger(timestep) || timestep < 0 || timestep >= alphas.length) {
    throw new PictalkError('input.invalid', `Expected a timestep of ${className} from 0 to ${alphas.length - 1}, got ${describe(timestep)}`);
  }
  return mixNoise(original, noise, Math.fround(Math.sqrt(alphas[timestep]!)), Math.fround(Math.sqrt(Math.fround(1 - alphas[timestep]!))));
}

/** a * original + b * noise, element-wise, into a new array (the two must have one length). */
export function mixNoise(original: Float32Array, noise: Float32Array, a: number, b: number): Float32Array<ArrayBuffer> {
  if (noise.length !== original.length) {
    throw new PictalkError('inference.failed', `Expected noise of ${original.length} values for add_noise, got ${noise.length}`);
  }
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = a * original[i]! + b * noise[i]!;
  return out;
}
