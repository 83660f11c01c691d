/**
 * One evaluation run: check the model folders, draw the held-out set, then the parts asked for
 * (captioning, text-to-image with the recognizer as judge, the recognizer on ground truth, the captioner's
 * out-of-domain check on held-out world images and on photographs, screenshots and drawings), into one report.
 */
import { existsSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { PictalkError } from '../../common/errors.js';
import { loadImageToText, type ImageToText } from '../../inference/image-to-text.pipeline.js';
import { loadTextToImage, type TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { BackendOptions } from '../../inference/onnx.backend.js';
import { loadModelSettings } from '../../adapters/config.js';
import { WorldRenderer } from '../world/world.renderer.js';
import { evaluateCaptions, type CaptionMetrics } from './caption.eval.js';
import { evaluateDomain, type DomainMetrics } from './domain.eval.js';
import type { EvalOptions } from './eval.options.js';
import { drawSplit, evalPrompts, type HeldOutImage } from './heldout.set.js';
import { loadRecognizer, type Recognizer } from './recognizer.js';
import { availablePhotos } from './ood.images.js';
import { judgeScene } from './scene.judge.js';
import { evaluateTextToImage, type TextToImageMetrics } from './t2i.eval.js';

export interface EvalReport {
  /** Every headline number, flat; null where a part did not run or nothing applied. */
  metrics: Record<string, number | null>;
  counts: Record<string, number>;
  settings: Record<string, unknown>;
  models: Record<string, string | null>;
  timings_ms: Record<string, number>;
  applied?: TextToImageMetrics['applied'];
  examples: { captions?: CaptionMetrics['examples']; t2i?: TextToImageMetrics['examples']; domain?: Pick<DomainMetrics, 'perSource' | 'misses'> };
}

/** Which folders the parts need; a missing one fails before any work, naming its option. */
function requiredFolders(options: EvalOptions): Array<{ option: string; dir: string; what: string }> {
  const need: Array<{ option: string; dir: string; what: string }> = [];
  const { parts } = options;
  if (parts.includes('caption') || parts.includes('domain')) need.push({ option: '--captioner', dir: options.captionerDir, what: 'captioner' });
  if (parts.includes('t2i')) need.push({ option: '--t2i', dir: options.t2iDir, what: 'text-to-image' });
  if (parts.includes('t2i') || parts.includes('recognizer')) need.push({ option: '--recognizer', dir: options.recognizerDir, what: 'recognizer' });
  return need;
}

export function checkFolders(options: EvalOptions): void {
  for (const { option, dir, what } of requiredFolders(options)) {
    const absolute = resolve(dir);
    if (!existsSync(absolute) || !statSync(absolute).isDirectory()) {
      throw new PictalkError('model.invalid',
        `Expected a ${what} model folder at ${absolute}, found none (pass \`${option} DIR\`, or leave the part out with \`--only\`)`, { path: absolute });
    }
  }
  // photographs named on the command line must be there; the default folder may be missing (photos not measured)
  if (options.parts.includes('domain') && options.photosGiven && availablePhotos(resolve(options.photosDir)).length === 0) {
    throw new PictalkError('input.invalid', `Expected scikit-image's sample photographs (astronaut.png, coffee.png, ...) in \`--photos\` ${resolve(options.photosDir)}, found none`,
      { option: 'photos' });
  }
}

const isDir = (dir: string): boolean => existsSync(dir) && statSync(dir).isDirectory();

export async function runEval(options: EvalOptions, log: (line: string) => void = () => undefined): Promise<EvalReport> {
  checkFolders(options);
  const started = Date.now();
  const timings: Record<string, number> = {};
  const time = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await work();
    } finally {
      timings[name] = Date.now() - t0;
    }
  };
  const { executionProvider } = loadModelSettings(process.env); // PICTALK_EXECUTION_PROVIDER, as the bot reads it
  const backend: BackendOptions = { executionProvider, ...(options.threads === undefined ? {} : { intraOpThreads: options.threads }) };
  const { parts } = options;
  const metrics: Record<string, number | null> = {};
  const report: EvalReport = {
    metrics,
    counts: {},
    settings: { seed: options.seed, parts },
    models: { t2i: null, captioner: null, recognizer: null },
    timings_ms: timings,
    examples: {},
  };

  // load the models first, so a malformed folder fails before minutes of drawing
  // (the captioner also serves the cycle check when only t2i runs, if its folder exists)
  const wantCaptioner = parts.includes('caption') || parts.includes('domain') || (parts.includes('t2i') && isDir(options.captionerDir));
  let captioner: ImageToText | undefined;
  let t2i: TextToImage | undefined;
  let recognizer: Recognizer | undefined;
  try {
    await time('load', async () => {
      if (wantCaptioner) captioner = await loadImageToText(options.captionerDir, { backend });
      // the bot's wiring: the captioner ranks candidates when the folder asks for more than one
      const scorer = captioner?.scoreText;
      if (parts.includes('t2i')) t2i = await loadTextToImage(options.t2iDir, { backend, ...(scorer ? { scorer } : {}) });
      if (parts.includes('t2i') || parts.includes('recognizer')) recognizer = await loadRecognizer(options.recognizerDir, { backend });
    });
    // folders relative to the working directory, so a report names no machine paths
    const shown = (dir: string): string => relative(process.cwd(), dir) || '.';
    report.models = {
      t2i: t2i ? shown(t2i.folder.dir) : null,
      captioner: captioner ? shown(captioner.folder.dir) : null,
      recognizer: recognizer ? shown(recognizer.dir) : null,
    };

    // draw the held-out set
    const renderer = await WorldRenderer.create();
    let test: HeldOutImage[] = [];
    let compositional: HeldOutImage[] = [];
    if (parts.includes('caption') || parts.includes('recognizer') || parts.includes('domain')) {
      log(`eval: drawing ${options.count} test + ${options.compositional} compositional images (seed ${options.seed})`);
      await time('draw', async () => {
        test = await drawSplit(renderer, options.seed, 'test', options.count);
        compositional = await drawSplit(renderer, options.seed, 'compositional', options.compositional);
      });
      report.counts.test_images = test.length;
      report.counts.compositional_images = compositional.length;
    }

    // captioning
    if (parts.includes('caption') && captioner) {
      const beam = options.beam ?? captioner.folder.config.beamSize;
      report.settings.beam = beam;
      report.settings.length_penalty = captioner.folder.config.lengthPenalty;
      log(`eval: captioning ${test.length + compositional.length} images (beam ${beam})`);
      const c = await time('caption', () => evaluateCaptions(captioner!, test, compositional, { beam, seed: options.seed }));
      const { examples, ceiling_repeats: repeats, ...numbers } = c;
      Object.assign(metrics, numbers);
      report.counts.ceiling_repeats = repeats;
      report.examples.captions = examples;
    }

    // the captioner's out-of-domain check: the same held-out world images, photographs, screenshots, drawings
    if (parts.includes('domain') && captioner) {
      const photosDir = resolve(options.photosDir);
      const photos = availablePhotos(photosDir);
      if (!captioner.domain) log(`eval: the captioner has no out-of-domain check (${captioner.folder.generalPurpose ? 'general_purpose' : 'no domain.json'}): nothing to measure`);
      else if (photos.length === 0) log(`eval: no sample photographs in ${options.photosDir} (install python3-skimage: scripts/setup.sh); the photo share is not measured`);
      if (captioner.domain) log(`eval: out-of-domain check on ${test.length + compositional.length} world images, ${photos.length * options.photoCrops} photo crops, `
        + `${options.synthesized} screenshots and ${options.synthesized} drawings`);
      const d = await time('domain', () => evaluateDomain(captioner!, [...test, ...compositional], {
        seed: options.seed, photosDir: photos.length > 0 ? photosDir : undefined, photos, perPhoto: options.photoCrops, synthesized: options.synthesized,
      }));
      Object.assign(metrics, d.metrics);
      Object.assign(report.counts, d.counts);
      report.settings.domain = captioner.domain
        ? { threshold: captioner.domain.stats.threshold, photos: photos.length > 0 ? options.photosDir : null, photo_crops: options.photoCrops }
        : { check: captioner.folder.generalPurpose ? 'off (general_purpose)' : 'off (no domain.json)' };
      report.examples.domain = { perSource: d.perSource, misses: d.misses };
    }

    // the recognizer on the drawn ground truth of the same held-out set
    if (parts.includes('recognizer') && recognizer) {
      log(`eval: recognizer on ${test.length + compositional.length} drawn images`);
      await time('recognizer', async () => {
        const rate = async (images: readonly HeldOutImage[]): Promise<number> => {
          if (images.length === 0) return 0;
          const seen = await recognizer!.recognize(images.map((i) => i.png));
          return images.filter((image, k) => judgeScene(image.scene, seen[k]!).all).length / images.length;
        };
        const onTest = await rate(test);
        const onComp = await rate(compositional);
        metrics.recognizer_accuracy_gt_test = onTest;
        metrics.recognizer_accuracy_gt_compositional = onComp;
        metrics.recognizer_accuracy_gt = (onTest * test.length + onComp * compositional.length) / Math.max(1, test.length + compositional.length);
      });
    }

    // text-to-image, judged by the recognizer, and the caption cycle
    if (parts.includes('t2i') && t2i && recognizer) {
      const prompts = evalPrompts(options.seed, options.t2iCount);
      log(`eval: generating ${prompts.length} images (${options.t2iCount} single, pair and compositional prompts)`);
      const overrides = {
        ...(options.steps === undefined ? {} : { steps: options.steps }),
        ...(options.guidance === undefined ? {} : { guidance: options.guidance }),
        ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }),
        ...(options.candidates === undefined ? {} : { candidates: options.candidates }),
      };
      const r = await time('t2i', () => evaluateTextToImage(t2i!, recognizer!, prompts, {
        overrides, renderer, evalSeed: options.seed,
        ...(captioner ? { captioner, beam: options.beam ?? captioner.folder.config.beamSize } : {}),
      }));
      Object.assign(metrics, r.metrics);
      report.settings.t2i = r.settings;
      report.counts.t2i_prompts = prompts.length;
      report.counts.t2i_prompts_per_category = options.t2iCount;
      report.applied = r.applied;
      report.examples.t2i = r.examples;
      timings.t2i_generate = r.generateMs;
      timings.t2i_per_image = Math.round(r.generateMs / Math.max(1, prompts.length));
    }
  } finally {
    await Promise.all([captioner?.dispose(), t2i?.dispose(), recognizer?.dispose()]);
  }
  timings.total = Date.now() - started;
  return report;
}
