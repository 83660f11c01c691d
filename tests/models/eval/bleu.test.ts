import { readFileSync } from 'node:fs';
import { corpusBleu, tokenize } from '../../../models/eval/bleu.js';

const fixture = JSON.parse(readFileSync(new URL('../../fixtures/bleu/bleu-nltk.json', import.meta.url), 'utf8')) as {
  cases: { candidate: string[]; references: string[][] }[];
  bleu: number[];
};

describe('corpus BLEU (coco-caption definition)', () => {
  it('matches an independent implementation (NLTK corpus_bleu) on the same tokens', () => {
    const { bleu } = corpusBleu(fixture.cases.map((c) => c.candidate), fixture.cases.map((c) => c.references));
    bleu.forEach((value, k) => expect(value).toBeCloseTo(fixture.bleu[k]!, 9));
  });

  it('gives 1 for a candidate equal to a reference and penalises a short one', () => {
    const refs = [[tokenize('A small red circle left of a cat.'), tokenize('a cat right of a little red circle')]];
    expect(corpusBleu([tokenize('a small red circle left of a cat')], refs).bleu[3]).toBeCloseTo(1, 9);
    const short = corpusBleu([tokenize('a small red circle')], refs);
    expect(short.bleu[0]).toBeLessThan(1);
    expect(short.bleu[0]).toBeCloseTo(Math.exp(1 - 8 / 4), 6);
  });

  it('tokenizes both sides the same way: case and punctuation do not matter', () => {
    expect(tokenize('A Red circle, left of a CAT.')).toEqual(['a', 'red', 'circle', 'left', 'of', 'a', 'cat']);
  });

  it('refuses mismatched inputs', () => {
    expect(() => corpusBleu([['a']], [])).toThrow(/one reference set per candidate/);
  });
});
