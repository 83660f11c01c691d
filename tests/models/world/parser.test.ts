import { HELD_OUT } from '../../../models/world/compositional.js';
import { captionsFor, sceneToPrompt } from '../../../models/world/grammar.js';
import { sampleScene, sampleSceneWith } from '../../../models/world/layout.js';
import { parseCaption } from '../../../models/world/parser.js';
import { hashSeed, mulberry32 } from '../../../models/world/random.js';
import { sceneKey } from '../../../models/world/scene.js';

describe('caption parser', () => {
  it('parses every generated caption back to its scene (3000 seeds)', () => {
    let parsed = 0;
    for (let i = 0; i < 3000; i += 1) {
      const rng = mulberry32(hashSeed('parser', i));
      const scene = i % 4 === 0 ? sampleSceneWith(rng, HELD_OUT[i % HELD_OUT.length]!) : sampleScene(rng);
      for (const caption of [...captionsFor(scene, rng), sceneToPrompt(scene)]) {
        const back = parseCaption(caption);
        if (back === null || sceneKey(back) !== sceneKey(scene)) throw new Error(`"${caption}" parsed to ${JSON.stringify(back)}`);
        parsed += 1;
      }
    }
    expect(parsed).toBe(18000);
  });

  it('reads "A left of B" and "B right of A" as one scene', () => {
    const a = parseCaption('a small red circle to the left of a big cat');
    expect(a).toEqual({
      axis: 'horizontal',
      objects: [{ name: 'circle', color: 'red', size: 'small' }, { name: 'cat', color: null, size: 'big' }],
    });
    expect(parseCaption('a large cat on the right of a little red circle')).toEqual(a);
    expect(parseCaption('a big cat beneath a tiny red circle')).toEqual({ ...a, axis: 'vertical' });
  });

  it('tolerates the captioner post-processing: a capital, commas and a full stop', () => {
    expect(parseCaption('A big blue star.')).toEqual({ axis: null, objects: [{ name: 'star', color: 'blue', size: 'big' }] });
    expect(parseCaption('A small dog, a big cat and a tiny red heart from left to right.')?.objects.map((o) => o.name))
      .toEqual(['dog', 'cat', 'heart']);
  });

  it('returns null for anything outside the grammar', () => {
    for (const text of [
      '', '   ', '.', 'hello world', 'a cat', 'a big cat left of', 'a big red cat', 'a big circle',
      'a big cat left of a small dog left of', 'a big cat to the left of a small dog above a tiny fish',
      'a big cat and a small dog', 'a big blue hexagon', 'the big cat', 'a big cat left of a small dog extra',
      'a small red circle to the top of a big cat', 'two big cats',
    ]) {
      expect(parseCaption(text)).toBeNull();
    }
  });
});
