import { decodeRecognizerOutputs, type RecognizedScene, type RecognizerLabels } from '../../../models/eval/recognizer.js';
import { attributeRates, judgeScene } from '../../../models/eval/scene.judge.js';
import type { Scene } from '../../../models/world/scene.js';

const redCircleLeftOfCat: Scene = {
  axis: 'horizontal',
  objects: [{ name: 'circle', color: 'red', size: 'small' }, { name: 'cat', color: null, size: 'big' }],
};

describe('GenEval-style judging of a generated image', () => {
  it('marks everything right when the recognizer sees the prompted scene', () => {
    expect(judgeScene(redCircleLeftOfCat, redCircleLeftOfCat)).toEqual({ object: true, count: true, color: true, size: true, position: true, all: true });
  });

  it('fails only position when the objects are swapped, and only colour when a colour is wrong', () => {
    const swapped: RecognizedScene = { axis: 'horizontal', objects: [redCircleLeftOfCat.objects[1]!, redCircleLeftOfCat.objects[0]!] };
    expect(judgeScene(redCircleLeftOfCat, swapped)).toEqual({ object: true, count: true, color: true, size: true, position: false, all: false });
    const vertical: RecognizedScene = { ...redCircleLeftOfCat, axis: 'vertical' };
    expect(judgeScene(redCircleLeftOfCat, vertical)).toMatchObject({ position: false, all: false, color: true });
    const blue: RecognizedScene = { axis: 'horizontal', objects: [{ name: 'circle', color: 'blue', size: 'small' }, redCircleLeftOfCat.objects[1]!] };
    expect(judgeScene(redCircleLeftOfCat, blue)).toEqual({ object: true, count: true, color: false, size: true, position: true, all: false });
  });

  it('identifies objects by name, as GenEval does: two circles with colours exchanged between sizes fail only all-correct', () => {
    const prompt: Scene = { axis: 'vertical', objects: [{ name: 'circle', color: 'red', size: 'big' }, { name: 'circle', color: 'blue', size: 'small' }] };
    const exchanged: RecognizedScene = { axis: 'vertical', objects: [{ name: 'circle', color: 'blue', size: 'big' }, { name: 'circle', color: 'red', size: 'small' }] };
    const j = judgeScene(prompt, exchanged);
    // a red circle and a blue circle are there, and a big and a small one: colour and size pass on their own;
    // which colour goes with which size is what all-correct checks
    expect(j).toEqual({ object: true, count: true, color: true, size: true, position: true, all: false });
  });

  it('fails colour when the colours sit on the wrong objects (attribute binding)', () => {
    const prompt: Scene = { axis: 'horizontal', objects: [{ name: 'circle', color: 'red', size: 'small' }, { name: 'square', color: 'blue', size: 'small' }] };
    const bound: RecognizedScene = { axis: 'horizontal', objects: [{ name: 'circle', color: 'blue', size: 'small' }, { name: 'square', color: 'red', size: 'small' }] };
    expect(judgeScene(prompt, bound)).toEqual({ object: true, count: true, color: false, size: true, position: true, all: false });
  });

  it('counts missing and extra objects', () => {
    const one: RecognizedScene = { axis: null, objects: [redCircleLeftOfCat.objects[0]!] };
    expect(judgeScene(redCircleLeftOfCat, one)).toEqual({ object: false, count: false, color: false, size: false, position: false, all: false });
    const three: RecognizedScene = { axis: 'horizontal', objects: [...redCircleLeftOfCat.objects, { name: 'dog', color: null, size: 'small' }] };
    expect(judgeScene(redCircleLeftOfCat, three)).toEqual({ object: true, count: false, color: true, size: true, position: true, all: false });
  });

  it('leaves colour out for emoji-only prompts and position out for one object', () => {
    const cat: Scene = { axis: null, objects: [{ name: 'cat', color: null, size: 'big' }] };
    expect(judgeScene(cat, cat)).toEqual({ object: true, count: true, color: null, size: true, position: null, all: true });
    // a 'none' label from the recognizer never matches
    expect(judgeScene(cat, { axis: null, objects: [{ name: 'cat', color: null, size: 'none' }] })).toMatchObject({ size: false, all: false });
  });

  it('averages each attribute over the prompts it applies to', () => {
    const cat: Scene = { axis: null, objects: [{ name: 'cat', color: null, size: 'big' }] };
    const { rates, counts } = attributeRates([
      judgeScene(cat, cat),
      judgeScene(redCircleLeftOfCat, { axis: 'horizontal', objects: [...redCircleLeftOfCat.objects].reverse() }),
    ]);
    expect(counts).toEqual({ object: 2, count: 2, color: 1, size: 2, position: 1, all: 2 });
    expect(rates).toEqual({ object: 1, count: 1, color: 1, size: 1, position: 0, all: 0.5 });
    expect(attributeRates([]).rates.all).toBeNull();
  });
});

describe('decoding the recognizer outputs (fake logits)', () => {
  const labels: RecognizerLabels = {
    names: ['none', 'circle', 'cat'], colors: ['none', 'red', 'blue'], sizes: ['none', 'small', 'big'],
    axes: ['horizontal', 'vertical'], counts: [1, 2, 3], slots: 3,
  };
  /** One-hot logits [B, ...rest, size] from the chosen index per row. */
  const oneHot = (picks: number[], size: number, dims: number[]): { data: Float32Array; dims: number[] } => {
    const data = new Float32Array(picks.length * size).fill(-1);
    picks.forEach((p, row) => { data[row * size + p] = 5; });
    return { data, dims };
  };

  it('reads count, axis and the first `count` slots, colour none as null, axis null for one object', () => {
    const scenes = decodeRecognizerOutputs({
      count_logits: oneHot([1, 0], 3, [2, 3]),                               // 2 objects; 1 object
      axis_logits: oneHot([1, 1], 2, [2, 2]),                                // vertical (ignored for image 2)
      name_logits: oneHot([1, 2, 0, 2, 0, 0], 3, [2, 3, 3]),                 // circle, cat | cat
      color_logits: oneHot([2, 0, 0, 0, 0, 0], 3, [2, 3, 3]),                // blue, none | none
      size_logits: oneHot([2, 1, 0, 1, 0, 0], 3, [2, 3, 3]),                 // big, small | small
    }, labels);
    expect(scenes).toEqual([
      { axis: 'vertical', objects: [{ name: 'circle', color: 'blue', size: 'big' }, { name: 'cat', color: null, size: 'small' }] },
      { axis: null, objects: [{ name: 'cat', color: null, size: 'small' }] },
    ]);
  });

  it('refuses outputs of the wrong shape', () => {
    expect(() => decodeRecognizerOutputs({
      count_logits: oneHot([0], 3, [1, 3]), axis_logits: oneHot([0], 2, [1, 2]),
      name_logits: oneHot([0, 0], 3, [1, 2, 3]), color_logits: oneHot([0, 0, 0], 3, [1, 3, 3]), size_logits: oneHot([0, 0, 0], 3, [1, 3, 3]),
    }, labels)).toThrow('Expected recognizer output `name_logits` of shape [1, 3, 3], got [1, 2, 3]');
  });
});
