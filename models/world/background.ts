/** Background pixels for a `Background`: raw RGB, row-major, [H, W, 3]. */
import type { Background } from './layout.js';
import { mulberry32 } from './random.js';
import { CANVAS_SIZE, type Rgb } from './vocabulary.js';

const clampByte = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

export function backgroundPixels(background: Background, size = CANVAS_SIZE): Buffer {
  const pixels = Buffer.alloc(size * size * 3);
  const put = (i: number, c: Rgb): void => {
    pixels[i] = clampByte(c.r);
    pixels[i + 1] = clampByte(c.g);
    pixels[i + 2] = clampByte(c.b);
  };
  if (background.kind === 'plain') {
    for (let i = 0; i < pixels.length; i += 3) put(i, background.color);
  } else if (background.kind === 'gradient') {
    const { from, to, direction } = background;
    for (let y = 0; y < size; y += 1) {
      for (let x = 0; x < size; x += 1) {
        const t = direction === 'horizontal' ? x / (size - 1) : direction === 'vertical' ? y / (size - 1) : (x + y) / (2 * size - 2);
        put((y * size + x) * 3, { r: from.r + (to.r - from.r) * t, g: from.g + (to.g - from.g) * t, b: from.b + (to.b - from.b) * t });
      }
    }
  } else {
    // Grey noise (the same offset on all three channels), so it lightens or darkens without shifting hue.
    const rng = mulberry32(background.seed);
    const { color, amplitude } = background;
    for (let i = 0; i < pixels.length; i += 3) {
      const d = (rng() + rng() - 1) * amplitude;   // triangular in [-amplitude, amplitude]
      put(i, { r: color.r + d, g: color.g + d, b: color.b + d });
    }
  }
  return pixels;
}
