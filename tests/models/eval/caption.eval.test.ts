import { ceilingCaptions, exactRate, textScores } from '../../../models/eval/caption.eval.js';
import { drawSplit, evalPrompts } from '../../../models/eval/heldout.set.js';
import { heldOutIn } from '../../../models/world/compositional.js';
import { planImage } from '../../../models/world/dataset.writer.js';
import { parseCaption } from '../../../models/world/parser.js';
import { scenesEqual } from '../../../models/world/scene.js';
import { WorldRenderer } from '../../../models/world/world.renderer.js';

describe('the held-out set and the caption ceiling', () => {
  let renderer: WorldRenderer;
  beforeAll(async () => { renderer = await WorldRenderer.create(); });

  it('draws the scenes and captions the world writer plans for (seed, split, index), the same on every run', async () => {
    const a = await drawSplit(renderer, 1234, 'test', 6);
    const b = await drawSplit(renderer, 1234, 'test', 6);
    a.forEach((image, k) => expect(image.png.equals(b[k]!.png)).toBe(true));
    a.forEach((image, index) => {
      expect(image.references).toEqual(planImage(1234, 'test', index).captions);
      expect(scenesEqual(parseCaption(image.references[0]!)!, image.scene)).toBe(true);
    });
    expect((await drawSplit(renderer, 1235, 'test', 1))[0]!.png.equals(a[0]!.png)).toBe(false);
  });

  it('picks prompts by category: one object, two objects, held-out combinations; seeds from the eval seed', () => {
    const prompts = evalPrompts(1234, 5);
    const by = (c: string) => prompts.filter((p) => p.category === c);
    expect(by('single').every((p) => p.scene.objects.length === 1 && p.split === 'test')).toBe(true);
    expect(by('pair').every((p) => p.scene.objects.length === 2 && p.split === 'test')).toBe(true);
    expect(by('compositional').every((p) => heldOutIn(p.scene).length > 0)).toBe(true);
    expect(prompts).toHaveLength(15);
    expect(prompts.every((p) => scenesEqual(parseCaption(p.prompt)!, p.scene))).toBe(true);
    expect(new Set(prompts.map((p) => p.seed)).size).toBe(15);
    expect(evalPrompts(1234, 5)).toEqual(prompts);
    expect(evalPrompts(1234, 7).slice(0, 5)).toEqual(prompts.slice(0, 5));   // more prompts keep the first ones
  });

  it('ceiling captions state the scene exactly, are none of the references, and score well below 1', async () => {
    const images = await drawSplit(renderer, 1234, 'test', 60);
    const { captions, repeats } = ceilingCaptions(images, 1234);
    expect(repeats).toBe(0);
    captions.forEach((caption, i) => expect(images[i]!.references).not.toContain(caption));
    expect(exactRate(captions, images)).toBe(1);
    const scores = textScores(captions, images.map((i) => i.references));
    expect(scores.bleu[3]).toBeGreaterThan(0.3);
    expect(scores.bleu[3]).toBeLessThan(1);
    // a reference itself scores 1 against a set that holds it
    expect(textScores(images.map((i) => i.references[0]!), images.map((i) => i.references)).bleu[3]).toBeCloseTo(1, 9);
  });

  it('counts an unparseable or wrong caption as not exact, and tolerates the captioner post-processing', async () => {
    const images = await drawSplit(renderer, 7, 'test', 2);
    const post = (text: string): string => `${text[0]!.toUpperCase()}${text.slice(1)}.`;
    expect(exactRate([post(images[0]!.references[2]!), 'A a a.'], images)).toBe(0.5);
    expect(exactRate([images[1]!.references[0]!, images[0]!.references[0]!], images)).toBe(0);
  });
});
