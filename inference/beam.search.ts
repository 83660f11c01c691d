/**
 * Batched beam search, pure: no model, no I/O. It mirrors `beam()` of models/train/caption_beam.py, the reference,
 * step for step, for several images at once (one decoder call per step over every live hypothesis of every image):
 *
 * - each image starts with one hypothesis (no tokens, sum 0);
 * - each step, every live hypothesis proposes every token; candidates are ranked by `sum + logp` descending, ties by
 *   (live hypothesis index, token id) ascending, and the best `beam - finished` are kept; a kept `<eos>` candidate is
 *   finished, the rest stay live in rank order;
 * - an image stops when none is live, or after `maxLength` generated tokens (live ones are then finished as they are);
 * - each finished hypothesis gets `sum / length ** lengthPenalty` (length: generated tokens, `<eos>` included); the
 *   best wins, the earliest finished on ties.
 *
 * Greedy is beam 1 with length penalty 1 (the mean log-probability). log-softmax runs in float64.
 */

export interface SearchSettings {
  beam: number;
  lengthPenalty: number;
  maxLength: number;
}

/** A search's winner: its tokens without `<bos>` (with `<eos>` when it ended so) and its normalised score. */
export interface SearchResult {
  ids: number[];
  score: number;
}

/**
 * The model side of the search. `step` gets, per live row, the last token and the index of its image, and returns
 * the logits [rows, vocab]; `keep` tells it which rows (of that step) stay live, in their new order, so it can carry
 * their recurrent state forward.
 */
export interface SearchModel {
  vocabSize: number;
  bosId: number;
  eosId: number;
  step(lastIds: readonly number[], imageOfRow: readonly number[]): Promise<Float32Array>;
  keep(rows: readonly number[]): void;
}

export interface SearchHooks {
  /** Called before each step; throw to stop the search (a cancelled job). */
  beforeStep?(step: number, total: number): void;
  /** Each image's result as soon as its own search ends, in the order they end. */
  onResult?(image: number, result: SearchResult): void;
}

interface Hypothesis { ids: number[]; sum: number }
interface ImageSearch { image: number; settings: SearchSettings; live: Hypothesis[]; finished: Hypothesis[]; done: boolean }

/** log-softmax of one row of float32 logits, in float64: `x - max - log(sum(exp(x - max)))`. */
export function logSoftmaxRow(logits: Float32Array, row: number, size: number, out: Float64Array): void {
  const base = row * size;
  let max = -Infinity;
  for (let v = 0; v < size; v += 1) if (logits[base + v]! > max) max = logits[base + v]!;
  let sum = 0;
  for (let v = 0; v < size; v += 1) sum += Math.exp(logits[base + v]! - max);
  const shift = max + Math.log(sum);
  for (let v = 0; v < size; v += 1) out[v] = logits[base + v]! - shift;
}

function winner(search: ImageSearch): SearchResult {
  const alpha = search.settings.lengthPenalty;
  let best: Hypothesis | undefined;
  let bestNorm = -Infinity;
  for (const hyp of search.finished) {
    const norm = hyp.sum / hyp.ids.length ** alpha;
    if (norm > bestNorm) { best = hyp; bestNorm = norm; }
  }
  return { ids: best?.ids ?? [], score: bestNorm };
}

/** One search per entry of `settings` (one per image); results in image order. */
export async function beamSearch(settings: readonly SearchSettings[], model: SearchModel, hooks: SearchHooks = {}): Promise<SearchResult[]> {
  const { vocabSize, bosId, eosId } = model;
  const searches: ImageSearch[] = settings.map((s, image) => ({ image, settings: s, live: [{ ids: [], sum: 0 }], finished: [], done: false }));
  const results: Array<SearchResult | undefined> = settings.map(() => undefined);
  const longest = Math.max(0, ...settings.map((s) => s.maxLength));
  const logp = new Float64Array(vocabSize);
  for (let t = 0; t < longest; t += 1) {
    hooks.beforeStep?.(t, longest);
    const active = searches.filter((s) => !s.done);
    if (active.length === 0) break;
    const lastIds = active.flatMap((s) => s.live.map((hyp) => hyp.ids.at(-1) ?? bosId));
    const imageOfRow = active.flatMap((s) => s.live.map(() => s.image));
    const logits = await model.step(lastIds, imageOfRow);
    const keep: number[] = [];   // rows (of this step) that stay live, in the new order
    let row = 0;
    for (const search of active) {
      const { beam, maxLength } = search.settings;
      const want = beam - search.finished.length;
      // the best `want` candidates by sum + logp descending, ties by flat index (hypothesis, token) ascending; kept
      // sorted with an insertion step (`want` is at most the beam)
      const bestScore: number[] = [];
      const bestFlat: number[] = [];
      for (let b = 0; b < search.live.length; b += 1) {
        logSoftmaxRow(logits, row + b, vocabSize, logp);
        const base = search.live[b]!.sum;
        for (let v = 0; v < vocabSize; v += 1) {
          const score = base + logp[v]!;
          if (bestScore.length === want && !(score > bestScore[want - 1]!)) continue;
          let at = bestScore.length;
          while (at > 0 && score > bestScore[at - 1]!) at -= 1;
          bestScore.splice(at, 0, score);
          bestFlat.splice(at, 0, b * vocabSize + v);
          if (bestScore.length > want) { bestScore.pop(); bestFlat.pop(); }
        }
      }
      const nextLive: Hypothesis[] = [];
      const nextRows: number[] = [];
      for (let j = 0; j < bestFlat.length; j += 1) {
        const b = Math.floor(bestFlat[j]! / vocabSize);
        const token = bestFlat[j]! % vocabSize;
        const hyp = { ids: [...search.live[b]!.ids, token], sum: bestScore[j]! };
        if (token === eosId) search.finished.push(hyp);
        else { nextLive.push(hyp); nextRows.push(row + b); }
      }
      row += search.live.length;
      if (nextLive.length === 0 || search.finished.length >= beam) {
        search.live = [];
        search.done = true;
      } else if (t + 1 >= maxLength) {
        search.finished.push(...nextLive);   // max_length reached: the live ones are finished as they are
        search.live = [];
        search.done = true;
      } else {
        search.live = nextLive;
        keep.push(...nextRows);
      }
    }
    searches.forEach((search, j) => {
      if (search.done && !results[j]) {
        results[j] = winner(search);
        hooks.onResult?.(j, results[j]!);
      }
    });
    if (keep.length === 0) break;
    model.keep(keep);
  }
  return searches.map((search, j) => results[j] ?? winner(search));
}
