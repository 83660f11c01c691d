import type { Feeds, TensorValue } from '../../inference/onnx.backend.js';
import { UnetBatcher, type UnetCall } from '../../inference/unet.batcher.js';

/**
 * A fake UNet: out[row, i] = sample[row, i] * 2 + timestep[row] + context[row, 0]. Rows are independent, as in
 * a real UNet, so a merged run must give every caller exactly what a run of its own gives.
 */
function fakeUnet(perRow: boolean) {
  const runs: Array<{ rows: number; timesteps: number[] }> = [];
  let failNext = false;
  return {
    runs,
    failOnce: () => { failNext = true; },
    outputNames: ['out_sample'],
    async run(feeds: Feeds, outputs?: unknown): Promise<Record<string, TensorValue>> {
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (failNext) { failNext = false; throw new Error('the graph failed'); }
      const sample = feeds.sample!;
      const [rows, c, h, w] = sample.dims as [number, number, number, number];
      const perSample = c * h * w;
      const ts = Array.from(feeds.timestep!.data as Float32Array | BigInt64Array, Number);
      const ctx = feeds.encoder_hidden_states!;
      const perCtx = ctx.data.length / rows;
      runs.push({ rows, timesteps: ts });
      const out = (outputs as Record<string, TensorValue<Float32Array>>).out_sample!;
      for (let r = 0; r < rows; r += 1) {
        const t = perRow ? ts[r]! : ts[0]!;
        for (let i = 0; i < perSample; i += 1) {
          out.data[r * perSample + i] = (sample.data as Float32Array)[r * perSample + i]! * 2 + t + (ctx.data as Float32Array)[r * perCtx]!;
        }
      }
      return { out_sample: out };
    },
  };
}

/**
 * A fake UNet that takes each latent once (pictalk.json `unet_shared_latents`): text row j goes with latent j mod m,
 * out[j, i] = sample[j mod m, i] * 2 + timestep[j mod m] + context[j, 0].
 */
function fakeSharedUnet() {
  const runs: Array<{ latents: number; rows: number; timesteps: number[]; firstColumn: number[] }> = [];
  return {
    runs,
    outputNames: ['out_sample'],
    async run(feeds: Feeds, outputs?: unknown): Promise<Record<string, TensorValue>> {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const sample = feeds.sample!.data as Float32Array;
      const [m, c, h, w] = feeds.sample!.dims as [number, number, number, number];
      const ctx = feeds.encoder_hidden_states!;
      const k = ctx.dims[0]!;
      if (k % m !== 0) throw new Error(`text rows ${k} are not a multiple of latents ${m}`);
      const perCtx = ctx.data.length / k;
      const ts = Array.from(feeds.timestep!.data as Float32Array, Number);
      runs.push({ latents: m, rows: k, timesteps: ts, firstColumn: Array.from({ length: k }, (_, j) => (ctx.data as Float32Array)[j * perCtx]!) });
      const out = (outputs as Record<string, TensorValue<Float32Array>>).out_sample!;
      const per = c * h * w;
      for (let j = 0; j < k; j += 1) {
        for (let i = 0; i < per; i += 1) out.data[j * per + i] = sample[(j % m) * per + i]! * 2 + ts[j % m]! + (ctx.data as Float32Array)[j * perCtx]!;
      }
      return { out_sample: out };
    },
  };
}

/** A guided call of `latents` latents for a graph that takes each once: 2 * latents text rows (negative, then prompt). */
function sharedCall(latents: number, t: number, base: number): UnetCall {
  const c = 2, h = 2, w = 2, l = 3, d = 2;
  const rows = 2 * latents;
  const sample = Float32Array.from({ length: latents * c * h * w }, (_, i) => base + i);
  return {
    sample,
    context: Float32Array.from({ length: rows * l * d }, (_, i) => base * 10 + Math.floor(i / (l * d))),
    timestep: new Float32Array(latents).fill(t),
    sampleDims: [latents, c, h, w], contextDims: [rows, l, d],
    out: new Float32Array(rows * c * h * w),
  };
}

function sharedExpected(c: UnetCall): Float32Array {
  const [m] = c.sampleDims;
  const [k] = c.contextDims;
  const per = c.sample.length / m;
  const perCtx = c.context.length / k;
  return Float32Array.from({ length: k * per }, (_, i) => {
    const j = Math.floor(i / per);
    return c.sample[(j % m) * per + (i % per)]! * 2 + Number(c.timestep[j % m]) + c.context[j * perCtx]!;
  });
}

function call(rows: number, t: number, base: number, perRow = true): UnetCall {
  const c = 2, h = 2, w = 2, l = 3, d = 2;
  const sample = Float32Array.from({ length: rows * c * h * w }, (_, i) => base + i);
  const context = Float32Array.from({ length: rows * l * d }, (_, i) => base * 10 + Math.floor(i / (l * d)));
  return {
    sample, context,
    timestep: perRow ? new Float32Array(rows).fill(t) : Float32Array.of(t),
    sampleDims: [rows, c, h, w], contextDims: [rows, l, d],
    out: new Float32Array(sample.length),
  };
}

function expected(c: UnetCall, perRow = true): Float32Array {
  const [rows] = c.sampleDims;
  const per = c.sample.length / rows;
  const perCtx = c.context.length / rows;
  return c.sample.map((v, i) => {
    const r = Math.floor(i / per);
    return v * 2 + Number(c.timestep[perRow ? r : 0]) + c.context[r * perCtx]!;
  });
}

describe('UnetBatcher', () => {
  it('merges calls that wait together into one run and gives every caller its own rows', async () => {
    const unet = fakeUnet(true);
    const batcher = new UnetBatcher(unet, true, 16);
    const calls = [call(2, 981, 1), call(2, 961, 100), call(4, 1, 1000)];   // different timesteps: one per row
    await Promise.all(calls.map((c) => batcher.run(c)));
    expect(unet.runs).toEqual([{ rows: 8, timesteps: [981, 981, 961, 961, 1, 1, 1, 1] }]);
    for (const c of calls) expect(Array.from(c.out)).toEqual(Array.from(expected(c)));
    expect(batcher.stats).toEqual({ runs: 1, calls: 3, maxMerged: 3 });
  });

  it('runs a lone call as it is, and lets calls that arrive during a run go together next', async () => {
    const unet = fakeUnet(true);
    const batcher = new UnetBatcher(unet, true, 16);
    const first = call(2, 5, 1);
    const running = batcher.run(first);
    await new Promise((resolve) => setImmediate(resolve));        // the first run is in flight now
    const later = [call(2, 7, 2), call(2, 9, 3)];
    await Promise.all([running, ...later.map((c) => batcher.run(c))]);
    expect(unet.runs.map((r) => r.rows)).toEqual([2, 4]);
    for (const c of [first, ...later]) expect(Array.from(c.out)).toEqual(Array.from(expected(c)));
  });

  it('keeps merged runs within maxRows, oldest calls first', async () => {
    const unet = fakeUnet(true);
    const batcher = new UnetBatcher(unet, true, 4);
    const calls = [call(2, 1, 1), call(2, 2, 2), call(2, 3, 3), call(8, 4, 4)];
    await Promise.all(calls.map((c) => batcher.run(c)));
    expect(unet.runs.map((r) => r.rows)).toEqual([4, 2, 8]);       // a call above the limit still runs, alone
    for (const c of calls) expect(Array.from(c.out)).toEqual(Array.from(expected(c)));
  });

  it('merges only equal timesteps when the graph takes a single timestep value', async () => {
    const unet = fakeUnet(false);
    const batcher = new UnetBatcher(unet, false, 16);
    const calls = [call(2, 10, 1, false), call(2, 20, 2, false), call(2, 10, 3, false)];
    await Promise.all(calls.map((c) => batcher.run(c)));
    expect(unet.runs).toEqual([{ rows: 4, timesteps: [10] }, { rows: 2, timesteps: [20] }]);
    for (const c of calls) expect(Array.from(c.out)).toEqual(Array.from(expected(c, false)));
  });

  it('never merges calls of different shapes', async () => {
    const unet = fakeUnet(true);
    const batcher = new UnetBatcher(unet, true, 16);
    const small = call(2, 1, 1);
    const other: UnetCall = { ...call(2, 1, 2), sampleDims: [2, 2, 1, 4] };   // same size, another shape
    await Promise.all([batcher.run(small), batcher.run(other)]);
    expect(unet.runs.map((r) => r.rows)).toEqual([2, 2]);
  });

  it('fails only the calls of a failed run, and carries on with the next', async () => {
    const unet = fakeUnet(true);
    const batcher = new UnetBatcher(unet, true, 16);
    unet.failOnce();
    const doomed = [batcher.run(call(2, 1, 1)), batcher.run(call(2, 1, 2))];
    await expect(doomed[0]).rejects.toThrow('the graph failed');
    await expect(doomed[1]).rejects.toThrow('the graph failed');
    const fine = call(2, 3, 3);
    await batcher.run(fine);
    expect(Array.from(fine.out)).toEqual(Array.from(expected(fine)));
  });

  it('gives a graph that takes each latent once every latent once, merged calls in blocks of text rows', async () => {
    const unet = fakeSharedUnet();
    const batcher = new UnetBatcher(unet, true, 16, undefined, true);
    const calls = [sharedCall(1, 981, 1), sharedCall(3, 961, 100), sharedCall(2, 1, 1000)];
    await Promise.all(calls.map((c) => batcher.run(c)));
    // 6 latents and 12 text rows in one run: every call's negative rows, then every call's prompt rows
    expect(unet.runs).toEqual([{
      latents: 6, rows: 12, timesteps: [981, 961, 961, 961, 1, 1],
      firstColumn: [10, 1000, 1001, 1002, 10000, 10001, 11, 1003, 1004, 1005, 10002, 10003],
    }]);
    for (const c of calls) expect(Array.from(c.out)).toEqual(Array.from(sharedExpected(c)));
    // a call with a latent per text row (no guidance) has another ratio: it runs on its own
    const unguided = call(2, 5, 7);
    const guided = sharedCall(1, 5, 8);
    await Promise.all([batcher.run(unguided), batcher.run(guided)]);
    expect(unet.runs.slice(1).map((r) => [r.latents, r.rows])).toEqual([[2, 2], [1, 2]]);
    expect(Array.from(unguided.out)).toEqual(Array.from(expected(unguided)));
    expect(Array.from(guided.out)).toEqual(Array.from(sharedExpected(guided)));
    // maxRows counts text rows
    const small = new UnetBatcher(fakeSharedUnet(), true, 4, undefined, true);
    const limited = small as unknown as { unet: ReturnType<typeof fakeSharedUnet> };
    await Promise.all([small.run(sharedCall(1, 1, 1)), small.run(sharedCall(1, 1, 2)), small.run(sharedCall(1, 1, 3))]);
    expect(limited.unet.runs.map((r) => r.rows)).toEqual([4, 2]);
  });

  it('refuses text rows that are not a multiple of the latents, and fewer latents than text rows for a graph that needs one each', async () => {
    const shared = new UnetBatcher(fakeSharedUnet(), true, 16, undefined, true);
    await expect(shared.run({ ...sharedCall(2, 1, 1), contextDims: [3, 3, 2], context: new Float32Array(18), out: new Float32Array(24) }))
      .rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('text rows a multiple of the latents') });
    const plain = new UnetBatcher(fakeUnet(true), true, 16);
    await expect(plain.run(sharedCall(1, 1, 1))).rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('a latent per text row') });
  });

  it('refuses buffers that do not match their dims, and a bad limit', async () => {
    const batcher = new UnetBatcher(fakeUnet(true), true, 16);
    await expect(batcher.run({ ...call(2, 1, 1), out: new Float32Array(3) })).rejects.toMatchObject({ code: 'inference.failed' });
    await expect(batcher.run({ ...call(2, 1, 1), timestep: Float32Array.of(1) })).rejects.toThrow('Expected 2 timestep value(s), got 1');
    expect(() => new UnetBatcher(fakeUnet(true), true, 0)).toThrow('positive integer');
  });
});
