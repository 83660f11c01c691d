import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createScheduler, schedulerNameForClass } from '../../../inference/schedulers/scheduler.factory.js';
import { gaussianNoise } from '../../../inference/schedulers/noise.js';
import { SCHEDULER_NAMES } from '../../../inference/types.js';

const DIR = path.join(process.cwd(), 'tests', 'fixtures', 'diffusers-schedulers');
const baseConfig = JSON.parse(readFileSync(path.join(DIR, 'timesteps.json'), 'utf8')).base_config as Record<string, unknown>;
/** SD 1.5's published scheduler_config.json, which predates timestep_spacing and _use_default_values. */
const sd15 = Object.fromEntries(Object.entries(baseConfig).filter(([k]) => !['_use_default_values', 'timestep_spacing', 'prediction_type'].includes(k)));

describe('timestep spacing (10 of 1000 steps, Table 2 of "Common Diffusion Noise Schedules and Sample Steps are Flawed")', () => {
  const spaced = (name: string, spacing: string, offset = 0) => {
    const scheduler = createScheduler(name, { ...sd15, timestep_spacing: spacing, steps_offset: offset });
    scheduler.setTimesteps(10);
    return scheduler.timesteps;
  };
  it.each(['ddim', 'euler-a'])('%s: linspace, leading (with steps_offset) and trailing', (name) => {
    expect(spaced(name, 'linspace')).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    expect(spaced(name, 'leading')).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(spaced(name, 'leading', 1)).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(spaced(name, 'trailing')).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
  });

  it('pndm repeats its second timestep for the PLMS warm-up in every spacing', () => {
    expect(spaced('pndm', 'trailing')).toEqual([999, 899, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(spaced('pndm', 'linspace')).toEqual([999, 888, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
  });

  it('dpmpp-2m spaces n + 1 points and drops the last; numpy rounds halves to even', () => {
    expect(spaced('dpmpp-2m', 'linspace')).toEqual([999, 899, 799, 699, 599, 500, 400, 300, 200, 100]);
    expect(spaced('dpmpp-2m', 'leading', 1)).toEqual([901, 811, 721, 631, 541, 451, 361, 271, 181, 91]);
    expect(spaced('dpmpp-2m', 'trailing')).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
  });

  it('euler-a with leading spacing starts from sqrt(sigma_max^2 + 1)', () => {
    const linspace = createScheduler('euler-a', sd15);
    const leading = createScheduler('euler-a', { ...sd15, timestep_spacing: 'leading' });
    linspace.setTimesteps(10);
    leading.setTimesteps(10);
    expect(linspace.initNoiseSigma).toBeCloseTo(14.6146, 3);
    expect(leading.initNoiseSigma).toBeCloseTo(Math.sqrt(leading.sigmas[0]! ** 2 + 1), 6);
  });
});

describe('createScheduler', () => {
  it('takes pictalk names, diffusers class names, or the config\'s own _class_name', () => {
    expect(createScheduler('euler-a', baseConfig).className).toBe('EulerAncestralDiscreteScheduler');
    expect(createScheduler('LCMScheduler', baseConfig).name).toBe('lcm');
    expect(createScheduler(undefined, baseConfig).name).toBe('pndm');
    for (const name of SCHEDULER_NAMES) expect(createScheduler(name, baseConfig).name).toBe(name);
    expect(schedulerNameForClass('DPMSolverMultistepScheduler')).toBe('dpmpp-2m');
    expect(schedulerNameForClass('EulerDiscreteScheduler')).toBeUndefined();
  });

  it('uses the target class\'s defaults where the config is silent, and the config where it speaks', () => {
    // SD 1.5 says set_alpha_to_one false and clip_sample false; DDIM's own defaults are true for both
    const ddim = createScheduler('ddim', sd15);
    expect(ddim.config).toMatchObject({ setAlphaToOne: false, clipSample: false, timestepSpacing: 'leading', stepsOffset: 1 });
    expect(createScheduler('ddim', { num_train_timesteps: 1000 }).config).toMatchObject({ setAlphaToOne: true, clipSample: true, betaSchedule: 'linear' });
    // keys a config lists in _use_default_values were never chosen: the target class's default applies
    expect(createScheduler('dpmpp-2m', baseConfig).config.timestepSpacing).toBe('linspace');
    expect(createScheduler('dpmpp-2m', { ...baseConfig, _use_default_values: [] }).config.timestepSpacing).toBe('leading');
  });

  it('refuses unknown names, malformed values and options pictalk does not implement', () => {
    expect(() => createScheduler('heun', baseConfig)).toThrow(expect.objectContaining({ code: 'input.invalid' }));
    expect(() => createScheduler(undefined, { ...baseConfig, _class_name: 'EulerDiscreteScheduler' })).toThrow(expect.objectContaining({ code: 'model.invalid' }));
    expect(() => createScheduler('ddim', { ...sd15, beta_schedule: 'cosine' }, { source: 'x/scheduler_config.json' }))
      .toThrow(/beta_schedule.*x\/scheduler_config\.json.*linear, scaled_linear, squaredcos_cap_v2.*cosine/);
    expect(() => createScheduler('dpmpp-2m', { ...sd15, use_karras_sigmas: true })).toThrow(/use_karras_sigmas/);
    expect(() => createScheduler('ddim', { ...sd15, thresholding: true })).toThrow(expect.objectContaining({ code: 'model.invalid' }));
    expect(() => createScheduler('ddim', [])).toThrow(expect.objectContaining({ code: 'model.invalid' }));
  });

  it('refuses step counts outside 1..num_train_timesteps, and LCM beyond original_inference_steps', () => {
    const ddim = createScheduler('ddim', sd15);
    expect(() => ddim.setTimesteps(0)).toThrow(expect.objectContaining({ code: 'input.invalid' }));
    expect(() => ddim.setTimesteps(2.5)).toThrow(/`steps`.*2\.5/);
    expect(() => createScheduler('lcm', sd15).setTimesteps(51)).toThrow(/original_inference_steps/);
  });
});

describe('scheduler behaviour beyond the reference trace', () => {
  const size = 4 * 8 * 8;
  const draw = (seed: number) => gaussianNoise(seed).fill(new Float32Array(size));

  it('ddim with eta > 0 adds std_dev_t * noise to the eta-0 step', () => {
    const deterministic = createScheduler('ddim', sd15);
    const stochastic = createScheduler('ddim', sd15, { eta: 0.5 });
    deterministic.setTimesteps(10);
    stochastic.setTimesteps(10);
    const [x, eps, z] = [draw(1), draw(2), draw(3)];
    const t = 501;
    const a = stochastic as unknown as { alphas: Float64Array };
    const alphaT = a.alphas[t]!;
    const alphaPrev = a.alphas[t - 100]!;
    const std = 0.5 * Math.sqrt(((1 - alphaPrev) / (1 - alphaT)) * (1 - alphaT / alphaPrev));
    const base = deterministic.step(eps, t, x).prevSample;
    const noisy = stochastic.step(eps, t, x, { fill: (out) => { out.set(z); return out; } });
    // same x0, a smaller direction term, plus the noise
    const x0 = (i: number) => (x[i]! - Math.sqrt(1 - alphaT) * eps[i]!) / Math.sqrt(alphaT);
    for (const i of [0, 17, 255]) {
      const expected = Math.sqrt(alphaPrev) * x0(i) + Math.sqrt(1 - alphaPrev - std * std) * eps[i]! + std * z[i]!;
      expect(noisy.prevSample[i]).toBeCloseTo(expected, 5);
      expect(noisy.prevSample[i]).not.toBeCloseTo(base[i]!, 3);
    }
    expect(() => stochastic.step(eps, t, x)).toThrow(/noise source/);
  });

  it('ddim with v_prediction recovers x0 = sqrt(a) x - sqrt(1 - a) v', () => {
    const ddim = createScheduler('ddim', { ...sd15, prediction_type: 'v_prediction' });
    ddim.setTimesteps(10);
    const [x, v] = [draw(4), draw(5)];
    const alphaT = (ddim as unknown as { alphas: Float64Array }).alphas[901]!;
    const { predOriginal } = ddim.step(v, 901, x);
    expect(predOriginal![7]).toBeCloseTo(Math.sqrt(alphaT) * x[7]! - Math.sqrt(1 - alphaT) * v[7]!, 5);
  });

  it('euler-a and lcm refuse to step without a noise source; lcm\'s last step needs none', () => {
    const euler = createScheduler('euler-a', sd15);
    euler.setTimesteps(4);
    expect(() => euler.step(draw(1), euler.timesteps[0]!, draw(2))).toThrow(/noise source/);
    const lcm = createScheduler('lcm', sd15);
    lcm.setTimesteps(1);
    const result = lcm.step(draw(1), lcm.timesteps[0]!, draw(2));
    expect(result.prevSample).toBe(result.predOriginal);
  });

  // Timing is not asserted: the test machines are shared. `npx tsx` on a loop like this one measures it.
  it.each(SCHEDULER_NAMES)('%s runs a whole 20-step schedule on SD-sized latents and stays finite', (name) => {
    const scheduler = createScheduler(name, sd15);
    scheduler.setTimesteps(name === 'lcm' ? 8 : 20);
    const n = 4 * 64 * 64; // [1, 4, 64, 64]
    const noise = gaussianNoise(7, 1);
    let x = gaussianNoise(7).fill(new Float32Array(n)).map((v) => v * scheduler.initNoiseSigma);
    const eps = new Float32Array(n);
    for (const t of scheduler.timesteps) {
      const input = scheduler.scaleModelInput(x, t);
      for (let i = 0; i < n; i++) eps[i] = input[i]! * 0.1; // a stand-in UNet
      x = scheduler.step(eps, t, x, noise).prevSample;
    }
    expect(x.every(Number.isFinite)).toBe(true);
    expect(x.some((v) => v !== 0)).toBe(true);
  });
});
