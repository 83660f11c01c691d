import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readNpy, writeNpy } from '../../inference/npy.js';

const SAMPLE = path.join(process.cwd(), 'tests', 'fixtures', 'diffusers-schedulers', 'sample0.npy');

describe('npy', () => {
  it('reads a NumPy float32 file and writes one that reads back the same', () => {
    const { data, shape } = readNpy(readFileSync(SAMPLE), 'sample0.npy', [1, 4, -1, -1]);
    expect(shape).toEqual([1, 4, 8, 8]);
    expect(data.length).toBe(256);
    expect(Number.isFinite(data[0])).toBe(true);
    const again = readNpy(writeNpy(data, shape));
    expect(again.shape).toEqual(shape);
    expect(again.data).toEqual(data);
    expect(readNpy(writeNpy(new Float32Array([1, 2, 3]), [3])).shape).toEqual([3]);
  });

  it('refuses another dtype, Fortran order, a wrong shape and a truncated file, naming the file', () => {
    const good = writeNpy(new Float32Array(6), [2, 3]);
    const edit = (from: string, to: string) => Buffer.from(good.toString('latin1').replace(from, to), 'latin1');
    expect(() => readNpy(edit("'<f4'", "'<f8'"), 'x.npy')).toThrow(/x\.npy.*float32.*<f8/);
    expect(() => readNpy(edit('False', 'True '), 'x.npy')).toThrow(/C order/);
    expect(() => readNpy(good, 'x.npy', [1, 4, 2, 3])).toThrow(/expected shape \[1, 4, 2, 3\], got \[2, 3\]/);
    expect(() => readNpy(good.subarray(0, good.length - 4), 'x.npy')).toThrow(/24 data bytes/);
    expect(() => readNpy(Buffer.from('not a numpy file'), 'x.npy')).toThrow(expect.objectContaining({ code: 'input.invalid' }));
  });
});
