import { tokenize } from '../../../models/eval/bleu.js';
import { corpusCiderD } from '../../../models/eval/cider.js';

// Four images with three references each; expected values from coco-caption's CIDEr-D reference code
// (vrama91/cider pyciderevalcap/ciderD/ciderD_scorer.py, ported to Python 3 only by renaming iteritems/xrange),
// df mode "corpus", on whitespace-split lower-case text, the same tokens tokenize() gives here.
const CASES: Array<[string, string[]]> = [
  ['a small red circle left of a big cat', ['a small red circle to the left of a big cat', 'a big cat right of a tiny red circle', 'there is a little red circle left of a large cat']],
  ['a big dog', ['a big dog', 'there is a large dog', 'a picture of a big dog']],
  ['a blue star above a star', ['a small blue star above a big green star', 'a big green star below a small blue star']],
  ['a tree', ['a small tree on its own', 'just a tiny tree', 'a little tree alone']],
];
const REFERENCE_CORPUS = 3.48167749742041;
const REFERENCE_PER_IMAGE = [4.8047048881302965, 4.40129159926921, 3.3377884569191902, 1.382925045362944];

describe('corpus CIDEr-D (coco-caption definition)', () => {
  it('matches the reference implementation image by image', () => {
    const { score, perImage } = corpusCiderD(CASES.map(([c]) => tokenize(c)), CASES.map(([, refs]) => refs.map(tokenize)));
    expect(score).toBeCloseTo(REFERENCE_CORPUS, 10);
    perImage.forEach((value, i) => expect(value).toBeCloseTo(REFERENCE_PER_IMAGE[i]!, 10));
  });

  it('gives 10 to a candidate equal to every reference, and 0 with a single image (corpus idf is all zero)', () => {
    // no n-gram shared between the images, and four words each, so every n has a non-zero idf vector
    const a = tokenize('small red circle above');
    const b = tokenize('big cat right of');
    expect(corpusCiderD([a, b], [[a, a], [b]]).score).toBeCloseTo(10, 10);
    expect(corpusCiderD([tokenize('a red circle')], [[tokenize('a red circle')]]).score).toBe(0);
  });

  it('refuses mismatched inputs', () => {
    expect(() => corpusCiderD([['a']], [])).toThrow(/one reference set per candidate/);
    expect(() => corpusCiderD([['a']], [[]])).toThrow(/no references/);
  });
});
