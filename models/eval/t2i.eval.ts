/**
 * Text-to-image metrics: generate one image per held-out prompt (sceneToPrompt of the scene, seed from the eval
 * seed), judge it with the recognizer GenEval-style (scene.judge.ts), and caption it to close the loop:
 * cycle agreement = caption(generate(prompt)) parses to the prompt's scene.
 * The recognizer's all-correct rate on the DRAWN images of the same scenes is reported beside each category: the
 * judge's own ceiling (a generator cannot score above the judge's accuracy on perfect pictures, except by luck).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { encodePng, imageToTensor } from '../../inference/image.codec.js';
import type { ImageToText } from '../../inference/image-to-text.pipeline.js';
import { openModel, type TensorValue } from '../../inference/onnx.backend.js';
import type { TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { ImagineSettings, SchedulerName } from '../../inference/types.js';
import { parseCaption } from '../world/parser.js';
import { scenesEqual } from '../world/scene.js';
import type { WorldRenderer } from '../world/world.renderer.js';
import { captionAll } from './caption.eval.js';
import { drawImage, PROMPT_CATEGORIES, type EvalPrompt, type HeldOutImage, type PromptCategory } from './heldout.set.js';
import type { Recognizer, RecognizedScene } from './recognizer.js';
import { ATTRIBUTES, attributeRates, judgeScene, type AttributeRates, type Judgement } from './scene.judge.js';

export interface GenerationOverrides {
  steps?: number;
  guidance?: number;
  scheduler?: SchedulerName;
  candidates?: number;
}

export interface GeneratedSample {
  prompt: EvalPrompt;
  png: Buffer;
  seen: RecognizedScene;
  judgement: Judgement;
  caption: string | null;
  cycle: boolean | null;
}

export interface TextToImageMetrics {
  /** Flat numbers: t2i_all_correct_{single,pair,compositional}, t2i_<attribute>_<category>, t2i_<attribute>. */
  metrics: Record<string, number | null>;
  /** How many prompts each attribute applied to, per category and overall. */
  applied: Record<string, Record<string, number>>;
  settings: Omit<ImagineSettings, 'prompt' | 'negativePrompt' | 'seed' | 'count'>;
  generateMs: number;
  examples: Array<{ category: PromptCategory; prompt: string; seed: number; seen: string; caption: string | null; judgement: Judgement }>;
}

const describeScene = (scene: RecognizedScene): string =>
  `${scene.axis ?? 'single'}: ${scene.objects.map((o) => `${o.size} ${o.color ?? ''} ${o.name}`.replace(/\s+/g, ' ')).join(', ')}`;

/** The rates of one group of judgements into `metrics` as t2i_<attribute><suffix>. */
function putRates(metrics: Record<string, number | null>, applied: Record<string, Record<string, number>>, group: string, rates: AttributeRates): void {
  const suffix = group === 'overall' ? '' : `_${group}`;
  for (const attribute of ATTRIBUTES) metrics[`t2i_${attribute === 'all' ? 'all_correct' : attribute}${suffix}`] = rates.rates[attribute];
  applied[group] = rates.counts;
}

/**
 * The drawn pictures through the folder's own autoencoder: vae_encoder (pictalk's exports give the posterior mean,
 * unscaled) then vae_decoder. What the recognizer reads in them bounds what any UNet can reach with this decoder.
 * Null when the folder has no vae_encoder.
 */
async function autoencoderRoundTrip(t2i: TextToImage, pngs: readonly Buffer[]): Promise<Buffer[] | null> {
  const encoderPath = join(t2i.folder.dir, 'vae_encoder', 'model.onnx');
  if (!existsSync(encoderPath)) return null;
  const [encoder, decoder] = [await openModel(encoderPath), await openModel(t2i.folder.vaeDecoderPath)];
  try {
    const { width, height } = t2i.folder.defaults;
    const out: Buffer[] = [];
    for (const png of pngs) {
      const sample = await imageToTensor(png, { size: [height, width], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
      const latents = (await encoder.run({ sample: { data: sample, dims: [1, 3, height, width] } }))[encoder.outputNames[0]!] as TensorValue<Float32Array>;
      const decoded = (await decoder.run({ latent_sample: latents }))[decoder.outputNames[0]!] as TensorValue<Float32Array>;
      out.push(await encodePng(decoded.data, width, height));
    }
    return out;
  } finally {
    await Promise.all([encoder.dispose(), decoder.dispose()]);
  }
}

export async function evaluateTextToImage(
  t2i: TextToImage, recognizer: Recognizer, prompts: readonly EvalPrompt[],
  options: { overrides: GenerationOverrides; captioner?: ImageToText; beam?: number; renderer: WorldRenderer; evalSeed: number },
): Promise<TextToImageMetrics> {
  const { overrides } = options;
  const resolved = t2i.settingsFor({ prompt: 'defaults', seed: 0, ...overrides });  // any prompt: only the settings are read

  // generate, one image per prompt
  const started = Date.now();
  const pngs: Buffer[] = [];
  for (const p of prompts) {
    const result = await t2i.imagine({ prompt: p.prompt, seed: p.seed, count: 1, ...overrides });
    pngs.push(result.images[0]!.png);
  }
  const generateMs = Date.now() - started;

  // judge with the recognizer; caption for the cycle
  const seen = await recognizer.recognize(pngs);
  const judgements = prompts.map((p, i) => judgeScene(p.scene, seen[i]!));
  let captions: Array<string | null> = prompts.map(() => null);
  if (options.captioner) {
    const asImages: HeldOutImage[] = prompts.map((p, i) => ({ split: p.split, index: p.index, scene: p.scene, references: [], png: pngs[i]! }));
    captions = await captionAll(options.captioner, asImages, options.beam ?? options.captioner.folder.config.beamSize);
  }
  const cycles = captions.map((caption, i) => {
    if (caption === null) return null;
    const parsed = parseCaption(caption);
    return parsed !== null && scenesEqual(parsed, prompts[i]!.scene);
  });

  // the judge's ceiling: the recognizer on the drawn pictures of the same scenes
  const drawn = await Promise.all(prompts.map((p) => drawImage(options.renderer, options.evalSeed, p.split, p.index)));
  const drawnSeen = await recognizer.recognize(drawn.map((d) => d.png));
  const roundTrip = await autoencoderRoundTrip(t2i, drawn.map((d) => d.png));
  const roundTripSeen = roundTrip ? await recognizer.recognize(roundTrip) : null;

  const metrics: Record<string, number | null> = {};
  const applied: Record<string, Record<string, number>> = {};
  putRates(metrics, applied, 'overall', attributeRates(judgements));
  const share = (values: ReadonlyArray<boolean | null>): number | null => {
    const known = values.filter((v): v is boolean => v !== null);
    return known.length === 0 ? null : known.filter(Boolean).length / known.length;
  };
  metrics.cycle_agreement = share(cycles);
  // the alt-text path: generated pictures must pass the captioner's out-of-domain check (they are the drawn world)
  if (options.captioner?.domain) {
    const verdicts: boolean[] = [];
    for (let start = 0; start < pngs.length; start += 16) {
      for (const pooled of await options.captioner.embed(pngs.slice(start, start + 16))) verdicts.push(options.captioner.domain.judge(pooled).inDomain);
    }
    metrics.ood_generated_captioned = share(verdicts);
  }
  for (const category of PROMPT_CATEGORIES) {
    const idx = prompts.map((p, i) => (p.category === category ? i : -1)).filter((i) => i >= 0);
    putRates(metrics, applied, category, attributeRates(idx.map((i) => judgements[i]!)));
    metrics[`cycle_agreement_${category}`] = share(idx.map((i) => cycles[i]!));
    metrics[`t2i_judge_ceiling_${category}`] = share(idx.map((i) => judgeScene(prompts[i]!.scene, drawnSeen[i]!).all));
    metrics[`t2i_autoencoder_ceiling_${category}`] = roundTripSeen ? share(idx.map((i) => judgeScene(prompts[i]!.scene, roundTripSeen[i]!).all)) : null;
  }
  const { steps, guidance, scheduler, width, height, candidates } = resolved;
  return {
    metrics, applied, settings: { steps, guidance, scheduler, width, height, candidates }, generateMs,
    examples: PROMPT_CATEGORIES.flatMap((category) => prompts.map((p, i) => ({ p, i })).filter(({ p }) => p.category === category).slice(0, 2))
      .map(({ p, i }) => ({ category: p.category, prompt: p.prompt, seed: p.seed, seen: describeScene(seen[i]!), caption: captions[i]!, judgement: judgements[i]! })),
  };
}
