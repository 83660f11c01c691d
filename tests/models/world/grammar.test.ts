import { captionsFor, grammarWords, sceneToPrompt } from '../../../models/world/grammar.js';
import { sampleScene, sampleSceneWith } from '../../../models/world/layout.js';
import { HELD_OUT } from '../../../models/world/compositional.js';
import { hashSeed, mulberry32 } from '../../../models/world/random.js';
import type { Scene } from '../../../models/world/scene.js';
import { COLOR_NAMES, OBJECT_NAMES } from '../../../models/world/vocabulary.js';

const twoObjects: Scene = {
  axis: 'horizontal',
  objects: [{ name: 'circle', color: 'red', size: 'small' }, { name: 'cat', color: null, size: 'big' }],
};

describe('caption grammar', () => {
  it('writes five different lower-case captions without punctuation for every scene', () => {
    const vocabulary = new Set(grammarWords(OBJECT_NAMES, COLOR_NAMES));
    const problems: string[] = [];
    for (let i = 0; i < 1000; i += 1) {
      const rng = mulberry32(hashSeed('grammar', i));
      const scene = i % 10 === 0 ? sampleSceneWith(rng, HELD_OUT[i % HELD_OUT.length]!) : sampleScene(rng);
      const captions = captionsFor(scene, rng);
      if (captions.length !== 5 || new Set(captions).size !== 5) problems.push(`not five different: ${captions.join(' | ')}`);
      for (const caption of captions) {
        if (!/^[a-z]+( [a-z]+)*$/.test(caption)) problems.push(`not lower-case words: "${caption}"`);
        if (caption.split(' ').some((word) => !vocabulary.has(word))) problems.push(`word outside grammarWords: "${caption}"`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('varies word order and synonyms across the five', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i += 1) for (const c of captionsFor(twoObjects, mulberry32(i))) seen.add(c);
    expect(seen).toContain('a small red circle to the left of a big cat');
    expect(seen).toContain('a big cat to the right of a small red circle');
    expect(seen).toContain('there is a tiny red circle left of a large cat');
    expect(seen).toContain('a large cat and a little red circle from right to left');
    expect(seen.size).toBeGreaterThan(40);
  });

  it('is deterministic for a seed', () => {
    expect(captionsFor(twoObjects, mulberry32(7))).toEqual(captionsFor(twoObjects, mulberry32(7)));
  });

  it('turns a scene into one plain prompt', () => {
    expect(sceneToPrompt(twoObjects)).toBe('a small red circle to the left of a big cat');
    expect(sceneToPrompt({ axis: null, objects: [{ name: 'star', color: 'blue', size: 'big' }] })).toBe('a big blue star');
    expect(sceneToPrompt({
      axis: 'vertical',
      objects: [{ name: 'dog', color: null, size: 'small' }, ...twoObjects.objects],
    })).toBe('a small dog above a small red circle which is above a big cat');
  });
});
