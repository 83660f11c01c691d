import { describeHeldOut, HELD_OUT, heldOutIn } from '../../../models/world/compositional.js';
import { sampleScene, sampleSceneWith } from '../../../models/world/layout.js';
import { hashSeed, mulberry32 } from '../../../models/world/random.js';
import type { Scene } from '../../../models/world/scene.js';

const cat = { name: 'cat', color: null, size: 'big' } as const;
const dog = { name: 'dog', color: null, size: 'small' } as const;
const star = { name: 'star', color: 'red', size: 'small' } as const;

describe('held-out combinations', () => {
  it('finds a held-out relation adjacent or not, only in its own order and axis', () => {
    expect(heldOutIn({ axis: 'horizontal', objects: [cat, dog] }).map(describeHeldOut)).toEqual(['cat left of dog']);
    expect(heldOutIn({ axis: 'horizontal', objects: [cat, star, dog] }).map(describeHeldOut)).toEqual(['cat left of dog']);
    expect(heldOutIn({ axis: 'horizontal', objects: [dog, cat] })).toEqual([]);
    expect(heldOutIn({ axis: 'vertical', objects: [cat, dog] })).toEqual([]);
  });

  it('finds a held-out colour on a shape', () => {
    const scene: Scene = { axis: null, objects: [{ name: 'triangle', color: 'green', size: 'big' }] };
    expect(heldOutIn(scene).map(describeHeldOut)).toEqual(['green triangle']);
    expect(heldOutIn({ axis: null, objects: [{ name: 'triangle', color: 'red', size: 'big' }] })).toEqual([]);
  });

  it('keeps every held-out combination out of the scenes train, val and test draw', () => {
    const leaks = Array.from({ length: 5000 }, (_, i) => sampleScene(mulberry32(hashSeed('train', i)))).filter((s) => heldOutIn(s).length > 0);
    expect(leaks).toEqual([]);
  });

  it('draws compositional scenes that each contain the combination asked for', () => {
    const missing: string[] = [];
    for (let i = 0; i < 2000; i += 1) {
      const combo = HELD_OUT[i % HELD_OUT.length]!;
      const scene = sampleSceneWith(mulberry32(hashSeed('comp', i)), combo);
      if (!heldOutIn(scene).includes(combo)) missing.push(`${describeHeldOut(combo)}: ${JSON.stringify(scene)}`);
    }
    expect(missing).toEqual([]);
  });
});
