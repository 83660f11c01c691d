import path from 'node:path';
import { loadClipTokenizer, type ClipTokenizer } from '../../inference/clip.tokenizer.js';
import {
  COMMA_BACKTRACK, MAX_PROMPT_CHUNKS, applyEmphasis, chunkPrompt, parsePromptWeights, planPrompt, type PromptPart,
} from '../../inference/prompt.weights.js';

// model_max_length 77 (chunks of 75), one pads with `<|endoftext|>` (SD 1.x), the other with `!` (SD 2.x)
const FIXTURES = path.join(process.cwd(), 'tests', 'fixtures', 'clip-tokenizer');

/** [text, weight] pairs, BREAK as ['BREAK', -1] the way A1111 writes it. */
const pairs = (parts: PromptPart[]): [string, number][] => parts.map((p) => (p.kind === 'break' ? ['BREAK', -1] : [p.text, p.weight]));

describe('parsing prompt weights as A1111 does', () => {
  // the examples of A1111's parse_prompt_attention docstring, with the results it documents
  it.each([
    ['normal text', [['normal text', 1]]],
    ['an (important) word', [['an ', 1], ['important', 1.1], [' word', 1]]],
    ['(unbalanced', [['unbalanced', 1.1]]],
    ['\\(literal\\]', [['(literal]', 1]]],
    ['(unnecessary)(parens)', [['unnecessaryparens', 1.1]]],
    ['a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).', [
      ['a ', 1], ['house', 1.5730000000000004], [' ', 1.1], ['on', 1], [' a ', 1.1], ['hill', 0.55],
      [', sun, ', 1.1], ['sky', 1.4641000000000006], ['.', 1.1],
    ]],
  ] as const)('%j', (prompt, expected) => {
    expect(pairs(parsePromptWeights(prompt))).toEqual(expected);
  });

  it('gives a plain prompt back whole with weight 1', () => {
    expect(pairs(parsePromptWeights('a small red circle to the left of a big cat'))).toEqual([['a small red circle to the left of a big cat', 1]]);
    expect(pairs(parsePromptWeights(''))).toEqual([['', 1]]);
  });

  it('multiplies nested brackets and divides by 1.1 for square ones', () => {
    expect(pairs(parsePromptWeights('((cat))'))).toEqual([['cat', 1.1 * 1.1]]);
    expect(pairs(parsePromptWeights('[[dog]]'))).toEqual([['dog', (1 / 1.1) * (1 / 1.1)]]);
    expect(pairs(parsePromptWeights('((red:1.5) ball)'))).toEqual([['red', 1.5 * 1.1], [' ball', 1.1]]);
    expect(pairs(parsePromptWeights('(a [b] c)'))).toEqual([['a ', 1.1], ['b', 1.1 / 1.1], [' c', 1.1]]);
  });

  it('keeps what A1111 keeps as text: a lone closer, a colon without a number, a weight with no opener', () => {
    expect(pairs(parsePromptWeights('a) b] c'))).toEqual([['a) b] c', 1]]);
    expect(pairs(parsePromptWeights('time: noon'))).toEqual([['time: noon', 1]]);
    expect(pairs(parsePromptWeights('(x:)'))).toEqual([['x:', 1.1]]);
    expect(pairs(parsePromptWeights('cat:1.3) dog'))).toEqual([['cat:1.3) dog', 1]]);
    expect(pairs(parsePromptWeights('[unclosed square'))).toEqual([['unclosed square', 1 / 1.1]]);
    expect(pairs(parsePromptWeights('a \\\\ b \\c'))).toEqual([['a \\ b c', 1]]); // `\\` is a backslash, a lone `\` is dropped
    expect(pairs(parsePromptWeights('(cat : 0.5 )'))).toEqual([['cat ', 0.5]]);
  });

  it('splits on BREAK, which brackets do not change', () => {
    expect(pairs(parsePromptWeights('a cat BREAK a dog'))).toEqual([['a cat', 1], ['BREAK', -1], ['a dog', 1]]);
    expect(pairs(parsePromptWeights('(a cat BREAK a dog)'))).toEqual([['a cat', 1.1], ['BREAK', -1], ['a dog', 1.1]]);
    expect(pairs(parsePromptWeights('BREAKFAST'))).toEqual([['BREAKFAST', 1]]);
  });

  it('refuses a weight outside 0 to 2, written or reached by nesting, naming the option', () => {
    expect(() => parsePromptWeights('a (x:99) b')).toThrow(expect.objectContaining({
      code: 'input.invalid', message: 'Expected the weight in `(x:99)` of `prompt` to be a number from 0 to 2, got `99`',
    }));
    expect(() => parsePromptWeights('(x:-0.5)', 'negativePrompt')).toThrow(expect.objectContaining({
      code: 'input.invalid', message: expect.stringContaining('of `negativePrompt` to be a number from 0 to 2, got `-0.5`'),
    }));
    expect(() => parsePromptWeights('((((((((x))))))))')).toThrow(expect.objectContaining({
      code: 'input.invalid', message: expect.stringMatching(/weight of `x` in `prompt` to be from 0 to 2 \(nested brackets multiply\), got 2\.1436/),
    }));
    expect(() => parsePromptWeights('((x:1.9))')).toThrow(expect.objectContaining({ code: 'input.invalid' }));
    expect(() => parsePromptWeights('(x:1.2.3)')).toThrow(expect.objectContaining({
      code: 'input.invalid', message: 'Expected a number after `:` in `(x:1.2.3)` of `prompt`, got `1.2.3`',
    }));
    expect(() => parsePromptWeights('(x:.)')).toThrow(expect.objectContaining({ code: 'input.invalid' }));
    // the edges are allowed
    expect(pairs(parsePromptWeights('(x:0) (y:2) (z:+.5)'))).toEqual([['x', 0], [' ', 1], ['y', 2], [' ', 1], ['z', 0.5]]);
    expect(pairs(parsePromptWeights('(((((((x)))))))'))).toEqual([['x', 1.1 ** 7]].map(([t, w]) => [t, expect.closeTo(w as number, 12)]));
  });
});

describe.each(['tokenizer-eot', 'tokenizer-bang'])('chunking prompts (%s)', (name) => {
  let tokenizer: ClipTokenizer;
  beforeAll(async () => { tokenizer = await loadClipTokenizer(path.join(FIXTURES, name)); });

  it('gives a plain prompt that fits exactly the ids of encode(), and no weights', () => {
    for (const prompt of ['', 'a small red circle to the left of a big cat', 'Ein Hund, ein Haus, 42 Äpfel!']) {
      const plan = chunkPrompt(parsePromptWeights(prompt), tokenizer);
      expect(plan.chunks).toBe(1);
      expect(plan.weights).toBeUndefined();
      expect(Array.from(plan.ids)).toEqual(Array.from(tokenizer.encode(prompt).ids));
      expect(plan.tokens).toBe(tokenizer.tokenize(prompt).length);
    }
  });

  it('tokenizes each weighted stretch on its own and weighs its tokens', () => {
    const plan = chunkPrompt(parsePromptWeights('a (red:1.5) circle'), tokenizer);
    const expected = [...tokenizer.tokenize('a '), ...tokenizer.tokenize('red'), ...tokenizer.tokenize(' circle')].map((t) => tokenizer.idOf(t));
    expect(Array.from(plan.ids.subarray(0, expected.length + 2))).toEqual([tokenizer.bosId, ...expected, tokenizer.eosId]);
    const red = tokenizer.tokenize('red').length;
    const a = tokenizer.tokenize('a ').length;
    expect(Array.from(plan.weights!.subarray(0, expected.length + 3))).toEqual([1, ...Array(a).fill(1), ...Array(red).fill(1.5), ...Array(expected.length - a - red).fill(1), 1, 1]);
    expect(plan.weights!.length).toBe(77);
  });

  it('splits a long prompt into chunks of 75, each wrapped in bos/eos and padded as the tokenizer pads', () => {
    const words = Array.from({ length: 100 }, (_, i) => ['cat', 'dog', 'house', 'tree'][i % 4]).join(' ');
    const all = tokenizer.tokenize(words).map((t) => tokenizer.idOf(t));
    expect(all.length).toBeGreaterThan(75);
    const plan = chunkPrompt(parsePromptWeights(words), tokenizer);
    expect(plan.chunks).toBe(Math.ceil(all.length / 75));
    expect(plan.weights).toBeUndefined();
    const first = Array.from(plan.ids.subarray(0, 77));
    const second = Array.from(plan.ids.subarray(77, 154));
    expect(first).toEqual([tokenizer.bosId, ...all.slice(0, 75), tokenizer.eosId]);
    const rest = all.slice(75, 150);
    expect(second).toEqual([tokenizer.bosId, ...rest, tokenizer.eosId, ...Array(75 - rest.length).fill(tokenizer.padId)]);
    expect(plan.tokens).toBe(all.length);
  });

  it('moves the words after a comma near the end of a full chunk into the next one (comma padding backtrack)', () => {
    const head = Array(70).fill('cat').join(' ');
    const prompt = `${head}, dog dog dog dog dog dog dog dog`;          // the comma is token 71 of 79
    const ids = tokenizer.tokenize(prompt).map((t) => tokenizer.idOf(t));
    const comma = ids.indexOf(tokenizer.tokenId(',</w>')!);
    expect(comma).toBeGreaterThan(75 - COMMA_BACKTRACK);
    const plan = chunkPrompt(parsePromptWeights(prompt), tokenizer);
    expect(plan.chunks).toBe(2);
    expect(Array.from(plan.ids.subarray(0, comma + 3))).toEqual([tokenizer.bosId, ...ids.slice(0, comma + 1), tokenizer.eosId]);
    expect(plan.ids[comma + 3]).toBe(tokenizer.padId);
    expect(Array.from(plan.ids.subarray(77, 77 + ids.length - comma + 1))).toEqual([tokenizer.bosId, ...ids.slice(comma + 1), tokenizer.eosId]);
  });

  it('starts a new chunk at BREAK', () => {
    const plan = chunkPrompt(parsePromptWeights('a cat BREAK a dog'), tokenizer);
    expect(plan.chunks).toBe(2);
    const cat = tokenizer.encode('a cat').ids;
    const dog = tokenizer.encode('a dog').ids;
    expect(Array.from(plan.ids)).toEqual([...Array.from(cat), ...Array.from(dog)]);
  });

  it('refuses more than three chunks, or more than one where the UNet fixes the text length', () => {
    const long = Array(300).fill('cat').join(' ');
    expect(() => planPrompt(long, tokenizer)).toThrow(expect.objectContaining({
      code: 'input.too_large', message: expect.stringMatching(/^Expected `prompt` to fit in 3 chunks of 75 tokens \(225 tokens.*got 4 chunks \(300 tokens\)$/),
    }));
    expect(planPrompt(Array(225).fill('cat').join(' '), tokenizer).chunks).toBe(MAX_PROMPT_CHUNKS);
    expect(() => planPrompt(Array(80).fill('cat').join(' '), tokenizer, 'negativePrompt', 1, true)).toThrow(expect.objectContaining({
      code: 'input.too_large', message: expect.stringMatching(/^Expected `negativePrompt` to fit in 75 tokens: this model's UNet takes a text of exactly 77 positions.*got 80 tokens$/),
    }));
    expect(() => planPrompt('a BREAK b', tokenizer, 'prompt', 1, true)).toThrow(expect.objectContaining({ message: expect.stringContaining('BREAK starts a new chunk') }));
  });
});

describe('applying emphasis to hidden states (A1111 original)', () => {
  it('scales each position by its weight and restores the chunk mean', () => {
    const dim = 3;
    const hidden = Float32Array.from([1, 2, 3, 4, 5, 6, -1, 0.5, 2]);
    const weights = Float32Array.from([1, 1.5, 0.5]);
    const before = hidden.reduce((a, b) => a + b, 0) / hidden.length;
    const scaled = Array.from(hidden, (v, i) => v * weights[Math.floor(i / dim)]!);
    const factor = before / (scaled.reduce((a, b) => a + b, 0) / scaled.length);
    expect(factor).toBeCloseTo(22.5 / 29.25, 12);    // rows sum to 6, 15 and 1.5
    expect(applyEmphasis(hidden, weights, dim)).toBe(true);
    Array.from(hidden).forEach((v, i) => expect(v).toBeCloseTo(scaled[i]! * factor, 5));
    expect(hidden.reduce((a, b) => a + b, 0) / hidden.length).toBeCloseTo(before, 5);
    // the weighted position moved relative to the others
    expect(hidden[3]! / hidden[0]!).toBeCloseTo(1.5 * 4, 5);
  });

  it('keeps the scaling without the rescale when the mean comes from values cancelling out', () => {
    // mean 0.01 before; weighting the first row by 1.4 moves it to 0.41 / 4: a factor of 0.1, outside [1/1.4, 1]
    const hidden = Float32Array.from([1, 1, -1, -0.96]);
    expect(applyEmphasis(hidden, Float32Array.from([1.4, 1]), 2)).toBe(false);
    expect(Array.from(hidden)).toEqual([1.4, 1.4, -1, Math.fround(-0.96)].map(Math.fround));
  });

  it('refuses a shape mismatch', () => {
    expect(() => applyEmphasis(new Float32Array(5), new Float32Array(2), 3)).toThrow(expect.objectContaining({ code: 'inference.failed' }));
  });
});
