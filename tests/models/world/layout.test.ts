import { layoutScene, sampleScene } from '../../../models/world/layout.js';
import { hashSeed, mulberry32 } from '../../../models/world/random.js';
import { CANVAS_SIZE, SIZE_PIXELS } from '../../../models/world/vocabulary.js';

describe('layout', () => {
  it('places objects inside the canvas, in axis order, never overlapping, at their size', () => {
    const counts = [0, 0, 0, 0];
    const problems: string[] = [];  // collected, not one expect per check: 3000 scenes x many checks is slow in Jest
    for (let i = 0; i < 3000; i += 1) {
      const rng = mulberry32(hashSeed('layout', i));
      const scene = sampleScene(rng);
      const spec = layoutScene(scene, rng);
      const where = `scene ${i} ${JSON.stringify(spec.objects)}`;
      counts[scene.objects.length] = (counts[scene.objects.length] ?? 0) + 1;
      if (spec.objects.some((o, k) => o.object !== scene.objects[k])) problems.push(`${where}: objects out of order`);
      for (const { object, cell } of spec.objects) {
        if (cell.x < 0 || cell.y < 0 || cell.x + cell.width > CANVAS_SIZE || cell.y + cell.height > CANVAS_SIZE) problems.push(`${where}: off the canvas`);
        if (cell.width !== cell.height) problems.push(`${where}: not square`);
        if (cell.width < SIZE_PIXELS[object.size].min || cell.width > SIZE_PIXELS[object.size].max) problems.push(`${where}: wrong size`);
      }
      for (let k = 1; k < spec.objects.length; k += 1) {
        const a = spec.objects[k - 1]!.cell;
        const b = spec.objects[k]!.cell;
        const apart = scene.axis === 'horizontal' ? a.x + a.width < b.x : a.y + a.height < b.y;
        if (!apart) problems.push(`${where}: objects ${k - 1} and ${k} overlap or are out of order`);
      }
    }
    expect(problems).toEqual([]);
    // every object count is drawn
    expect(counts.slice(1).every((n) => n > 300)).toBe(true);
  });
});
