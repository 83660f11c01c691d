import sharp from 'sharp';
import { layoutScene, sampleScene } from '../../../models/world/layout.js';
import { hashSeed, mulberry32 } from '../../../models/world/random.js';
import type { Scene } from '../../../models/world/scene.js';
import { WorldRenderer } from '../../../models/world/world.renderer.js';

let renderer: WorldRenderer;
beforeAll(async () => { renderer = await WorldRenderer.create(); }, 30000);

const specFor = (i: number) => {
  const rng = mulberry32(hashSeed('render', i));
  return layoutScene(sampleScene(rng), rng);
};

describe('world renderer', () => {
  it('writes the same PNG bytes for the same seed, different ones for another', async () => {
    const a = await renderer.render(specFor(1));
    const b = await renderer.render(specFor(1));
    const c = await renderer.render(specFor(2));
    expect(a.png.equals(b.png)).toBe(true);
    expect(a.png.equals(c.png)).toBe(false);
  });

  it('writes 64x64 RGB PNGs with every box inside the canvas', async () => {
    for (let i = 0; i < 20; i += 1) {
      const { png, scene } = await renderer.render(specFor(i));
      const meta = await sharp(png).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 64, 64, 3]);
      for (const { box } of scene.objects) {
        expect(box.x).toBeGreaterThanOrEqual(0);
        expect(box.y).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width).toBeLessThanOrEqual(64);
        expect(box.y + box.height).toBeLessThanOrEqual(64);
        expect(Math.max(box.width, box.height)).toBeGreaterThanOrEqual(11);
      }
    }
  });

  it('paints a shape in its colour and an emoji where its box says', async () => {
    const scene: Scene = {
      axis: 'horizontal',
      objects: [{ name: 'circle', color: 'blue', size: 'big' }, { name: 'apple', color: null, size: 'big' }],
    };
    const spec = layoutScene(scene, mulberry32(3));
    const { pixels, scene: drawn } = renderer.draw(spec);
    const at = (x: number, y: number) => Array.from(pixels.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
    const circle = drawn.objects[0]!.box;
    const [r, g, b] = at(circle.x + Math.floor(circle.width / 2), circle.y + Math.floor(circle.height / 2));
    expect(b! - Math.max(r!, g!)).toBeGreaterThan(80);  // blue
    const apple = drawn.objects[1]!.box;
    const [ar, ag, ab] = at(apple.x + Math.floor(apple.width / 2), apple.y + Math.floor(apple.height * 0.6));
    expect(ar! - Math.max(ag!, ab!)).toBeGreaterThan(80); // the Noto apple is red
  });
});
