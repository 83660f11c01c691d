import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readNpy } from '../../../inference/npy.js';
import { createScheduler } from '../../../inference/schedulers/scheduler.factory.js';
import type { NoiseSource } from '../../../inference/schedulers/scheduler.js';

// Few-step sampling (LCM, SD-Turbo style trailing timesteps) against numbers made by diffusers itself:
// tests/fixtures/diffusers-schedulers/make_fast_samplers.py, from SD 1.5's config with timestep_spacing "trailing".
const DIR = path.join(process.cwd(), 'tests', 'fixtures', 'diffusers-schedulers');
const json = (name: string) => JSON.parse(readFileSync(path.join(DIR, name), 'utf8'));
const npy = (name: string) => readNpy(readFileSync(path.join(DIR, `${name}.npy`)), name).data;

interface Schedule { timesteps: number[]; sigmas?: number[]; init_noise_sigma: number }
const fast = json('fast_samplers.json') as { schedulers: Record<string, { class: string; set_timesteps: Record<string, Schedule>; trace_3?: { timesteps: number[] } }> };
// the folder's own keys, as the script passes them to from_config (`_use_default_values` would mark the spacing unset)
const { _use_default_values: _defaulted, ...base } = json('timesteps.json').base_config as Record<string, unknown>;
const trailing = { ...base, timestep_spacing: 'trailing' };
const NAMES: Record<string, string> = { pndm: 'pndm', ddim: 'ddim', euler_a: 'euler-a', dpmpp_2m: 'dpmpp-2m', lcm: 'lcm' };
const sample0 = npy('sample0');
const SIZE = sample0.length;
const slice = (data: Float32Array, i: number) => data.subarray(i * SIZE, (i + 1) * SIZE);

/** Within 1e-5 relative plus a few float32 ulps of the array's largest value (as diffusers-parity.test.ts). */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length).toBe(expected.length);
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= 2e-7 * scale + 1e-5 * Math.abs(expected[i]!))) {
      throw new Error(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

describe.each(Object.keys(NAMES))('%s with trailing timesteps matches diffusers at few steps', (key) => {
  const ref = fast.schedulers[key]!;

  it.each(Object.keys(ref.set_timesteps))('set_timesteps(%s)', (steps) => {
    const scheduler = createScheduler(NAMES[key], trailing);
    expect(scheduler.className).toBe(ref.class);
    scheduler.setTimesteps(Number(steps));
    const expected = ref.set_timesteps[steps]!;
    expect(scheduler.timesteps).toEqual(expected.timesteps);
    if (expected.sigmas) expectClose(scheduler.sigmas, expected.sigmas, 'sigmas');
    expectClose([scheduler.initNoiseSigma], [expected.init_noise_sigma], 'init_noise_sigma');
  });

  // the classes with a 3-step trace in the fixture (DDIM, Euler ancestral, LCM)
  if (ref.trace_3) it('runs a whole 3-step schedule to the same samples', () => {
    const scheduler = createScheduler(NAMES[key], trailing);
    scheduler.setTimesteps(3);
    expect(scheduler.timesteps).toEqual(ref.trace_3!.timesteps);
    const outputs = npy('model_outputs');
    const noise = npy('step_noise');
    const prev = npy(`${key}_trailing3_prev_samples`);
    let draws = 0;
    const source: NoiseSource = { fill: (out) => { out.set(slice(noise, draws++)); return out; } };
    let sample: Float32Array = Float32Array.from(sample0);
    for (const [i, t] of scheduler.timesteps.entries()) {
      sample = scheduler.step(slice(outputs, i), t, sample, source).prevSample;
      expectClose(sample, slice(prev, i), `step ${i}`);
    }
  });
});
