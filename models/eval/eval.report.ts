/**
 * The readable form of an eval report (without --json): one table per part, each number with what it is.
 */
import type { EvalReport } from './eval.run.js';

const ROWS: ReadonlyArray<[string, string]> = [
  ['caption_bleu1', 'BLEU-1 (corpus, coco-caption, 5 refs)'],
  ['caption_bleu2', 'BLEU-2'],
  ['caption_bleu3', 'BLEU-3'],
  ['caption_bleu4', 'BLEU-4'],
  ['caption_bleu4_ceiling', 'BLEU-4 of a fresh grammar caption (ceiling)'],
  ['caption_cider_d', 'CIDEr-D (corpus idf, x10 scale)'],
  ['caption_cider_d_ceiling', 'CIDEr-D of a fresh grammar caption (ceiling)'],
  ['caption_exact', 'caption parses to the drawn scene (test)'],
  ['caption_exact_compositional', 'caption parses to the drawn scene (compositional)'],
  ['caption_parseable', 'caption parses at all (test)'],
  ['recognizer_accuracy_gt', 'recognizer scene accuracy on drawn images'],
  ['recognizer_accuracy_gt_test', '  test split'],
  ['recognizer_accuracy_gt_compositional', '  compositional split'],
  ['t2i_all_correct_single', 'generated image all-correct, one object'],
  ['t2i_all_correct_pair', 'generated image all-correct, two objects'],
  ['t2i_all_correct_compositional', 'generated image all-correct, compositional'],
  ['t2i_all_correct', 'generated image all-correct, all prompts'],
  ['t2i_object', '  object (names present)'],
  ['t2i_count', '  count'],
  ['t2i_color', '  colour (on the right object)'],
  ['t2i_size', '  size (on the right object)'],
  ['t2i_position', '  position / relation (2+ objects)'],
  ['cycle_agreement', 'caption(generate(prompt)) parses to the prompt scene'],
  ['ood_photos_declined', 'captioner declines real photographs (target >= 0.9)'],
  ['ood_world_captioned', 'captioner still captions held-out world images (>= 0.98)'],
  ['ood_world_shared_captioned', '  the same, as JPEG or rescaled'],
  ['ood_screenshots_declined', 'captioner declines synthesized screenshots'],
  ['ood_drawings_declined', 'captioner declines synthesized line drawings'],
  ['ood_generated_captioned', 'captioner captions generated images (alt text)'],
];

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(4));

export function formatReport(report: EvalReport): string {
  const m = report.metrics;
  const lines: string[] = [];
  const width = Math.max(...ROWS.map(([, label]) => label.length));
  for (const [key, label] of ROWS) {
    if (!(key in m)) continue;
    lines.push(`${label.padEnd(width)}  ${fmt(m[key]).padStart(7)}   ${key}`);
  }
  if ('t2i_all_correct_single' in m) {
    lines.push('', 'text-to-image by category     single     pair  composit.');
    for (const attribute of ['object', 'count', 'color', 'size', 'position', 'all_correct']) {
      const cells = ['single', 'pair', 'compositional'].map((c) => fmt(m[`t2i_${attribute}_${c}`]).padStart(9));
      lines.push(`  ${attribute.padEnd(26)}${cells.join('')}`);
    }
    lines.push(`  ${'judge ceiling (drawn)'.padEnd(26)}${['single', 'pair', 'compositional'].map((c) => fmt(m[`t2i_judge_ceiling_${c}`]).padStart(9)).join('')}`);
    lines.push(`  ${'autoencoder ceiling'.padEnd(26)}${['single', 'pair', 'compositional'].map((c) => fmt(m[`t2i_autoencoder_ceiling_${c}`]).padStart(9)).join('')}`);
    lines.push(`  ${'cycle agreement'.padEnd(26)}${['single', 'pair', 'compositional'].map((c) => fmt(m[`cycle_agreement_${c}`]).padStart(9)).join('')}`);
  }
  lines.push('', `counts   ${Object.entries(report.counts).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  lines.push(`settings ${JSON.stringify(report.settings)}`);
  lines.push(`models   ${Object.entries(report.models).map(([k, v]) => `${k}=${v ?? '-'}`).join(' ')}`);
  lines.push(`timings  ${Object.entries(report.timings_ms).map(([k, v]) => `${k}=${(v / 1000).toFixed(1)}s`).join(' ')}`);
  return `${lines.join('\n')}\n`;
}
