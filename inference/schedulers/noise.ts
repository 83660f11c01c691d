/**
 * Seeded standard normal noise: a counter-based hash (each value depends only on the seed and its index, so a
 * stream can be split or replayed) and Box-Muller. The same seed gives the same numbers on every run; V8's
 * Math.log/cos/sin are its own deterministic ports, so machines agree too.
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { NoiseSource } from './scheduler.js';

const TWO_PI = 2 * Math.PI;
const INV_2_32 = 1 / 4294967296;

/** A 32-bit finalizer (lowbias32): a bijection with good avalanche. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

export class GaussianNoise implements NoiseSource {
  private counter = 0;
  private spare: number | null = null;
  private readonly key: number;

  /** `seed`: an integer from 0 to 2^32-1; `stream` separates independent streams under one seed. */
  constructor(readonly seed: number, readonly stream = 0) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new PictalkError('input.invalid', `Expected \`seed\` to be an integer from 0 to 4294967295, got ${describe(seed)}`);
    }
    this.key = mix32((seed ^ mix32(stream + 0x9e3779b9)) >>> 0);
  }

  /** A uniform in (0, 1) from the counter: two hash rounds keyed by the seed. */
  private uniform(): number {
    const h = mix32((mix32((this.counter++ + this.key) >>> 0) ^ this.key) >>> 0);
    return (h + 0.5) * INV_2_32;
  }

  next(): number {
    if (this.spare !== null) {
      const value = this.spare;
      this.spare = null;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(this.uniform()));
    const angle = TWO_PI * this.uniform();
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  fill(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.next();
    return out;
  }
}

export function gaussianNoise(seed: number, stream = 0): GaussianNoise {
  return new GaussianNoise(seed, stream);
}
