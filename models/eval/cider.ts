/**
 * Corpus CIDEr-D as coco-caption's CiderD scorer computes it (df mode "corpus", n = 4, sigma = 6):
 * tf-idf vectors of 1..4-grams with document frequencies over the images' reference sets (an n-gram counts once
 * per image), clipped cosine similarity (min(hyp, ref) * ref), a Gaussian length penalty exp(-delta^2 / 2 sigma^2),
 * the mean over n, averaged over the references, times 10; the corpus score is the mean over images.
 * The length is counted in bigrams, as the reference code does (`if n == 1: length += term_freq`); for captions of
 * two or more words the difference of lengths is the same as in words.
 * With one image every idf is log(1) - log(df) = 0 and the score is 0: corpus idf needs a corpus.
 * @see https://github.com/vrama91/cider (pyciderevalcap/ciderD/ciderD_scorer.py), Vedantam et al. CVPR 2015
 */

const N = 4;
const SIGMA = 6;

function ngrams(words: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= N; k += 1) {
    for (let i = 0; i + k <= words.length; i += 1) {
      const gram = words.slice(i, i + k).join(' ');
      counts.set(gram, (counts.get(gram) ?? 0) + 1);
    }
  }
  return counts;
}

interface Vector {
  weights: Array<Map<string, number>>;   // per n-1: n-gram -> tf * idf
  norms: number[];
  length: number;                        // bigram count (see above)
}

/**
 * @param candidates one tokenized candidate per image (tokenize() of bleu.ts, the same on both sides)
 * @param references the tokenized references of each image
 * @returns the corpus score and each image's score
 */
export function corpusCiderD(candidates: readonly string[][], references: readonly string[][][]): { score: number; perImage: number[] } {
  if (candidates.length !== references.length) {
    throw new Error(`Expected one reference set per candidate, got ${candidates.length} candidates and ${references.length} sets`);
  }
  if (candidates.length === 0) return { score: 0, perImage: [] };
  const refCounts = references.map((refs, i) => {
    if (refs.length === 0) throw new Error(`Image ${i} has no references`);
    return refs.map(ngrams);
  });
  const documentFrequency = new Map<string, number>();
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const counts of refs) for (const gram of counts.keys()) seen.add(gram);
    for (const gram of seen) documentFrequency.set(gram, (documentFrequency.get(gram) ?? 0) + 1);
  }
  const logImages = Math.log(references.length);

  const vector = (counts: Map<string, number>): Vector => {
    const weights = Array.from({ length: N }, () => new Map<string, number>());
    const squares = new Array<number>(N).fill(0);
    let length = 0;
    for (const [gram, tf] of counts) {
      const n = gram.split(' ').length - 1;
      const weight = tf * (logImages - Math.log(Math.max(1, documentFrequency.get(gram) ?? 0)));
      weights[n]!.set(gram, weight);
      squares[n]! += weight * weight;
      if (n === 1) length += tf;
    }
    return { weights, norms: squares.map(Math.sqrt), length };
  };

  const similarity = (hyp: Vector, ref: Vector): number[] => {
    const delta = hyp.length - ref.length;
    const penalty = Math.exp(-(delta * delta) / (2 * SIGMA * SIGMA));
    return hyp.weights.map((grams, n) => {
      let value = 0;
      for (const [gram, weight] of grams) {
        const r = ref.weights[n]!.get(gram) ?? 0;
        value += Math.min(weight, r) * r;       // CIDEr-D's clipping
      }
      const norms = hyp.norms[n]! * ref.norms[n]!;
      if (norms !== 0) value /= norms;
      return value * penalty;
    });
  };

  const perImage = candidates.map((candidate, i) => {
    const hyp = vector(ngrams(candidate));
    const sums = new Array<number>(N).fill(0);
    for (const counts of refCounts[i]!) similarity(hyp, vector(counts)).forEach((v, n) => { sums[n]! += v; });
    const mean = sums.reduce((a, b) => a + b, 0) / N;
    return (mean / refCounts[i]!.length) * 10;
  });
  return { score: perImage.reduce((a, b) => a + b, 0) / perImage.length, perImage };
}
