import { PictalkError } from '../../common/errors.js';
import { encodeAsDecoded } from '../../inference/encode-as-decoded.js';

const later = <T>(ms: number, value: T): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(value), ms));

describe('encodeAsDecoded', () => {
  it('encodes what is decoded so far as one batch, the rest as it comes, each result in its item\'s slot', async () => {
    const calls: number[][] = [];
    const { outcomes, encodingMs } = await encodeAsDecoded([later(5, 'a'), Promise.resolve('b'), later(40, 'c')], async (indices, decoded) => {
      calls.push(indices);
      return decoded.map((d) => d.toUpperCase());
    });
    expect(outcomes).toEqual(['A', 'B', 'C']);
    expect(calls[0]).toEqual([1]);                       // the first decode done starts encoding at once
    expect(calls.flat().sort()).toEqual([0, 1, 2]);      // each item encoded once
    expect(encodingMs).toBeGreaterThanOrEqual(0);
  });

  it('keeps a bad input\'s error in its slot and fails the whole call for anything else, after every decode settled', async () => {
    const bad = new PictalkError('input.unsupported', 'not an image');
    const { outcomes } = await encodeAsDecoded([Promise.reject(bad), later(5, 1)], async (_i, decoded) => decoded.map((d) => d * 2));
    expect(outcomes).toEqual([bad, 2]);
    let slowSettled = false;
    const slow = later(30, 3).then((v) => { slowSettled = true; return v; });
    await expect(encodeAsDecoded([Promise.reject(new Error('disk gone')), slow], async (_i, d) => d)).rejects.toThrow('disk gone');
    expect(slowSettled).toBe(true);
    await expect(encodeAsDecoded([Promise.resolve(1)], async () => { throw new Error('encoder broke'); })).rejects.toThrow('encoder broke');
  });

  it('checks for a cancel before each encoder call', async () => {
    await expect(encodeAsDecoded([Promise.resolve(1)], async (_i, d) => d, () => { throw new PictalkError('job.cancelled', 'cancelled'); }))
      .rejects.toMatchObject({ code: 'job.cancelled' });
  });
});
