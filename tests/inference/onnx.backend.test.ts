import { join } from 'node:path';
import { openModel, openSessionCount } from '../../inference/onnx.backend.js';
import { PictalkError } from '../../common/errors.js';

// add_timestep.onnx: y = 2x + cast(t), x float32 [batch, 3], t int64 [1]; made by tests/fixtures/onnx-backend/make_fixture.py.
const MODEL = join(process.cwd(), 'tests/fixtures/onnx-backend/add_timestep.onnx');

describe('onnx backend', () => {
  it('reads input names and dtypes from the session and runs typed feeds', async () => {
    const model = await openModel(MODEL);
    try {
      expect(model.inputNames).toEqual(['x', 't']);
      expect(model.outputNames).toEqual(['y']);
      expect(model.inputType('t')).toBe('int64');
      expect(model.inputType('x')).toBe('float32');
      expect(model.inputs[0]?.shape).toEqual(['batch', 3]);
      const out = await model.run({ x: { data: new Float32Array([1, 2, 3, 4, 5, 6]), dims: [2, 3] }, t: { data: new BigInt64Array([5n]), dims: [1] } });
      expect(Array.from(out.y!.data as Float32Array)).toEqual([7, 9, 11, 13, 15, 17]);
      expect(out.y!.dims).toEqual([2, 3]);
    } finally {
      await model.dispose();
    }
  });

  it('reuses one session for the same path and options and releases it with the last holder', async () => {
    const before = openSessionCount();
    const [a, b] = await Promise.all([openModel(MODEL), openModel(MODEL, { graphOptimization: 'all' })]);
    const c = await openModel(MODEL, { graphOptimization: 'basic' });
    expect(openSessionCount()).toBe(before + 2);
    await a!.dispose();
    await a!.dispose(); // a second dispose of one handle does not steal b's reference
    expect(openSessionCount()).toBe(before + 2);
    const out = await b!.run({ x: { data: new Float32Array(3), dims: [1, 3] }, t: { data: new BigInt64Array([1n]), dims: [1] } });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([1, 1, 1]);
    await b!.dispose();
    await c.dispose();
    expect(openSessionCount()).toBe(before);
  });

  it('opens a session per lane, each on an inference thread of its own, and refuses a lane out of range', async () => {
    const before = openSessionCount();
    const [first, second] = await Promise.all([openModel(MODEL), openModel(MODEL, { lane: 1 })]);
    try {
      expect([first!.lane, second!.lane]).toEqual([0, 1]);
      expect(openSessionCount()).toBe(before + 2);
      const feeds = (t: bigint) => ({ x: { data: new Float32Array([1, 2, 3]), dims: [1, 3] }, t: { data: new BigInt64Array([t]), dims: [1] } });
      // calls on both lanes at once, each answered by its own session
      const outs = await Promise.all([1n, 2n, 3n, 4n].map((t, i) => (i % 2 ? second! : first!).run(feeds(t))));
      expect(outs.map((out) => Array.from(out.y!.data as Float32Array))).toEqual([[3, 5, 7], [4, 6, 8], [5, 7, 9], [6, 8, 10]]);
    } finally {
      await Promise.all([first!.dispose(), second!.dispose()]);
    }
    expect(openSessionCount()).toBe(before);
    for (const lane of [-1, 4, 1.5]) {
      await expect(openModel(MODEL, { lane })).rejects.toMatchObject({ code: 'config.invalid', message: expect.stringContaining('`lane`') });
    }
  });

  it('fills a preallocated output buffer in place', async () => {
    const model = await openModel(MODEL);
    const y = { data: new Float32Array(3), dims: [1, 3] };
    const out = await model.run({ x: { data: new Float32Array([1, 1, 1]), dims: [1, 3] }, t: { data: new BigInt64Array([0n]), dims: [1] } }, { y });
    expect(out.y).toBe(y);
    expect(Array.from(y.data)).toEqual([2, 2, 2]);
    await model.dispose();
  });

  it('lends a feed to the inference thread and gives its memory back, after a run and after a failed one', async () => {
    const model = await openModel(MODEL);
    try {
      const x = { data: new Float32Array([1, 2, 3]), dims: [1, 3] };
      const original = x.data;
      for (const t of [1n, 2n]) {
        const out = await model.run({ x, t: { data: new BigInt64Array([t]), dims: [1] } }, undefined, ['x']);
        expect(Array.from(out.y!.data as Float32Array)).toEqual([2, 4, 6].map((v) => v + Number(t)));
        // the same values in a new array over the memory that came back; the array lent is empty (moved, not copied)
        expect(Array.from(x.data)).toEqual([1, 2, 3]);
        expect(x.data).not.toBe(original);
        expect(original.length).toBe(0);
      }
      const wrong = { data: new Float32Array([1, 2, 3, 4]), dims: [1, 4] };
      await expect(model.run({ x: wrong, t: { data: new BigInt64Array([1n]), dims: [1] } }, undefined, ['x']))
        .rejects.toMatchObject({ code: 'inference.failed' });
      expect(Array.from(wrong.data)).toEqual([1, 2, 3, 4]);
      await expect(model.run({ x, t: { data: new BigInt64Array([1n]), dims: [1] } }, undefined, ['z']))
        .rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('`z`') });
      // a feed the graph has no input for is not sent, so it cannot be lent either
      const extra = { data: new Float32Array([1]), dims: [1] };
      await expect(model.run({ x, t: { data: new BigInt64Array([1n]), dims: [1] }, extra }, undefined, ['extra']))
        .rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('`extra`') });
      expect(extra.data.length).toBe(1);
      // the thread is still there
      await expect(model.run({ x, t: { data: new BigInt64Array([0n]), dims: [1] } }, undefined, ['x'])).resolves.toBeDefined();
    } finally {
      await model.dispose();
    }
  });

  it('names the path when the model file is missing', async () => {
    const missing = join(process.cwd(), 'tests/fixtures/onnx-backend/nope.onnx');
    await expect(openModel(missing)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining(missing) });
  });

  it('reports a file that is not an ONNX graph as model.invalid', async () => {
    const notOnnx = join(process.cwd(), 'tests/fixtures/onnx-backend/make_fixture.py');
    const before = openSessionCount();
    await expect(openModel(notOnnx)).rejects.toMatchObject({ code: 'model.invalid' });
    expect(openSessionCount()).toBe(before); // a failed load leaves nothing cached
  });

  it('rejects feeds of the wrong dtype or missing inputs before running, and wraps run failures', async () => {
    const model = await openModel(MODEL);
    try {
      await expect(model.run({ x: { data: new Float32Array(3), dims: [1, 3] }, t: { data: new Float32Array([1]), dims: [1] } }))
        .rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('int64') });
      await expect(model.run({ x: { data: new Float32Array(3), dims: [1, 3] } }))
        .rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('`t`') });
      await expect(model.run({ x: { data: new Float32Array(4), dims: [1, 3] }, t: { data: new BigInt64Array([1n]), dims: [1] } }))
        .rejects.toMatchObject({ code: 'inference.failed', message: expect.stringContaining('Expected 3 values') });
      // [1, 4] does not fit the graph's [batch, 3]: onnxruntime's own error, wrapped with the path.
      const error = await model.run({ x: { data: new Float32Array(4), dims: [1, 4] }, t: { data: new BigInt64Array([1n]), dims: [1] } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PictalkError);
      expect((error as PictalkError).code).toBe('inference.failed');
      expect((error as PictalkError).message).toContain(MODEL);
      expect(() => model.inputType('timestep')).toThrow(/timestep/);
    } finally {
      await model.dispose();
    }
  });

  it('falls back from CUDA to CPU with one log line when CUDA is not there', async () => {
    const lines: string[] = [];
    const model = await openModel(MODEL, { executionProvider: 'cuda', log: (line) => lines.push(line) });
    try {
      // On a machine with CUDA the session runs there and nothing is logged.
      if (model.provider === 'cpu') {
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/CUDA.*CPU/);
      } else {
        expect(lines).toHaveLength(0);
      }
    } finally {
      await model.dispose();
    }
  });

  it('validates the provider it is given, and reads no environment (adapters/config.ts does)', async () => {
    await expect(openModel(MODEL, { executionProvider: 'tpu' as 'cpu' })).rejects.toMatchObject({ code: 'config.invalid', message: expect.stringContaining('tpu') });
    const saved = process.env.PICTALK_EXECUTION_PROVIDER;
    process.env.PICTALK_EXECUTION_PROVIDER = 'tpu';
    try {
      const model = await openModel(MODEL);
      await model.dispose();
    } finally {
      if (saved === undefined) delete process.env.PICTALK_EXECUTION_PROVIDER; else process.env.PICTALK_EXECUTION_PROVIDER = saved;
    }
  });
});
