/**
 * Image-to-text: the CNN-LSTM captioner over a `captioner/` folder (models/README.md).
 *
 * decode (image.codec) and encode as decoded (encode-as-decoded.ts: encoder.onnx, pixels -> features, h0, c0) ->
 * greedy or beam search (beam.search.ts, pure) over decoder_step.onnx. The search is batched across images: every
 * live hypothesis of every image goes into one decoder call per step, and the step graph reads each image's features
 * once, by the `feature_rows` index of each hypothesis. The search is the one models/train/caption_beam.py defines
 * (Show, Attend and Tell style, shrinking beam); tests/fixtures/tiny-captioner/parity.json holds its ids and scores.
 * A step graph that carries its glimpse (models/README.md, "The carried glimpse": the builtin captioner's) gets the
 * encoder's `context0` at the first step and its own `context_out` after that, rows kept like h and c.
 * Each result also says whether the image is like the ones the captioner knows (domain.check.ts, `inDomain`),
 * judged from the same encoder features, so the check costs no extra graph call.
 */
import { PictalkError, asInferenceError, describe, isPictalkError } from '../common/errors.js';
import { domainCheck, poolFeatures, readDomainStats, type DomainCheck, type DomainVerdict } from './domain.check.js';
import { beamSearch, logSoftmaxRow, type SearchModel, type SearchResult, type SearchSettings } from './beam.search.js';
import { encodeAsDecoded } from './encode-as-decoded.js';
import { imageToTensor, type DecodeLimits, type ImageInput, type TensorOptions } from './image.codec.js';
import { readCaptionerFolder, type CaptionerFolder } from './model-folder.js';
import { MAX_LANES, openModel, type BackendOptions, type OnnxModel, type TensorValue } from './onnx.backend.js';
import type { CaptionRequest, CaptionResult, CaptionRunOptions } from './types.js';

export interface ImageToTextOptions {
  backend?: BackendOptions;
  /**
   * On how many inference threads (the backend's lanes) the captioner opens its graphs; 2 by default. Each call takes
   * the least busy set, so two caption batches in flight run side by side on two cores instead of taking turns.
   * Undefined takes the default, so a caller can pass an unset setting as it is.
   */
  lanes?: number | undefined;
  limits?: DecodeLimits;
  /** Most images in one `captionBatch` call; 16 by default. */
  maxBatch?: number;
  /** false: leave the folder's domain.json unread, no check (its calibration script, which replaces the file). */
  domainCheck?: boolean;
}

export interface ImageToText {
  readonly folder: CaptionerFolder;
  /** The out-of-domain check from the folder's domain.json; undefined for a general-purpose folder or one without. */
  readonly domain: DomainCheck | undefined;
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
   * comparison between images of the same text means anything: the text's own prior cancels there. An image is
   * encoded bytes, or RGB pixels in memory (a pipeline's own pictures: the same score as their PNG, with no PNG made).
   */
  scoreText(images: readonly ImageInput[], text: string, options?: CaptionRunOptions): Promise<number[]>;
  /**
   * The encoder's features of each image averaged over positions ([F] per image): what the domain check judges.
   * For calibrating the check (models/train/calibrate_domain.ts) and measuring it (`npm run eval`).
   */
  embed(images: readonly Buffer[], options?: CaptionRunOptions): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

/** The captioner's lanes unless `lanes` says otherwise (scripts/BENCH.md, "The round of the caption lanes"). */
export const DEFAULT_CAPTION_LANES = 2;

/** One lane's encoder and decoder, and how many calls are using them. */
interface GraphSet {
  encoder: OnnxModel;
  decoder: OnnxModel;
  busy: number;
}

/** The array itself when it is the only view of its buffer, else a copy that is (safe to lend to the inference thread). */
const ownBuffer = (data: Float32Array): Float32Array =>
  (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice());

/** The training side's caption preprocessing (models/train/datasets.py `tokenize`): lower case, letters only. */
export function captionWords(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z]+/g, ' ').split(' ').filter((word) => word.length > 1 || word === 'a');
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

/**
 * The inputs the pipeline feeds, or `model.invalid` naming what the graphs have instead: the type of `input_ids`, and
 * whether the decoder carries the glimpse (models/README.md, "The carried glimpse": an input `context` and an output
 * `context_out`, and the encoder's `context0` for the first step).
 */
function checkGraphs(encoder: OnnxModel, decoder: OnnxModel): { idsType: 'int64' | 'int32'; carried: boolean } {
  for (const [model, names] of [[encoder, ['pixel_values']], [decoder, ['input_ids', 'h', 'c', 'features', 'feature_rows']]] as const) {
    for (const name of names) {
      if (!model.hasInput(name)) {
        throw new PictalkError('model.invalid', `Expected ${model.path} to have an input named \`${name}\`, it has ${model.inputNames.join(', ')}`,
          { path: model.path });
      }
    }
  }
  // the step graph takes each image's features once and the image of every hypothesis by index (`feature_rows`)
  if (decoder.inputType('feature_rows') !== 'int64') {
    throw new PictalkError('model.invalid', `Expected \`feature_rows\` of ${decoder.path} to be int64, got ${decoder.inputType('feature_rows')}`, { path: decoder.path });
  }
  const idsType = decoder.inputType('input_ids');
  if (idsType !== 'int64' && idsType !== 'int32') {
    throw new PictalkError('model.invalid', `Expected \`input_ids\` of ${decoder.path} to be int64 or int32, got ${idsType}`, { path: decoder.path });
  }
  const carried = decoder.hasInput('context');
  if (carried) {
    for (const [model, name] of [[decoder, 'context_out'], [encoder, 'context0']] as const) {
      if (!model.outputNames.includes(name)) {
        throw new PictalkError('model.invalid', `Expected ${model.path} to output \`${name}\` (the decoder step takes \`context\`), it outputs ${model.outputNames.join(', ')}`,
          { path: model.path });
      }
    }
  }
  return { idsType, carried };
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
  // the domain check: statistics of this encoder's features on the training images (model.invalid if stale)
  const domain = folder.domainPath && !folder.generalPurpose && options.domainCheck !== false ? domainCheck(readDomainStats(folder.domainPath, folder.encoderPath)) : undefined;
  const judge = (features: TensorValue<Float32Array>, i: number): DomainVerdict | undefined =>
    domain?.judge(poolFeatures(features.data, features.dims, i));
  const maxBatch = options.maxBatch ?? 16;
  const laneCount = options.lanes ?? DEFAULT_CAPTION_LANES;
  if (!Number.isInteger(laneCount) || laneCount < 1 || laneCount > MAX_LANES) {
    throw new PictalkError('config.invalid', `Expected \`lanes\` to be an integer from 1 to ${MAX_LANES}, got ${describe(laneCount)}`);
  }
  // one set of the two graphs per lane, the highest lane first: a lone call takes the lane the UNet is not on
  const sets: GraphSet[] = [];
  const opened: OnnxModel[] = [];
  let idsType: 'int64' | 'int32';
  let carried: boolean;
  try {
    for (let lane = laneCount - 1; lane >= 0; lane -= 1) {
      const backend = { ...options.backend, lane };
      const encoder = await openModel(folder.encoderPath, backend);
      opened.push(encoder);
      const decoder = await openModel(folder.decoderPath, backend);
      opened.push(decoder);
      sets.push({ encoder, decoder, busy: 0 });
    }
    ({ idsType, carried } = checkGraphs(sets[0]!.encoder, sets[0]!.decoder));
  } catch (error) {
    await Promise.all(opened.map((model) => model.dispose()));
    throw error;
  }
  // for the paths in messages (every lane opens the same files)
  const { encoder, decoder } = sets[0]!;
  const specials = new Set([config.padId, config.bosId, config.eosId, config.unkId]);
  const [height, width] = config.imageSize;
  const tensorOptions: TensorOptions = { size: [height, width], mean: config.mean, std: config.std, kernel: 'bilinear', ...options.limits };

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
    const pixels = await imageToTensor(request.image, tensorOptions);
    return { settings, pixels };
  }
  /** The images as one batch [n, 3, H, W] of the encoder's input. */
  async function batchOf(images: readonly ImageInput[]): Promise<Float32Array> {
    const plane = 3 * height * width;
    const pixels = new Float32Array(images.length * plane);
    await Promise.all(images.map((image, i) => imageToTensor(image, tensorOptions, pixels, i * plane)));
    return pixels;
  }
  type Tensor = TensorValue<Float32Array>;
  /** The encoder's outputs (the first glimpse too, where the decoder carries it), or `model.invalid` naming what it gave instead. */
  function encoderOutputs(encoded: Record<string, TensorValue>): { features: Tensor; h0: Tensor; c0: Tensor; context0: Tensor | undefined } {
    const { features, h0, c0, context0 } = encoded as Record<string, Tensor | undefined>;
    if (!features || !h0 || !c0 || (carried && !context0)) {
      throw new PictalkError('model.invalid', `Expected ${encoder.path} to output features, h0, c0${carried ? ' and context0' : ''}, got ${Object.keys(encoded).join(', ')}`,
        { path: encoder.path });
    }
    return { features, h0, c0, context0: carried ? context0 : undefined };
  }
  /** The decoder's recurrent outputs: h and c [layers, rows, hidden], the glimpse [rows, F] where it is carried (checkGraphs saw it). */
  const stepState = (out: Record<string, TensorValue>): { h: Float32Array; c: Float32Array; context: Float32Array | undefined } =>
    ({ h: out.h_out!.data as Float32Array, c: out.c_out!.data as Float32Array, context: out.context_out?.data as Float32Array | undefined });
  const prefetched = new WeakMap<CaptionRequest, Promise<{ settings: SearchSettings; pixels: Float32Array }>>();

  function prefetch(request: CaptionRequest): void {
    if (prefetched.has(request)) return;
    const preparing = prepare(request);
    preparing.catch(() => undefined);   // its error is the batch's to report, when a batch takes it
    prefetched.set(request, preparing);
  }

  /** Run `work` on the least busy lane's graphs (the highest lane on a tie). */
  async function onLane<T>(work: (set: GraphSet) => Promise<T>): Promise<T> {
    const set = sets.reduce((best, one) => (one.busy < best.busy ? one : best));
    set.busy += 1;
    try {
      return await work(set);
    } finally {
      set.busy -= 1;
    }
  }

  async function captionBatch(set: GraphSet, requests: readonly CaptionRequest[], run: CaptionRunOptions = {}): Promise<Array<CaptionResult | PictalkError>> {
    if (requests.length === 0) return [];
    if (requests.length > maxBatch) {
      throw new PictalkError('input.too_large', `Expected at most ${maxBatch} images in one batch, got ${requests.length}`);
    }
    const started = performance.now();
    const checkAbort = (): void => {
      if (run.signal?.aborted) throw new PictalkError('job.cancelled', 'The caption job was cancelled');
    };
    checkAbort();

    // decode and encode: a request with a bad option or image keeps its error in its slot
    run.onProgress?.({ stage: 'encode', step: 0, total: 1 });
    const plane = 3 * height * width;
    let layers = 0;
    let hidden = 0;
    let featureDims: readonly number[] = [];
    let glimpse = 0;   // the carried glimpse's width (0: not carried)
    type Encoded = { settings: SearchSettings; features: Float32Array; h: Float32Array[]; c: Float32Array[]; context: Float32Array | undefined; verdict: DomainVerdict | undefined };
    const { outcomes, decodedAt, encodingMs } = await encodeAsDecoded(requests.map((request) => {
      const preparing = prefetched.get(request) ?? prepare(request);
      prefetched.delete(request);
      return preparing;
    }), async (_indices, decoded): Promise<Encoded[]> => {
      const n = decoded.length;
      const pixels = n === 1 ? decoded[0]!.pixels : new Float32Array(n * plane);
      if (n > 1) decoded.forEach((one, j) => pixels.set(one.pixels, j * plane));
      const { features, h0, c0, context0 } = encoderOutputs(await set.encoder.run({ pixel_values: { data: pixels, dims: [n, 3, height, width] } }));
      [layers, , hidden] = h0.dims as [number, number, number];
      featureDims = features.dims.slice(1);
      const featureSize = features.data.length / n;
      glimpse = context0 ? context0.data.length / n : 0;
      // per image: features [F...] and, per layer, its h0 and c0 rows
      return decoded.map((one, j) => ({
        settings: one.settings,
        features: features.data.subarray(j * featureSize, (j + 1) * featureSize),
        h: Array.from({ length: layers }, (_, l) => h0.data.subarray((l * n + j) * hidden, (l * n + j + 1) * hidden)),
        c: Array.from({ length: layers }, (_, l) => c0.data.subarray((l * n + j) * hidden, (l * n + j + 1) * hidden)),
        context: context0?.data.subarray(j * glimpse, (j + 1) * glimpse),
        verdict: judge(features, j),
      }));
    }, checkAbort);
    checkAbort();
    const good = outcomes.flatMap((outcome, i) => (isPictalkError(outcome) ? [] : [i]));
    const encoded = good.map((i) => outcomes[i] as Encoded);
    const batch = encoded.length;
    if (batch === 0) return outcomes as PictalkError[];

    // the encoded images, in request order: features [batch, F...], h0 and c0 [layers, batch, hidden]
    const featureSize = encoded[0]!.features.length;
    const features = new Float32Array(batch * featureSize);
    let h: Float32Array = new Float32Array(layers * batch * hidden);
    let c: Float32Array = new Float32Array(layers * batch * hidden);
    let context: Float32Array | undefined = glimpse ? new Float32Array(batch * glimpse) : undefined;
    encoded.forEach((one, j) => {
      features.set(one.features, j * featureSize);
      context?.set(one.context!, j * glimpse);
      for (let l = 0; l < layers; l += 1) {
        h.set(one.h[l]!, (l * batch + j) * hidden);
        c.set(one.c[l]!, (l * batch + j) * hidden);
      }
    });
    const encodedAt = performance.now();
    // the same features at every step: lent to the inference thread for each call, not copied there each time
    const featureFeed: TensorValue<Float32Array> = { data: features, dims: [batch, ...featureDims] };

    // search: one decoder step per search step over all live rows; the model side carries h and c of the kept rows
    let last: { h: Float32Array; c: Float32Array; context: Float32Array | undefined; rows: number } | undefined;
    const model: SearchModel = {
      vocabSize: vocab.length,
      bosId: config.bosId,
      eosId: config.eosId,
      async step(lastIds, imageOfRow) {
        const rows = lastIds.length;
        const out = await set.decoder.run({
          input_ids: { data: idsType === 'int64' ? BigInt64Array.from(lastIds, (id) => BigInt(id)) : Int32Array.from(lastIds), dims: [rows] },
          h: { data: h, dims: [layers, rows, hidden] },
          c: { data: c, dims: [layers, rows, hidden] },
          ...(context ? { context: { data: context, dims: [rows, glimpse] } } : {}),
          features: featureFeed,
          feature_rows: { data: BigInt64Array.from(imageOfRow, (image) => BigInt(image)), dims: [rows] },
        }, undefined, ['features']);
        const logits = out.logits?.data as Float32Array | undefined;
        if (!logits || logits.length !== rows * vocab.length) {
          throw new PictalkError('model.invalid', `Expected logits [${rows}, ${vocab.length}] from ${decoder.path}, got ${out.logits ? `[${out.logits.dims.join(', ')}]` : 'none'}`,
            { path: decoder.path });
        }
        last = { ...stepState(out), rows };
        return logits;
      },
      keep(rows) {
        h = gatherRows(last!.h, layers, last!.rows, hidden, rows);
        c = gatherRows(last!.c, layers, last!.rows, hidden, rows);
        if (last!.context) context = gatherRows(last!.context, 1, last!.rows, glimpse, rows);
      },
    };
    // each image's result as soon as its search ends (run.onCaption hears it then), the rest when the batch ends
    const results: Array<CaptionResult | undefined> = encoded.map(() => undefined);
    const resultOf = (found: SearchResult, j: number): CaptionResult => {
      const endedAt = performance.now();
      const ids = found.ids.filter((id) => id !== config.eosId);
      const verdict = encoded[j]!.verdict;
      return {
        kind: 'caption' as const,
        caption: postProcess(ids.filter((id) => !specials.has(id)).map((id) => vocab[id]!)),
        tokens: ids.map((id) => vocab[id]!),
        score: found.score,
        // no check (a general-purpose folder): every image is in its domain
        inDomain: verdict?.inDomain ?? true,
        ...(verdict ? { domainScore: verdict.score } : {}),
        timingsMs: {
          // decode: until the last image was decoded; encode: the encoder's own calls (they overlap the decoding)
          decode: decodedAt - started,
          encode: encodingMs,
          search: endedAt - encodedAt,
          total: endedAt - started,
        },
      };
    };
    const found = await beamSearch(encoded.map((one) => one.settings), model, {
      beforeStep: (step, total) => { checkAbort(); run.onProgress?.({ stage: 'caption', step, total }); },
      onResult: (j, result) => {
        results[j] = resultOf(result, j);
        run.onCaption?.(good[j]!, results[j]!);
      },
    });
    found.forEach((result, j) => { results[j] ??= resultOf(result, j); });
    return outcomes.map((outcome, i) => (isPictalkError(outcome) ? outcome : results[good.indexOf(i)]!));
  }

  const wordIds = new Map(vocab.map((word, id) => [word, id] as const));

  async function scoreText(set: GraphSet, images: readonly ImageInput[], text: string, run: CaptionRunOptions = {}): Promise<number[]> {
    if (images.length === 0) return [];
    if (images.length > maxBatch) {
      throw new PictalkError('input.too_large', `Expected at most ${maxBatch} images to score at once, got ${images.length}`);
    }
    const words = captionWords(text).slice(0, config.maxLength - 1);
    const targets = [...words.map((word) => wordIds.get(word) ?? config.unkId), config.eosId];
    const n = images.length;
    const pixels = await batchOf(images);
    if (run.signal?.aborted) throw new PictalkError('job.cancelled', 'The scoring job was cancelled');
    const { features, h0, c0, context0 } = encoderOutputs(await set.encoder.run({ pixel_values: { data: pixels, dims: [n, 3, height, width] } }));
    let h = h0.data;
    let c = c0.data;
    let context = context0?.data;
    const [layers, , hidden] = h0.dims as [number, number, number];
    const sums = new Float64Array(n);
    const logp = new Float64Array(vocab.length);
    const imageRows = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));   // one row per image
    // the same features at every step: lent to the inference thread for each call (an array of their own)
    const featureFeed = { data: ownBuffer(features.data), dims: features.dims };
    let previous = config.bosId;
    for (const target of targets) {
      const ids = idsType === 'int64' ? new BigInt64Array(n).fill(BigInt(previous)) : new Int32Array(n).fill(previous);
      const out = await set.decoder.run({
        input_ids: { data: ids, dims: [n] },
        h: { data: h, dims: [layers, n, hidden] },
        c: { data: c, dims: [layers, n, hidden] },
        ...(context ? { context: { data: context, dims: [n, context.length / n] } } : {}),
        features: featureFeed,
        feature_rows: { data: imageRows, dims: [n] },
      }, undefined, ['features']);
      const logits = out.logits!.data as Float32Array;
      for (let i = 0; i < n; i += 1) {
        logSoftmaxRow(logits, i, vocab.length, logp);
        sums[i] = sums[i]! + logp[target]!;
      }
      ({ h, c, context } = stepState(out));
      previous = target;
    }
    return Array.from(sums, (sum) => sum / targets.length);
  }

  async function embed(set: GraphSet, images: readonly Buffer[], run: CaptionRunOptions = {}): Promise<Float32Array[]> {
    if (images.length === 0) return [];
    if (images.length > maxBatch) {
      throw new PictalkError('input.too_large', `Expected at most ${maxBatch} images to embed at once, got ${images.length}`);
    }
    const pixels = await batchOf(images);
    if (run.signal?.aborted) throw new PictalkError('job.cancelled', 'The embedding job was cancelled');
    const { features } = encoderOutputs(await set.encoder.run({ pixel_values: { data: pixels, dims: [images.length, 3, height, width] } }));
    return images.map((_, i) => poolFeatures(features.data, features.dims, i));
  }

  return {
    folder,
    domain,
    prefetch,
    embed: async (images, run) => {
      try {
        return await onLane((set) => embed(set, images, run));
      } catch (error) {
        throw asInferenceError(error, 'Embedding');
      }
    },
    scoreText: async (images, text, run) => {
      try {
        return await onLane((set) => scoreText(set, images, text, run));
      } catch (error) {
        throw asInferenceError(error, 'Scoring');
      }
    },
    captionBatch: async (requests, run) => {
      try {
        return await onLane((set) => captionBatch(set, requests, run));
      } catch (error) {
        throw asInferenceError(error, 'Captioning');
      }
    },
    caption: async (request, run) => {
      const [result] = await onLane((set) => captionBatch(set, [request], run)).catch((error: unknown) => { throw asInferenceError(error, 'Captioning'); });
      if (isPictalkError(result)) throw result;
      return result!;
    },
    async dispose() {
      await Promise.all(sets.flatMap((set) => [set.encoder.dispose(), set.decoder.dispose()]));
    },
  };
}
