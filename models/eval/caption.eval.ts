/**
 * Captioning metrics on the held-out set: corpus BLEU-1..4 (coco-caption, bleu.ts) and CIDEr-D (cider.ts) against
 * the five references, the grammar's own ceiling for both, and semantic accuracy (the caption parses to the scene).
 */
import { isPictalkError } from '../../common/errors.js';
import type { ImageToText } from '../../inference/image-to-text.pipeline.js';
import { captionsFor, sceneToPrompt } from '../world/grammar.js';
import { parseCaption } from '../world/parser.js';
import { hashSeed, mulberry32 } from '../world/random.js';
import { scenesEqual } from '../world/scene.js';
import { corpusBleu, tokenize } from './bleu.js';
import { corpusCiderD } from './cider.js';
import type { HeldOutImage } from './heldout.set.js';

/** Tries at drawing a ceiling caption that is none of the five references before taking one that is. */
const CEILING_TRIES = 32;
/** Images per batched beam search: the pipeline's default `maxBatch`. */
const CAPTION_BATCH = 16;

export interface TextScores {
  bleu: [number, number, number, number];
  ciderD: number;
}

export function textScores(candidates: readonly string[], references: readonly (readonly string[])[]): TextScores {
  const cand = candidates.map(tokenize);
  const refs = references.map((r) => r.map(tokenize));
  return { bleu: corpusBleu(cand, refs).bleu, ciderD: corpusCiderD(cand, refs).score };
}

/**
 * The "perfect" caption of each image: a fresh caption of the true scene from the grammar with an independent rng
 * (seeded by eval seed, split, index), drawn again while it equals one of the five references. Its BLEU against the
 * references is what a captioner that states the scene exactly, in the grammar's own words, would score: the
 * ceiling of this metric on this world (synonyms and word order cost n-gram matches, not meaning).
 */
export function ceilingCaptions(images: readonly HeldOutImage[], seed: number): { captions: string[]; repeats: number } {
  let repeats = 0;
  const captions = images.map((image) => {
    const rng = mulberry32(hashSeed(seed, 'ceiling', image.split, image.index));
    let caption = '';
    for (let t = 0; t < CEILING_TRIES; t += 1) {
      caption = captionsFor(image.scene, rng, 1)[0]!;
      if (!image.references.includes(caption)) return caption;
    }
    repeats += 1;
    return caption;
  });
  return { captions, repeats };
}

export async function captionAll(captioner: ImageToText, images: readonly HeldOutImage[], beam: number): Promise<string[]> {
  const captions: string[] = [];
  for (let start = 0; start < images.length; start += CAPTION_BATCH) {
    const chunk = images.slice(start, start + CAPTION_BATCH);
    const results = await captioner.captionBatch(chunk.map((image) => ({ image: image.png, beam })));
    results.forEach((result, i) => {
      if (isPictalkError(result)) throw result;
      if (result === undefined) throw new Error(`No caption came back for image ${start + i}`);
      captions.push(result.caption);
    });
  }
  return captions;
}

/** Share of captions whose parsed scene equals the drawn scene (an unparseable caption counts as wrong). */
export function exactRate(captions: readonly string[], images: readonly HeldOutImage[]): number {
  if (images.length === 0) return 0;
  let right = 0;
  captions.forEach((caption, i) => {
    const parsed = parseCaption(caption);
    if (parsed !== null && scenesEqual(parsed, images[i]!.scene)) right += 1;
  });
  return right / images.length;
}

export interface CaptionMetrics {
  caption_bleu1: number;
  caption_bleu2: number;
  caption_bleu3: number;
  caption_bleu4: number;
  caption_cider_d: number;
  caption_bleu4_ceiling: number;
  caption_cider_d_ceiling: number;
  caption_exact: number;
  caption_exact_compositional: number;
  caption_parseable: number;
  ceiling_repeats: number;     // images whose ceiling caption had to be one of the references (should be 0)
  examples: Array<{ scene: string; caption: string; references: string[] }>;   // scene: its plain prompt
}

export async function evaluateCaptions(
  captioner: ImageToText, test: readonly HeldOutImage[], compositional: readonly HeldOutImage[], options: { beam: number; seed: number },
): Promise<CaptionMetrics> {
  // caption every image of both splits
  const captions = await captionAll(captioner, test, options.beam);
  const compositionalCaptions = await captionAll(captioner, compositional, options.beam);

  // scores against the references, and the grammar's ceiling on the same references
  const references = test.map((image) => image.references);
  const model = textScores(captions, references);
  const ceiling = ceilingCaptions(test, options.seed);
  const best = textScores(ceiling.captions, references);
  return {
    caption_bleu1: model.bleu[0],
    caption_bleu2: model.bleu[1],
    caption_bleu3: model.bleu[2],
    caption_bleu4: model.bleu[3],
    caption_cider_d: model.ciderD,
    caption_bleu4_ceiling: best.bleu[3],
    caption_cider_d_ceiling: best.ciderD,
    caption_exact: exactRate(captions, test),
    caption_exact_compositional: exactRate(compositionalCaptions, compositional),
    caption_parseable: test.length === 0 ? 0 : captions.filter((c) => parseCaption(c) !== null).length / test.length,
    ceiling_repeats: ceiling.repeats,
    examples: test.slice(0, 3).map((image, i) => ({ scene: sceneToPrompt(image.scene), caption: captions[i]!, references: image.references })),
  };
}
