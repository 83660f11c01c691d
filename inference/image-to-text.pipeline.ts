/**
 * Image-to-text: the CNN-LSTM captioner over a `captioner/` folder (models/README.md).
 *
 * decode (image.codec) -> encoder.onnx (pixels -> features, h0, c0) -> greedy or beam search in TypeScript over
 * decoder_step.onnx. Beam search is batched across images: every live hypothesis of every image goes into one
 * decoder call per step. The search is the one models/train/caption_beam.py defines (Show, Attend and Tell style,
 * shrinking beam); tests/fixtures/tiny-captioner/parity.json holds its token ids and scores.
 */
import { PictalkError, asInferenceError, describe, isPictalkError } from '../common/errors.js';
import { imageToTensor, type DecodeLimits } from './image.codec.js';
import { readCaptionerFolder, type CaptionerFolder } from './model-folder.js';
import { openModel, type BackendOptions, type OnnxModel, type TensorValue } from './onnx.backend.js';
import type { CaptionRequest, CaptionResult, CaptionRunOptions } from './types.js';

export interface ImageToTextOptions {
  backend?: BackendOptions;
  limits?: DecodeLimits;
  /** Most images in one `captionBatch` call; 16 by default. */
  maxBatch?: number;
}

export interface ImageToText {
  readonly folder: CaptionerFolder;
  caption(request: CaptionRequest, options?: CaptionRunOptions): Promise<CaptionResult>;
  /**
   * Caption several images in one batched search; results in input order, each as `caption` would give it.
   * A request with a bad option or an unreadable image gets its PictalkError in its slot and the others go on;
   * a failure of the model itself throws for the whole batch.
   */
  captionBatch(requests: readonly CaptionRequest[], options?: CaptionRunOptions): Promise<Array<CaptionResult | PictalkError>>;
  /**
   * Start decoding the image of a caption that waits in line (on sharp's threads), so the batch that takes it finds
   * the pixels ready. Unused prefetches are dropped with their request.
   */
  prefetch(request: CaptionRequest): void;
  /**
   * How well each image fits `text`: the mean log-probability per token of the text's words and then `<eos>`, as
   * this captioner's caption of the image (teacher forcing; words outside the vocabulary read as `<unk>`). Only a
   * comparison between images of the same text means anything: the text's own prior cancels there.
   */
  scoreText(images: readonly Buffer[], text: string, options?: CaptionRunOptions): Promise<number[]>;
  dispose(): Promise<void>;
}

/** The training side's caption preprocessing (models/train/datasets.py `tokenize`): lower case, letters only. */
export function captionWords(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z]+/g, ' ').split(' ').filter((word) => word.length > 1 || word === 'a');
}

interface SearchSettings { beam: number; lengthPenalty: number; maxLength: number }

/** One hypothesis: generated ids (`<eos>` included once finished) and the sum of their log-probabilities. */
interface Hypothesis { ids: number[]; sum: number }

interface ImageSearch {
  settings: SearchSettings;
  live: Hypothesis[];
  finished: Hypothesis[];
  done: boolean;
}

/** log_softmax of one row of float32 logits, computed in float64 as caption_beam.py does. */
function logSoftmaxRow(logits: Float32Array, row: number, size: number, out: Float64Array): void {
  const base = row * size;
  let max = -Infinity;
  for (let v = 0; v < size; v += 1) if (logits[base + v]! > max) max = logits[base + v]!;
  let sum = 0;
  for (let v = 0; v < size; v += 1) sum += Math.exp(logits[base + v]! - max);
  const shift = max + Math.log(sum);
  for (let v = 0; v < size; v += 1) out[v] = logits[base + v]! - shift;
}

/** Copy rows of a [rows, rowSize] array (or of every [rows, rowSize] slab of an [L, rows, rowSize] array). */
function gatherRows(data: Float32Array, slabs: number, rowsIn: number, rowSize: number, pick: readonly number[]): Float32Array {
  const out = new Float32Array(slabs * pick.length * rowSize);
  for (let s = 0; s < slabs; s += 1) {
    for (let j = 0; j < pick.length; j += 1) {
      const from = (s * rowsIn + pick[j]!) * rowSize;
      out.set(data.subarray(from, from + rowSize), (s * pick.length + j) * rowSize);
    }
  }
  return out;
}

/** Capital letter, full stop: "a red circle" -> "A red circle." */
export function postProcess(words: readonly string[]): string {
  const text = words.join(' ').replace(/\s+([,.;:!?])/g, '$1').trim();
  if (!text) return '';
  const capital = text[0]!.toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

export async function loadImageToText(dir: string, options: ImageToTextOptions = {}): Promise<ImageToText> {
  // validate the folder first: a missing or malformed file names itself before any session opens
  const folder = readCaptionerFolder(dir);
  const { config, vocab } = folder;
  const maxBatch = options.maxBatch ?? 16;
  const encoder = await openModel(folder.encoderPath, options.backend);
  let decoder: OnnxModel;
  try {
    decoder = await openModel(folder.decoderPath, options.backend);
  } catch (error) {
    await encoder.dispose();
    throw error;
  }
  for (const [model, names] of [[encoder, ['pixel_values']], [decoder, ['input_ids', 'h', 'c', 'features']]] as const) {
    for (const name of names) {
      if (!model.hasInput(name)) {
        throw new PictalkError('model.invalid', `Expected ${model.path} to have an input named \`${name}\`, it has ${model.inputNames.join(', ')}`,
          { path: model.path });
      }
    }
  }
  // A step graph with `feature_rows` takes each image's features once and the image of every hypothesis by index;
  // without it, every hypothesis carries its image's features
  const perImage = decoder.hasInput('feature_rows');
  if (perImage && decoder.inputType('feature_rows') !== 'int64') {
    throw new PictalkError('model.invalid', `Expected \`feature_rows\` of ${decoder.path} to be int64, got ${decoder.inputType('feature_rows')}`, { path: decoder.path });
  }
  const idsType = decoder.inputType('input_ids');
  if (idsType !== 'int64' && idsType !== 'int32') {
    throw new PictalkError('model.invalid', `Expected \`input_ids\` of ${decoder.path} to be int64 or int32, got ${idsType}`, { path: decoder.path });
  }
  const specials = new Set([config.padId, config.bosId, config.eosId, config.unkId]);
  const [height, width] = config.imageSize;

  function settingsOf(request: CaptionRequest): SearchSettings {
    const beam = request.beam ?? config.beamSize;
    const lengthPenalty = request.lengthPenalty ?? config.lengthPenalty;
    const maxLength = request.maxLength ?? config.maxLength;
    if (!Number.isInteger(beam) || beam < 1 || beam > 16) {
      throw new PictalkError('input.invalid', `Expected \`beam\` to be an integer from 1 to 16, got ${describe(beam)}`);
    }
    if (typeof lengthPenalty !== 'number' || !(lengthPenalty >= 0 && lengthPenalty <= 5)) {
      throw new PictalkError('input.invalid', `Expected \`lengthPenalty\` to be a number from 0 to 5, got ${describe(lengthPenalty)}`);
    }
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > config.maxLength) {
      throw new PictalkError('input.invalid', `Expected \`maxLength\` to be an integer from 1 to ${config.maxLength}, got ${describe(maxLength)}`);
    }
    // beam 1 is greedy: the argmax each step, scored by the mean log-probability (length penalty 1)
    return { beam, lengthPenalty: beam === 1 ? 1 : lengthPenalty, maxLength };
  }

  /** A request's search settings and pixels [3, H, W]; rejects with the request's own input error. */
  async function prepare(request: CaptionRequest): Promise<{ settings: SearchSettings; pixels: Float32Array }> {
    const settings = settingsOf(request);
    const pixels = await imageToTensor(request.image, {
      size: [height, width], mean: config.mean, std: config.std, kernel: 'bilinear', ...options.limits,
    });
    return { settings, pixels };
  }
  /** The encoder's three outputs, or `model.invalid` naming what it gave instead. */
  function encoderOutputs(encoded: Record<string, TensorValue>): { features: TensorValue<Float32Array>; h0: TensorValue<Float32Array>; c0: TensorValue<Float32Array> } {
    const { features, h0, c0 } = encoded as Record<string, TensorValue<Float32Array> | undefined>;
    if (!features || !h0 || !c0) {
      throw new PictalkError('model.invalid', `Expected ${encoder.path} to output features, h0 and c0, got ${Object.keys(encoded).join(', ')}`,
        { path: encoder.path });
    }
    return { features, h0, c0 };
  }
  const prefetched = new WeakMap<CaptionRequest, Promise<{ settings: SearchSettings; pixels: Float32Array }>>();

  function prefetch(request: CaptionRequest): void {
    if (prefetched.has(request)) return;
    const preparing = prepare(request);
    preparing.catch(() => undefined);   // its error is the batch's to report, when a batch takes it
    prefetched.set(request, preparing);
  }

  async function captionBatch(requests: readonly CaptionRequest[], run: CaptionRunOptions = {}): Promise<Array<CaptionResult | PictalkError>> {
    if (requests.length === 0) return [];
    if (requests.length > maxBatch) {
      throw new PictalkError('input.too_large', `Expected at most ${maxBatch} images in one batch, got ${requests.length}`);
    }
    const started = performance.now();
    const checkAbort = (): void => {
      if (run.signal?.aborted) throw new PictalkError('job.cancelled', 'The caption job was cancelled');
    };
    checkAbort();

    // decode and encode overlap: sharp decodes every image on its own threads while the encoder, on this one, runs on
    // the images decoded so far, each call taking all that are ready as one batch. The encoder's cost grows with its
    // batch almost linearly, so a batch of captions no longer waits for its slowest decode before encoding starts.
    // A request with a bad option or image keeps its error in its slot.
    const plane = 3 * height * width;
    const slots: Array<SearchSettings | PictalkError | undefined> = requests.map(() => undefined);
    const pixelsOf: Array<Float32Array | undefined> = requests.map(() => undefined);
    const ready: number[] = [];
    let wake: (() => void) | undefined;
    let decodeFailure: { error: unknown } | undefined;
    let settled = 0;
    const decodes = requests.map(async (request, i) => {
      try {
        const preparing = prefetched.get(request) ?? prepare(request);
        prefetched.delete(request);
        const { settings, pixels } = await preparing;
        pixelsOf[i] = pixels;
        slots[i] = settings;
        ready.push(i);
      } catch (error) {
        if (isPictalkError(error) && error.code.startsWith('input.')) slots[i] = error;
        else decodeFailure ??= { error };
      } finally {
        settled += 1;
        wake?.();
      }
    });
    // per image (by request index): features [F...] and, per layer, h0 and c0 rows
    const encodedOf: Array<{ features: Float32Array; h: Float32Array[]; c: Float32Array[] } | undefined> = requests.map(() => undefined);
    let decodedAt = started;
    let featureDims: readonly number[] = [];
    let layers = 0;
    let hidden = 0;
    let encoding = 0;
    run.onProgress?.({ stage: 'encode', step: 0, total: 1 });
    try {
      for (;;) {
        if (decodeFailure) throw decodeFailure.error;
        if (ready.length === 0) {
          if (settled === requests.length) break;
          await new Promise<void>((resolve) => { wake = resolve; });
          wake = undefined;
          continue;
        }
        checkAbort();
        const take = ready.splice(0, ready.length);
        if (settled === requests.length && decodedAt === started) decodedAt = performance.now();
        const n = take.length;
        const pixels = n === 1 ? pixelsOf[take[0]!]! : new Float32Array(n * plane);
        if (n > 1) take.forEach((i, j) => pixels.set(pixelsOf[i]!, j * plane));
        const callStarted = performance.now();
        const encoded = await encoder.run({ pixel_values: { data: pixels, dims: [n, 3, height, width] } });
        encoding += performance.now() - callStarted;
        const { features, h0, c0 } = encoderOutputs(encoded);
        [layers, , hidden] = h0.dims as [number, number, number];
        featureDims = features.dims.slice(1);
        const featureSize = features.data.length / n;
        take.forEach((i, j) => {
          encodedOf[i] = {
            features: features.data.subarray(j * featureSize, (j + 1) * featureSize),
            h: Array.from({ length: layers }, (_, l) => h0.data.subarray((l * n + j) * hidden, (l * n + j + 1) * hidden)),
            c: Array.from({ length: layers }, (_, l) => c0.data.subarray((l * n + j) * hidden, (l * n + j + 1) * hidden)),
          };
          pixelsOf[i] = undefined;
        });
      }
    } finally {
      // a failure above leaves no decode running unobserved
      await Promise.all(decodes);
    }
    if (decodedAt === started) decodedAt = performance.now();
    checkAbort();
    const good = slots.flatMap((slot, i) => (isPictalkError(slot) || slot === undefined ? [] : [i]));
    const settings = good.map((i) => slots[i] as SearchSettings);
    const batch = good.length;
    if (batch === 0) return slots as PictalkError[];
    // the encoded images, in request order: features [batch, F...], h0 and c0 [layers, batch, hidden]
    const featureSize = encodedOf[good[0]!]!.features.length;
    const features0 = new Float32Array(batch * featureSize);
    const h0 = new Float32Array(layers * batch * hidden);
    const c0 = new Float32Array(layers * batch * hidden);
    good.forEach((i, j) => {
      const one = encodedOf[i]!;
      features0.set(one.features, j * featureSize);
      for (let l = 0; l < layers; l += 1) {
        h0.set(one.h[l]!, (l * batch + j) * hidden);
        c0.set(one.c[l]!, (l * batch + j) * hidden);
      }
    });
    const encodedAt = performance.now();

    // search: one decoder call per step over all live hypotheses of all images, in image order
    const searches: ImageSearch[] = settings.map((s) => ({ settings: s, live: [{ ids: [], sum: 0 }], finished: [], done: false }));
    let h: Float32Array = h0;
    let c: Float32Array = c0;
    let features: Float32Array = features0;
    // which rows `features` holds: every row of an image carries that image's features, so they change only when
    // an image's number of live hypotheses does (a few times per search), not at every step
    const layoutOf = (): string => searches.map((s) => s.live.length).join(',');
    let featureLayout = layoutOf();
    let rowFeatures: Float32Array | undefined;
    // each image's result as soon as its search ends (run.onCaption hears it then), the rest when the batch ends
    const results: Array<CaptionResult | undefined> = settings.map(() => undefined);
    const resultOf = (search: ImageSearch, endedAt: number): CaptionResult => {
      const alpha = search.settings.lengthPenalty;
      let best: Hypothesis | undefined;
      let bestNorm = -Infinity;
      for (const hyp of search.finished) {
        const norm = hyp.sum / hyp.ids.length ** alpha;
        if (norm > bestNorm) { best = hyp; bestNorm = norm; }
      }
      const ids = (best?.ids ?? []).filter((id) => id !== config.eosId);
      return {
        kind: 'caption' as const,
        caption: postProcess(ids.filter((id) => !specials.has(id)).map((id) => vocab[id]!)),
        tokens: ids.map((id) => vocab[id]!),
        score: bestNorm,
        timingsMs: {
          // decode: until the last image was decoded; encode: the encoder's own calls (they overlap the decoding)
          decode: decodedAt - started,
          encode: encoding,
          search: endedAt - encodedAt,
          total: endedAt - started,
        },
      };
    };
    const longest = Math.max(...settings.map((s) => s.maxLength));
    const vocabSize = vocab.length;
    const logp = new Float64Array(vocabSize);
    for (let t = 0; t < longest; t += 1) {
      checkAbort();
      run.onProgress?.({ stage: 'caption', step: t, total: longest });
      const active = searches.filter((s) => !s.done);
      if (active.length === 0) break;
      const rows = active.reduce((n, s) => n + s.live.length, 0);
      const lastIds = active.flatMap((s) => s.live.map((hyp) => hyp.ids.at(-1) ?? config.bosId));
      const ids = idsType === 'int64' ? BigInt64Array.from(lastIds, (id) => BigInt(id)) : Int32Array.from(lastIds);
      const out = await decoder.run({
        input_ids: { data: ids, dims: [rows] },
        h: { data: h, dims: [layers, rows, hidden] },
        c: { data: c, dims: [layers, rows, hidden] },
        ...(perImage ? {
          features: { data: features0, dims: [batch, ...featureDims] },
          feature_rows: { data: BigInt64Array.from(searches.flatMap((s, j) => s.live.map(() => BigInt(j)))), dims: [rows] },
        } : { features: { data: features, dims: [rows, ...featureDims] } }),
      });
      const logits = out.logits?.data as Float32Array | undefined;
      if (!logits || logits.length !== rows * vocabSize) {
        throw new PictalkError('model.invalid', `Expected logits [${rows}, ${vocabSize}] from ${decoder.path}, got ${out.logits ? `[${out.logits.dims.join(', ')}]` : 'none'}`,
          { path: decoder.path });
      }
      const keep: number[] = [];   // rows (of this step's batch) that stay live, in the new order
      let row = 0;
      for (const search of active) {
        const { beam, maxLength } = search.settings;
        const want = beam - search.finished.length;
        // the best `want` candidates by sum + logp descending, ties by flat index (hypothesis, token) ascending;
        // kept sorted with an insertion step: `want` is at most 16
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
        for (let j = 0; j < bestFlat.length; j += 1) {
          const b = Math.floor(bestFlat[j]! / vocabSize);
          const token = bestFlat[j]! % vocabSize;
          const hyp = { ids: [...search.live[b]!.ids, token], sum: bestScore[j]! };
          if (token === config.eosId) search.finished.push(hyp);
          else { nextLive.push(hyp); keep.push(row + b); }
        }
        row += search.live.length;
        if (nextLive.length === 0 || search.finished.length >= beam) {
          search.live = [];
          search.done = true;
        } else if (t + 1 >= maxLength) {
          // max_length reached: the live ones are finished as they are
          search.finished.push(...nextLive);
          search.live = [];
          search.done = true;
          keep.splice(keep.length - nextLive.length, nextLive.length);
        } else {
          search.live = nextLive;
        }
      }
      if (run.onCaption) {
        const now = performance.now();
        searches.forEach((search, j) => {
          if (search.done && !results[j]) {
            results[j] = resultOf(search, now);
            run.onCaption!(good[j]!, results[j]!);
          }
        });
      }
      if (keep.length === 0) break;
      h = gatherRows(out.h_out!.data as Float32Array, layers, rows, hidden, keep);
      c = gatherRows(out.c_out!.data as Float32Array, layers, rows, hidden, keep);
      // with `feature_rows` the step reads features0 as it is; otherwise each row carries its image's features
      const layout = perImage ? featureLayout : layoutOf();
      if (layout !== featureLayout) {
        // one buffer for the whole search, written in place: a fresh multi-megabyte array per change costs more
        // than the decoder step itself once the features are large (64 cells with their keys, 8 images x 3 beams)
        rowFeatures ??= new Float32Array(settings.reduce((n, s) => n + s.beam, 0) * featureSize);
        features = rowFeatures.subarray(0, keep.length * featureSize);
        let at = 0;
        searches.forEach((search, j) => {
          const one = features0.subarray(j * featureSize, (j + 1) * featureSize);
          for (let k = 0; k < search.live.length; k += 1, at += featureSize) features.set(one, at);
        });
        featureLayout = layout;
      }
    }
    const searchedAt = performance.now();

    for (let j = 0; j < batch; j += 1) results[j] ??= resultOf(searches[j]!, searchedAt);
    return slots.map((slot, i) => (isPictalkError(slot) ? slot : results[good.indexOf(i)]!));
  }

  const wordIds = new Map(vocab.map((word, id) => [word, id] as const));

  async function scoreText(images: readonly Buffer[], text: string, run: CaptionRunOptions = {}): Promise<number[]> {
    if (images.length === 0) return [];
    if (images.length > maxBatch) {
      throw new PictalkError('input.too_large', `Expected at most ${maxBatch} images to score at once, got ${images.length}`);
    }
    const words = captionWords(text).slice(0, config.maxLength - 1);
    const targets = [...words.map((word) => wordIds.get(word) ?? config.unkId), config.eosId];
    const n = images.length;
    const plane = 3 * height * width;
    const pixels = new Float32Array(n * plane);
    const prepared = await Promise.all(images.map((image) => prepare({ image })));
    prepared.forEach((one, i) => pixels.set(one.pixels, i * plane));
    if (run.signal?.aborted) throw new PictalkError('job.cancelled', 'The scoring job was cancelled');
    const { features, h0, c0 } = encoderOutputs(await encoder.run({ pixel_values: { data: pixels, dims: [n, 3, height, width] } }));
    let h = h0.data;
    let c = c0.data;
    const [layers, , hidden] = h0.dims as [number, number, number];
    const sums = new Float64Array(n);
    const logp = new Float64Array(vocab.length);
    const imageRows = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));   // one row per image
    let previous = config.bosId;
    for (const target of targets) {
      const ids = idsType === 'int64' ? new BigInt64Array(n).fill(BigInt(previous)) : new Int32Array(n).fill(previous);
      const out = await decoder.run({
        input_ids: { data: ids, dims: [n] },
        h: { data: h, dims: [layers, n, hidden] },
        c: { data: c, dims: [layers, n, hidden] },
        features: { data: features.data, dims: features.dims },
        ...(perImage ? { feature_rows: { data: imageRows, dims: [n] } } : {}),
      });
      const logits = out.logits!.data as Float32Array;
      for (let i = 0; i < n; i += 1) {
        logSoftmaxRow(logits, i, vocab.length, logp);
        sums[i] = sums[i]! + logp[target]!;
      }
      h = out.h_out!.data as Float32Array;
      c = out.c_out!.data as Float32Array;
      previous = target;
    }
    return Array.from(sums, (sum) => sum / targets.length);
  }

  return {
    folder,
    prefetch,
    scoreText: async (images, text, run) => {
      try {
        return await scoreText(images, text, run);
      } catch (error) {
        throw asInferenceError(error, 'Scoring');
      }
    },
    captionBatch: async (requests, run) => {
      try {
        return await captionBatch(requests, run);
      } catch (error) {
        throw asInferenceError(error, 'Captioning');
      }
    },
    caption: async (request, run) => {
      const [result] = await captionBatch([request], run).catch((error: unknown) => { throw asInferenceError(error, 'Captioning'); });
      if (isPictalkError(result)) throw result;
      return result!;
    },
    async dispose() {
      await Promise.all([encoder.dispose(), decoder.dispose()]);
    },
  };
}
