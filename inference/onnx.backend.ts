/**
 * The ONNX backend: the only module that imports onnxruntime-node (see eslint.config.js).
 *
 * Pipelines open models through `openModel()` and speak plain typed arrays to the returned `OnnxModel`, so no
 * other file needs onnxruntime's types. Sessions are cached by path + options and reference-counted: two pipelines
 * (or two requests) that open the same file share one warm session, and the session is released when the last
 * holder calls `dispose()`.
 * @see https://onnxruntime.ai/docs/api/js/interfaces/InferenceSession.SessionOptions.html
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { PictalkError, asInferenceError, describe } from '../common/errors.js';

export type ExecutionProvider = 'cpu' | 'cuda';
export type GraphOptimization = 'disabled' | 'basic' | 'extended' | 'all';

/** The tensor element types pictalk feeds and reads. */
export type TensorDType = 'float32' | 'int32' | 'int64';
export type TensorData = Float32Array | Int32Array | BigInt64Array;

/** A named input or output: flat data in C order plus its dimensions. */
export interface TensorValue<D extends TensorData = TensorData> {
  data: D;
  dims: readonly number[];
}

export type Feeds = Record<string, TensorValue>;

/** What the session says about one input or output. `shape` holds symbolic names for free dimensions. */
export interface ValueInfo {
  name: string;
  /** onnxruntime's element type name: `float32`, `int64`, `float16`, ... (not only the ones pictalk feeds). */
  dtype: string;
  shape: readonly (number | string)[];
}

export interface BackendOptions {
  /** `cpu` unless set here (adapters/config.ts reads PICTALK_EXECUTION_PROVIDER); CUDA falls back to CPU with one log line. */
  executionProvider?: ExecutionProvider;
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimization?: GraphOptimization;
  /**
   * Whether onnxruntime's idle pool threads spin while they wait for work (default: no; onnxruntime's own default
   * is yes). On a small machine spinning threads burn the cores that sharp's decoding and the other sessions need:
   * with them off, eight captioning clients got about 40% more captions a second on two cores (scripts/BENCH.md).
   */
  allowSpinning?: boolean;
  /** Where the one fallback line goes; console.warn by default. */
  log?: (line: string) => void;
}

interface ResolvedOptions {
  executionProvider: ExecutionProvider;
  allowSpinning: boolean;
  intraOpThreads: number;      // 0 = onnxruntime's default
  interOpThreads: number;
  graphOptimization: GraphOptimization;
}

const DTYPE_OF: ReadonlyMap<string, TensorDType> = new Map([
  ['Float32Array', 'float32'], ['Int32Array', 'int32'], ['BigInt64Array', 'int64'],
]);

function validateThreads(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0 || value > 256) {
    throw new PictalkError('config.invalid', `Expected \`${name}\` to be an integer from 0 to 256, got ${describe(value)}`);
  }
  return value;
}

function resolveOptions(options: BackendOptions): ResolvedOptions {
  const provider = options.executionProvider ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda') {
    throw new PictalkError('config.invalid', `Expected the execution provider to be \`cpu\` or \`cuda\`, got ${describe(provider)}`);
  }
  const graphOptimization = options.graphOptimization ?? 'all';
  if (!['disabled', 'basic', 'extended', 'all'].includes(graphOptimization)) {
    throw new PictalkError('config.invalid',
      `Expected \`graphOptimization\` to be one of disabled, basic, extended, all, got ${describe(graphOptimization)}`);
  }
  return {
    executionProvider: provider,
    allowSpinning: options.allowSpinning ?? false,
    intraOpThreads: validateThreads('intraOpThreads', options.intraOpThreads),
    interOpThreads: validateThreads('interOpThreads', options.interOpThreads),
    graphOptimization,
  };
}

function toValueInfo(meta: ort.InferenceSession.ValueMetadata): ValueInfo {
  return meta.isTensor
    ? { name: meta.name, dtype: meta.type, shape: meta.shape }
    : { name: meta.name, dtype: 'non-tensor', shape: [] };
}

/** One loaded graph. Obtain it with `openModel()`; call `dispose()` when done with it. */
export class OnnxModel {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly byInput: ReadonlyMap<string, ValueInfo>;

  /** @internal created by openModel() */
  constructor(
    readonly path: string,
    readonly provider: ExecutionProvider,
    private readonly session: ort.InferenceSession,
    private readonly release: () => Promise<void>,
  ) {
    this.inputs = session.inputMetadata.map(toValueInfo);
    this.outputs = session.outputMetadata.map(toValueInfo);
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    this.byInput = new Map(this.inputs.map((info) => [info.name, info]));
  }

  /** The element type the graph declares for an input, e.g. the UNet timestep: `int64` in some exports, `float32` in others. */
  inputType(name: string): string {
    const info = this.byInput.get(name);
    if (!info) {
      throw new PictalkError('model.invalid',
        `Expected ${this.path} to have an input named \`${name}\`, it has ${this.inputNames.join(', ')}`, { path: this.path });
    }
    return info.dtype;
  }

  hasInput(name: string): boolean {
    return this.byInput.has(name);
  }

  /**
   * Run the graph. `outputs` may name a subset of the outputs; a preallocated TensorValue there is filled in place
   * (the UNet's output buffer is reused across steps that way).
   */
  async run(feeds: Feeds, outputs?: readonly string[] | Record<string, TensorValue<Float32Array> | null>): Promise<Record<string, TensorValue>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const value = feeds[name];
      if (!value) {
        throw new PictalkError('inference.failed',
          `Expected a value for input \`${name}\` of ${this.path}, got inputs ${Object.keys(feeds).join(', ') || '(none)'}`);
      }
      const dtype = DTYPE_OF.get(value.data.constructor.name);
      const expected = this.byInput.get(name)?.dtype;
      if (!dtype || dtype !== expected) {
        throw new PictalkError('inference.failed',
          `Expected input \`${name}\` of ${this.path} to be ${expected}, got ${dtype ?? value.data.constructor.name}`);
      }
      const size = value.dims.reduce((a, b) => a * b, 1);
      if (size !== value.data.length) {
        throw new PictalkError('inference.failed',
          `Expected ${size} values for input \`${name}\` of ${this.path} with dims [${value.dims.join(', ')}], got ${value.data.length}`);
      }
      ortFeeds[name] = new ort.Tensor(dtype, value.data, value.dims);
    }
    let fetches: ort.InferenceSession.FetchesType | undefined;
    const prealloc = new Map<string, TensorValue<Float32Array>>();
    if (Array.isArray(outputs)) {
      fetches = outputs as readonly string[];
    } else if (outputs) {
      const map: Record<string, ort.Tensor | null> = {};
      for (const [name, value] of Object.entries(outputs as Record<string, TensorValue<Float32Array> | null>)) {
        if (value) prealloc.set(name, value);
        map[name] = value ? new ort.Tensor('float32', value.data, value.dims) : null;
      }
      fetches = map;
    }
    try {
      const result = fetches ? await this.session.run(ortFeeds, fetches) : await this.session.run(ortFeeds);
      const out: Record<string, TensorValue> = {};
      for (const [name, value] of Object.entries(result)) {
        const given = prealloc.get(name);
        if (given) { out[name] = given; continue; }
        const tensor = value as ort.Tensor;
        out[name] = { data: tensor.data as TensorData, dims: tensor.dims };
      }
      return out;
    } catch (error) {
      throw asInferenceError(error, `Running ${this.path}`);
    }
  }

  /** Give up this handle; the session is released when no other holder remains. */
  async dispose(): Promise<void> {
    await this.release();
  }
}

interface CacheEntry {
  session: Promise<{ session: ort.InferenceSession; provider: ExecutionProvider }>;
  refs: number;
}

const cache = new Map<string, CacheEntry>();
let cudaFallbackLogged = false;

async function createSession(path: string, options: ResolvedOptions, log: (line: string) => void):
  Promise<{ session: ort.InferenceSession; provider: ExecutionProvider }> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: options.graphOptimization,
    logSeverityLevel: 3,
    ...(options.intraOpThreads > 0 ? { intraOpNumThreads: options.intraOpThreads } : {}),
    ...(options.interOpThreads > 0 ? { interOpNumThreads: options.interOpThreads } : {}),
    ...(options.allowSpinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
  };
  if (options.executionProvider === 'cuda') {
    try {
      // Severity 4 (fatal only): the provider bridge prints its own multi-line error; ours below is the one line.
      const session = await ort.InferenceSession.create(path, { ...base, logSeverityLevel: 4, executionProviders: ['cuda', 'cpu'] });
      return { session, provider: 'cuda' };
    } catch (error) {
      if (!cudaFallbackLogged) {
        cudaFallbackLogged = true;
        const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
        log(`pictalk: CUDA execution provider unavailable (${reason}); running on CPU`);
      }
    }
  }
  const session = await ort.InferenceSession.create(path, { ...base, executionProviders: ['cpu'] });
  return { session, provider: 'cpu' };
}

/**
 * Open (or reuse) a session for an .onnx file. A missing or unreadable file is `model.invalid` naming the path.
 */
export async function openModel(path: string, options: BackendOptions = {}): Promise<OnnxModel> {
  const absolute = resolve(path);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) {
    throw new PictalkError('model.invalid', `Expected an ONNX model file at ${absolute}, found none`, { path: absolute });
  }
  const resolved = resolveOptions(options);
  const key = JSON.stringify([absolute, resolved]);
  let entry = cache.get(key);
  if (!entry) {
    const created: CacheEntry = {
      session: createSession(absolute, resolved, options.log ?? ((line) => console.warn(line))),
      refs: 0,
    };
    entry = created;
    cache.set(key, created);
    created.session.catch(() => { if (cache.get(key) === created) cache.delete(key); });
  }
  entry.refs += 1;
  const held = entry;
  let loaded: { session: ort.InferenceSession; provider: ExecutionProvider };
  try {
    loaded = await held.session;
  } catch (error) {
    held.refs -= 1;
    const message = error instanceof Error ? error.message : String(error);
    throw new PictalkError('model.invalid', `Could not load the ONNX model ${absolute}: ${message}`, { path: absolute }, { cause: error });
  }
  let released = false;
  return new OnnxModel(absolute, loaded.provider, loaded.session, async () => {
    if (released) return;
    released = true;
    held.refs -= 1;
    if (held.refs === 0 && cache.get(key) === held) {
      cache.delete(key);
      await loaded.session.release();
    }
  });
}

/** How many sessions are open; for tests and the metrics endpoint. */
export function openSessionCount(): number {
  return cache.size;
}
