/**
 * Fast models for the CPU (LCM, SD-Turbo style): a folder that says so runs few steps without classifier-free
 * guidance, one UNet batch per step, on its scheduler's own timesteps; guidance <= 1 turns guidance off for any model.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { OnnxModel } from '../../inference/onnx.backend.js';
import { loadTextToImage } from '../../inference/text-to-image.pipeline.js';
import type { ImagineRequest } from '../../inference/types.js';

const FIXTURE = join(process.cwd(), 'tests/fixtures/tiny-sd');        // PNDM config, float32 timestep
const SD15 = JSON.parse(readFileSync(join(FIXTURE, 'scheduler/scheduler_config.json'), 'utf8')) as Record<string, unknown>;
// diffusers' own numbers for these schedules: tests/fixtures/diffusers-schedulers/fast_samplers.json
const FAST = JSON.parse(readFileSync(join(process.cwd(), 'tests/fixtures/diffusers-schedulers/fast_samplers.json'), 'utf8')) as {
  schedulers: Record<string, { set_timesteps: Record<string, { timesteps: number[] }> }>;
};

/** A copy of the tiny folder with the given scheduler config and pictalk.json. */
function folder(schedulerConfig: Record<string, unknown>, pictalk?: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-t2i-fast-'));
  cpSync(FIXTURE, dir, { recursive: true });
  writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(schedulerConfig));
  if (pictalk) writeFileSync(join(dir, 'pictalk.json'), JSON.stringify(pictalk));
  return dir;
}

/** Every UNet call of one request: its rows and its timestep. */
async function unetCalls(dir: string, request: Omit<ImagineRequest, 'prompt'>): Promise<{ rows: number[]; timesteps: number[]; settings: object }> {
  const pipeline = await loadTextToImage(dir);
  // the pipeline refills one timestep buffer every step: record each call's value as it is fed
  const original = OnnxModel.prototype.run;
  const rows: number[] = [];
  const timesteps: number[] = [];
  const spy = jest.spyOn(OnnxModel.prototype, 'run').mockImplementation(function (this: OnnxModel, feeds, outputs) {
    if (feeds.sample && feeds.timestep) {
      rows.push(feeds.sample.dims[0]!);
      timesteps.push(Number(feeds.timestep.data[0]));
    }
    return original.call(this, feeds, outputs);
  });
  try {
    const result = await pipeline.imagine({ prompt: 'a red circle', negativePrompt: 'a cat', seed: 1, ...request });
    return { rows, timesteps, settings: result.settings };
  } finally {
    spy.mockRestore();
    await pipeline.dispose();
  }
}

describe('fast models for the CPU', () => {
  const dirs: string[] = [];
  const make = (config: Record<string, unknown>, pictalk?: Record<string, unknown>): string => {
    const dir = folder(config, pictalk);
    dirs.push(dir);
    return dir;
  };
  afterAll(() => { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }); });

  it('runs an LCM folder (its scheduler config says LCMScheduler) in 4 steps, one UNet batch per step, on diffusers\' timesteps', async () => {
    const dir = make({ ...SD15, _class_name: 'LCMScheduler' });
    const { rows, timesteps, settings } = await unetCalls(dir, { count: 2 });
    expect(settings).toMatchObject({ scheduler: 'lcm', steps: 4, guidance: 1, count: 2 });
    expect(rows).toEqual([2, 2, 2, 2]);                         // count rows, no unconditional half
    expect(timesteps).toEqual(FAST.schedulers.lcm!.set_timesteps['4']!.timesteps);
  });

  it('lets pictalk.json keep guidance on for an LCM folder, and the request turn it off again', async () => {
    const dir = make({ ...SD15, _class_name: 'LCMScheduler' }, { guidance: 2, steps: 2 });
    expect((await unetCalls(dir, {})).rows).toEqual([2, 2]);
    expect((await unetCalls(dir, { guidance: 1 })).rows).toEqual([1, 1]);
  });

  it('runs an SD-Turbo style folder (trailing timesteps, pictalk.json: 1 step, guidance 0) whose scheduler class pictalk lacks', async () => {
    const turbo = { ...SD15, _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'trailing', interpolation_type: 'linear' };
    await expect(loadTextToImage(make(turbo))).rejects.toMatchObject({
      code: 'model.invalid', message: expect.stringMatching(/EulerDiscreteScheduler.*or name the sampler to run with it as `scheduler` in .*pictalk\.json/),
    });
    const dir = make(turbo, { scheduler: 'euler-a', steps: 1, guidance: 0 });
    const one = await unetCalls(dir, {});
    expect(one.settings).toMatchObject({ scheduler: 'euler-a', steps: 1, guidance: 0 });
    expect(one.rows).toEqual([1]);
    expect(one.timesteps).toEqual(FAST.schedulers.euler_a!.set_timesteps['1']!.timesteps);
    const four = await unetCalls(dir, { steps: 4, scheduler: 'ddim' });
    expect(four.rows).toEqual([1, 1, 1, 1]);
    expect(four.timesteps).toEqual(FAST.schedulers.ddim!.set_timesteps['4']!.timesteps); // 999, 749, 499, 249
  });

  it('turns guidance off for any model at guidance 1 or lower, and keeps both halves above 1', async () => {
    for (const guidance of [0, 0.5, 1]) expect((await unetCalls(FIXTURE, { guidance, steps: 2, scheduler: 'ddim', count: 3 })).rows).toEqual([3, 3]);
    expect((await unetCalls(FIXTURE, { guidance: 1.01, steps: 2, scheduler: 'ddim', count: 3 })).rows).toEqual([6, 6]);
  });
});
