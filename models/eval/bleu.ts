/**
 * Corpus BLEU-1..4 exactly as coco-caption's BleuScorer computes it (option "closest"):
 * clipped n-gram counts against the maximum count over all references, summed over the corpus; brevity penalty
 * against the reference length closest to each candidate (the shorter one on a tie); the same tiny/small
 * constants, so a zero match gives a tiny number rather than a division by zero.
 * @see https://github.com/tylin/coco-caption/blob/master/pycocoevalcap/bleu/bleu_scorer.py
 */

const TINY = 1e-15;
const SMALL = 1e-9;

/** Tokenize one caption the same way on both sides: lower case, punctuation removed, split on whitespace. */
export function tokenize(caption: string): string[] {
  return caption
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s']/gu, ' ')
    .split(/\s+/)
    .filter((word) => word.length > 0);
}

function ngramCounts(words: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const gram = `${k}\u0000${words.slice(i, i + k).join('\u0001')}`;
      counts.set(gram, (counts.get(gram) ?? 0) + 1);
    }
  }
  return counts;
}

export interface BleuScores {
  bleu: [number, number, number, number];    // BLEU-1 .. BLEU-4
  candidateLength: number;
  referenceLength: number;
}

/**
 * @param candidates one tokenized candidate per image
 * @param references the tokenized references of each image (any number, usually five)
 */
export function corpusBleu(candidates: readonly string[][], references: readonly string[][][], n = 4): BleuScores {
  if (candidates.length !== references.length) {
    throw new Error(`Expected one reference set per candidate, got ${candidates.length} candidates and ${references.length} sets`);
  }
  const guess = new Array<number>(n).fill(0);
  const correct = new Array<number>(n).fill(0);
  let candidateLength = 0;
  let referenceLength = 0;

  candidates.forEach((candidate, index) => {
    const refs = references[index] ?? [];
    if (refs.length === 0) throw new Error(`Image ${index} has no references`);
    const maxCounts = new Map<string, number>();
    for (const ref of refs) {
      for (const [gram, count] of ngramCounts(ref, n)) maxCounts.set(gram, Math.max(maxCounts.get(gram) ?? 0, count));
    }
    const length = candidate.length;
    // closest reference length; on a tie the shorter one, as min((|l - len|, l)) does
    let closest = refs[0]!.length;
    for (const ref of refs) {
      const l = ref.length;
      if (Math.abs(l - length) < Math.abs(closest - length) || (Math.abs(l - length) === Math.abs(closest - length) && l < closest)) closest = l;
    }
    candidateLength += length;
    referenceLength += closest;
    for (let k = 0; k < n; k++) guess[k]! += Math.max(0, length - k);
    for (const [gram, count] of ngramCounts(candidate, n)) {
      const k = Number(gram.slice(0, gram.indexOf('\u0000'))) - 1;
      correct[k]! += Math.min(maxCounts.get(gram) ?? 0, count);
    }
  });

  const bleu: number[] = [];
  let product = 1;
  for (let k = 0; k < n; k++) {
    product *= (correct[k]! + TINY) / (guess[k]! + SMALL);
    bleu.push(product ** (1 / (k + 1)));
  }
  const ratio = (candidateLength + TINY) / (referenceLength + SMALL);
  if (ratio < 1) for (let k = 0; k < n; k++) bleu[k]! *= Math.exp(1 - 1 / ratio);
  return { bleu: bleu as BleuScores['bleu'], candidateLength, referenceLength };
}
