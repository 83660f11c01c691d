import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beamSearch, type SearchModel } from '../../inference/beam.search.js';

// Made by tests/fixtures/beam-search/make_fixture.py: a tiny stateful model both languages compute exactly in
// float32, searched image by image by models/train/caption_beam.py's beam(), the reference.
interface Cases {
  vocab_size: number; bos_id: number; eos_id: number;
  table: number[][]; bias: number[][]; w: number[];
  cases: Array<{ beam: number; length_penalty: number; max_length: number; results: Array<{ ids: number[]; score: number; length: number }> }>;
}
const fixture = JSON.parse(readFileSync(join(process.cwd(), 'tests/fixtures/beam-search/cases.json'), 'utf8')) as Cases;
const f = Math.fround;

/** The fixture's model: logits = T[last] + B[image] + 0.1 * s' * W, s' = 0.5 * s + 0.25 * last, in float32. */
function tableModel(steps: { rows: number[] }): SearchModel {
  let state: number[] = [];
  let next: number[] = [];
  return {
    vocabSize: fixture.vocab_size,
    bosId: fixture.bos_id,
    eosId: fixture.eos_id,
    async step(lastIds, imageOfRow) {
      if (state.length !== lastIds.length) state = lastIds.map(() => 0);   // the first step: one row per image
      steps.rows.push(lastIds.length);
      const V = fixture.vocab_size;
      const logits = new Float32Array(lastIds.length * V);
      next = lastIds.map((id, r) => f(f(0.5 * state[r]!) + f(0.25 * id)));
      lastIds.forEach((id, r) => {
        for (let v = 0; v < V; v += 1) {
          logits[r * V + v] = f(f(fixture.table[id]![v]! + fixture.bias[imageOfRow[r]!]![v]!) + f(f(f(0.1) * next[r]!) * fixture.w[v]!));
        }
      });
      return logits;
    },
    keep(rows) {
      state = rows.map((r) => next[r]!);
    },
  };
}

describe('batched beam search, against the Python reference', () => {
  it.each(fixture.cases.map((c) => [c.beam, c.length_penalty, c.max_length, c] as const))(
    'beam %i, length penalty %d, max length %i: every image of one batch as the reference searches it alone',
    async (_beam, _alpha, _max, c) => {
      const settings = c.results.map(() => ({ beam: c.beam, lengthPenalty: c.length_penalty, maxLength: c.max_length }));
      const ended: number[] = [];
      const found = await beamSearch(settings, tableModel({ rows: [] }), { onResult: (image) => ended.push(image) });
      found.forEach((result, image) => {
        const want = c.results[image]!;
        expect(result.ids.filter((id) => id !== fixture.eos_id)).toEqual(want.ids);
        expect(result.ids.length).toBe(want.length);
        expect(result.score).toBeCloseTo(want.score, 9);
      });
      expect([...ended].sort()).toEqual(c.results.map((_, i) => i));   // each image heard once
    });

  it('mixes settings in one batch and never sends more rows than the live hypotheses', async () => {
    const byKey = (beam: number, alpha: number, max: number) =>
      fixture.cases.find((c) => c.beam === beam && c.length_penalty === alpha && c.max_length === max)!;
    const picks = [byKey(3, 0.7, 7), byKey(1, 1, 3), byKey(5, 0, 7)];
    const steps = { rows: [] as number[] };
    const found = await beamSearch(picks.map((c) => ({ beam: c.beam, lengthPenalty: c.length_penalty, maxLength: c.max_length })), tableModel(steps));
    found.forEach((result, i) => expect(result.ids.filter((id) => id !== fixture.eos_id)).toEqual(picks[i]!.results[i]!.ids));
    expect(Math.max(...steps.rows)).toBeLessThanOrEqual(3 + 1 + 5);
    expect(steps.rows[0]).toBe(3);                                     // one hypothesis per image to start
  });

  it('stops when beforeStep throws (a cancelled job) and searches nothing for no images', async () => {
    await expect(beamSearch([{ beam: 2, lengthPenalty: 1, maxLength: 5 }], tableModel({ rows: [] }), {
      beforeStep: (step) => { if (step === 2) throw new Error('cancelled'); },
    })).rejects.toThrow('cancelled');
    expect(await beamSearch([], tableModel({ rows: [] }))).toEqual([]);
  });
});
