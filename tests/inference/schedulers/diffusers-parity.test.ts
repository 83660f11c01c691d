import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readNpy } from '../../../inference/npy.js';
import { createScheduler } from '../../../inference/schedulers/scheduler.factory.js';
import type { NoiseSource } from '../../../inference/schedulers/scheduler.js';

// Reference numbers made by diffusers itself for SD 1.5's PNDM scheduler config (see the fixture's README.md);
// every scheduler is built from that one config, as diffusers' from_config does.
const DIR = path.join(process.cwd(), 'tests', 'fixtures', 'diffusers-schedulers');
const json = (name: string) => JSON.parse(readFileSync(path.join(DIR, name), 'utf8'));
const npy = (name: string) => readNpy(readFileSync(path.join(DIR, `${name}.npy`)), name);

const timestepsRef = json('timesteps.json');
const trace = json('step_trace.json');
const baseConfig = timestepsRef.base_config;
const sample0 = npy('sample0').data;                  // [1, 4, 8, 8]
const modelOutputs = npy('model_outputs').data;       // [3, 1, 4, 8, 8]
const stepNoise = npy('step_noise').data;             // [3, 1, 4, 8, 8]
const SIZE = sample0.length;
const slice = (data: Float32Array, i: number) => data.subarray(i * SIZE, (i + 1) * SIZE);

const NAMES: Record<string, string> = { pndm: 'pndm', ddim: 'ddim', euler_a: 'euler-a', dpmpp_2m: 'dpmpp-2m', lcm: 'lcm' };

/**
 * Within 1e-5 relative, plus an absolute floor for results that cancel to near zero: a few float32 ulps of the
 * array's largest value (diffusers computes in float32; Euler's samples reach ~50). Says where the worst element is.
 */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  const atol = 2e-7 * scale;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i]! - expected[i]!) - (atol + rtol * Math.abs(expected[i]!));
    if (!(excess <= worstExcess)) { worst = i; worstExcess = Number.isNaN(excess) ? Infinity : excess; }
  }
  if (worst >= 0) throw new Error(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (beyond tolerance by ${worstExcess})`);
}

/** The fixture's noise, one [1, 4, 8, 8] draw per call, in order. */
function fixtureNoise(): NoiseSource & { draws: number } {
  return {
    draws: 0,
    fill(out: Float32Array) { out.set(slice(stepNoise, this.draws++)); return out; },
  };
}

describe.each(Object.keys(NAMES))('%s matches diffusers', (key) => {
  const name = NAMES[key]!;
  const ref = timestepsRef.schedulers[key];
  const traced = trace.schedulers[key];

  it('resolves the class and its defaults from the PNDM config', () => {
    const scheduler = createScheduler(name, baseConfig);
    expect(scheduler.className).toBe(ref.class);
    expect(scheduler.config.timestepSpacing).toBe(ref.config.timestep_spacing);
    expect(scheduler.config.setAlphaToOne).toBe(ref.config.set_alpha_to_one);
    expect(scheduler.config.stepsOffset).toBe(ref.config.steps_offset);
  });

  it('gives the timesteps, sigmas and init_noise_sigma of set_timesteps(10)', () => {
    const scheduler = createScheduler(name, baseConfig);
    scheduler.setTimesteps(10);
    const expected = ref.set_timesteps_10;
    expect(scheduler.timesteps).toEqual(expected.timesteps);
    if (expected.sigmas) expectClose(scheduler.sigmas, expected.sigmas, 'sigmas');
    else expect(scheduler.sigmas).toEqual([]);
    expectClose([scheduler.initNoiseSigma], [expected.init_noise_sigma], 'init_noise_sigma');
  });

  it('chains three steps: scaled inputs, previous samples and predicted originals', () => {
    const scheduler = createScheduler(name, baseConfig);
    scheduler.setTimesteps(traced.set_timesteps);
    expect(scheduler.timesteps.slice(0, 3)).toEqual(traced.timesteps_used);
    const scaled = npy(`${key}_scaled_model_inputs`).data;
    const prev = npy(`${key}_prev_samples`).data;
    const pred = traced.has_pred_original ? npy(`${key}_pred_original`).data : null;
    const noise = fixtureNoise();
    let sample: Float32Array = Float32Array.from(sample0);
    for (let i = 0; i < 3; i++) {
      const t = scheduler.timesteps[i]!;
      expectClose(scheduler.scaleModelInput(sample, t), slice(scaled, i), `step ${i} scaled input`);
      const before = Float32Array.from(sample);
      const result = scheduler.step(slice(modelOutputs, i), t, sample, noise);
      expect(sample).toEqual(before); // inputs are not mutated
      expectClose(result.prevSample, slice(prev, i), `step ${i} prev_sample`);
      if (pred) expectClose(result.predOriginal!, slice(pred, i), `step ${i} pred_original`);
      sample = result.prevSample;
    }
    expect(noise.draws).toBe(traced.noise_draws);
  });
});
