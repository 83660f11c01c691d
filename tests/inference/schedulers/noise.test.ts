import { GaussianNoise, gaussianNoise } from '../../../inference/schedulers/noise.js';

describe('seeded Gaussian noise', () => {
  it('gives the same numbers for the same seed and stream, others for another', () => {
    const a = gaussianNoise(42).fill(new Float32Array(1000));
    const b = gaussianNoise(42).fill(new Float32Array(1000));
    expect(b).toEqual(a);
    expect(gaussianNoise(43).fill(new Float32Array(1000))).not.toEqual(a);
    expect(gaussianNoise(42, 1).fill(new Float32Array(1000))).not.toEqual(a);
  });

  it('continues its stream across fills (two halves equal one whole)', () => {
    const whole = gaussianNoise(9).fill(new Float32Array(101));
    const source = gaussianNoise(9);
    const first = source.fill(new Float32Array(50));
    const second = source.fill(new Float32Array(51));
    expect([...first, ...second]).toEqual([...whole]);
  });

  it('is standard normal: mean 0, variance 1, symmetric tails', () => {
    const n = 200_000;
    const values = gaussianNoise(2024).fill(new Float32Array(n));
    let sum = 0;
    let squares = 0;
    let beyond2 = 0;
    for (const v of values) { sum += v; squares += v * v; if (Math.abs(v) > 2) beyond2 += 1; }
    const mean = sum / n;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(squares / n - mean * mean - 1)).toBeLessThan(0.015);
    expect(beyond2 / n).toBeCloseTo(0.0455, 2);
  });

  it('refuses a seed outside 0..2^32-1', () => {
    expect(() => new GaussianNoise(-1)).toThrow(/`seed`/);
    expect(() => new GaussianNoise(2 ** 32)).toThrow(expect.objectContaining({ code: 'input.invalid' }));
    expect(() => new GaussianNoise(1.5)).toThrow(/1\.5/);
  });
});
