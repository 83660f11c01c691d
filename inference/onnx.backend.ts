/**
 * The ONNX backend: the only module that imports onnxruntime-node (see eslint.config.js).
 *
 * Pipelines open models through `openModel()` and speak plain typed arrays to the returned `OnnxModel`, so no
 * other file needs onnxruntime's types. Sessions are cached by path + options and reference-counted: two pipelines
 * (or two requests) that open the same file share one warm session, and the session is released when the last
 * holder calls `dispose()`.
 *
 * The sessions live in inference threads (worker threads; one per lane, lane 0 unless `lane` says otherwise), not on
 * the main thread: onnxruntime-node's `run` is synchronous inside its promise, so a UNet step on the main thread held
 * up every socket of the process (an HTTP interaction waited for the whole step before it was even read). Feeds go
 * to the thread as copies, or moved there and back when lent (`run`'s `lend`: a large feed given at every step), and
 * outputs come back as copies; the graphs of one lane run there one at a time, as they did on the main thread, each
 * with onnxruntime's own pool.
 * @see https://onnxruntime.ai/docs/api/js/interfaces/InferenceSession.SessionOptions.html
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
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
  /**
   * Which inference thread runs the session (default 0). Each lane is a thread of its own, started at its first
   * model: graphs of one lane run one at a time, graphs of two lanes side by side. The captioner opens its graphs
   * on two lanes, so that two caption batches use two cores (scripts/BENCH.md, "The round of the caption lanes").
   */
  lane?: number;
  /** Where the one fallback line goes; console.warn by default. */
  log?: (line: string) => void;
}

interface ResolvedOptions {
  executionProvider: ExecutionProvider;
  allowSpinning: boolean;
  intraOpThreads: number;      // 0 = onnxruntime's default
  interOpThreads: number;
  graphOptimization: GraphOptimization;
  lane: number;
}

/** The most lanes a process may open: each is a thread with its own onnxruntime pool. */
export const MAX_LANES = 4;

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
    lane: validateLane(options.lane),
  };
}

function validateLane(value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0 || value >= MAX_LANES) {
    throw new PictalkError('config.invalid', `Expected \`lane\` to be an integer from 0 to ${MAX_LANES - 1}, got ${describe(value)}`);
  }
  return value;
}


// ---- the inference thread ------------------------------------------------------------------------------------------

/** Session options as the thread builds them (plain data: they cross the thread boundary). */
interface SessionSpec {
  graphOptimizationLevel: GraphOptimization;
  intraOpThreads: number;
  interOpThreads: number;
  allowSpinning: boolean;
  executionProvider: ExecutionProvider;
}

interface Loaded {
  id: number;
  provider: ExecutionProvider;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  inputNames: string[];
  outputNames: string[];
  /** Why CUDA was asked for and not used (the first line of onnxruntime's error); the session runs on the CPU. */
  cudaUnavailable?: string;
}

type WireTensor = { type: TensorDType; data: TensorData; dims: readonly number[] };
type Lent = Record<string, TensorData>;
type Reply = { seq: number; ok: true; value: unknown; lent?: Lent } | { seq: number; ok: false; message: string; lent?: Lent };

/**
 * The thread's code, plain JavaScript run with `eval`, written to work as a CommonJS script and as a module alike (a
 * worker inherits `--input-type=module` from a parent started that way). So it runs the same from the TypeScript
 * sources under a loader, from dist/, and in tests. It imports onnxruntime-node from the file this module resolved,
 * creates, runs and releases sessions, and answers each request by its sequence number.
 */
const THREAD_SOURCE = `
(async () => {
const { parentPort, workerData } = await import('node:worker_threads');
const ort = (await import(workerData.ortUrl)).default;
const sessions = new Map();
let next = 0;
const info = (meta) => meta.isTensor ? { name: meta.name, dtype: meta.type, shape: meta.shape } : { name: meta.name, dtype: 'non-tensor', shape: [] };
async function create(path, spec) {
  const base = {
    graphOptimizationLevel: spec.graphOptimizationLevel, logSeverityLevel: 3,
    ...(spec.intraOpThreads > 0 ? { intraOpNumThreads: spec.intraOpThreads } : {}),
    ...(spec.interOpThreads > 0 ? { interOpNumThreads: spec.interOpThreads } : {}),
    ...(spec.allowSpinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
  };
  let session;
  let provider = 'cpu';
  let cudaUnavailable;
  if (spec.executionProvider === 'cuda') {
    try {
      // Severity 4 (fatal only): the provider bridge prints its own multi-line error; ours is the one line.
      session = await ort.InferenceSession.create(path, { ...base, logSeverityLevel: 4, executionProviders: ['cuda', 'cpu'] });
      provider = 'cuda';
    } catch (error) {
      cudaUnavailable = error instanceof Error ? error.message.split('\\n')[0] : String(error);
    }
  }
  if (!session) session = await ort.InferenceSession.create(path, { ...base, executionProviders: ['cpu'] });
  const id = ++next;
  sessions.set(id, session);
  return {
    id, provider, inputs: session.inputMetadata.map(info), outputs: session.outputMetadata.map(info),
    inputNames: session.inputNames, outputNames: session.outputNames, cudaUnavailable,
  };
}
async function run(id, feeds, fetches) {
  const session = sessions.get(id);
  if (!session) throw new Error('the session was released');
  const tensors = {};
  for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor(t.type, t.data, t.dims);
  const result = fetches ? await session.run(tensors, fetches) : await session.run(tensors);
  const out = {};
  for (const [name, tensor] of Object.entries(result)) out[name] = { type: tensor.type, data: tensor.data, dims: tensor.dims };
  return out;
}
async function release(id) {
  const session = sessions.get(id);
  sessions.delete(id);
  if (session) await session.release();
}
parentPort.on('message', async ({ seq, op, args }) => {
  // feeds lent for the call (moved here, not copied) go back with the reply, whatever it is
  const lent = {};
  if (op === 'run') for (const name of args[3] ?? []) if (args[1][name]) lent[name] = args[1][name].data;
  const moved = [...new Set(Object.values(lent).map((data) => data.buffer))];
  try {
    const value = op === 'create' ? await create(...args) : op === 'run' ? await run(...args) : await release(...args);
    parentPort.postMessage({ seq, ok: true, value, lent }, moved);
  } catch (error) {
    parentPort.postMessage({ seq, ok: false, message: error instanceof Error ? error.message : String(error), lent }, moved);
  }
});
})();
`;

/**
 * onnxruntime 1.30's Linux build collects telemetry when its environment starts (at the first session): it reads
 * /etc/machine-id, keeps a device id and a queue of events for upload to Microsoft under ~/.cache/Microsoft, and
 * leaves `mat-debug-PID.log` and `.ses` in the temporary folder of every process. A bot on an operator's server
 * must not do that unasked, so pictalk turns it off unless the operator set ORT_DISABLE_TELEMETRY (0 turns it back
 * on). onnxruntime reads the variable from the process's environment, which only the main thread can change: it
 * is set here, before the thread that loads onnxruntime starts.
 */
function quietOnnxruntime(): void {
  if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';
}

/** One inference thread of this process (one per lane): started at its first model, kept alive only while it has work. */
class InferenceThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; lent?: (lent: Lent) => void }>();
  private seq = 0;

  constructor(private readonly lane: number) {
    quietOnnxruntime();
    const ortUrl = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { ortUrl }, name: lane === 0 ? 'pictalk-inference' : `pictalk-inference-${lane}` });
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => {
      const waiting = this.pending.get(reply.seq);
      if (!waiting) return;
      this.pending.delete(reply.seq);
      if (this.pending.size === 0) this.worker.unref();
      if (reply.lent) waiting.lent?.(reply.lent);
      if (reply.ok) waiting.resolve(reply.value);
      else waiting.reject(new Error(reply.message));
    });
    // A thread that dies (onnxruntime failing natively) fails its calls as inference errors; the next model opened
    // starts a new thread, while models opened before keep failing with a message saying their session is gone.
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the inference thread exited with code ${code}`)));
  }

  /**
   * `moved`: buffers that go to the thread instead of being copied (the caller cannot read them meanwhile); `lent`
   * hears them when they come back with the reply.
   */
  call<T>(op: 'create' | 'run' | 'release', args: unknown[], moved: ArrayBuffer[] = [], lent?: (lent: Lent) => void): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (value: unknown) => void, reject, ...(lent ? { lent } : {}) });
      // a pending call keeps the process alive (a command-line run awaits it); an idle thread does not
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ seq, op, args }, moved);
    });
  }

  private fail(error: Error): void {
    if (threads.get(this.lane) === this) threads.delete(this.lane);
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}

const threads = new Map<number, InferenceThread>();
function inferenceThread(lane: number): InferenceThread {
  let thread = threads.get(lane);
  if (!thread) threads.set(lane, thread = new InferenceThread(lane));
  return thread;
}

/** One loaded graph. Obtain it with `openModel()`; call `dispose()` when done with it. */
export class OnnxModel {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly provider: ExecutionProvider;
  private readonly byInput: ReadonlyMap<string, ValueInfo>;

  /** @internal created by openModel() */
  constructor(
    readonly path: string,
    private readonly loaded: Loaded,
    private readonly release: () => Promise<void>,
    /** The lane (inference thread) the session lives on. */
    readonly lane = 0,
  ) {
    this.provider = loaded.provider;
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
    this.inputNames = loaded.inputNames;
    this.outputNames = loaded.outputNames;
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
   * (the UNet's output buffer is reused across steps that way). The feeds named in `lend` are moved to the inference
   * thread instead of copied, and their TensorValue's `data` is a new array over the same memory once the call ends
   * (a large feed given at every step: the captioner's image features). Lend only an array whose buffer is the
   * caller's alone and untouched until then: any other view of that buffer reads nothing meanwhile.
   */
  async run(feeds: Feeds, outputs?: readonly string[] | Record<string, TensorValue<Float32Array> | null>, lend: readonly string[] = []): Promise<Record<string, TensorValue>> {
    const wireFeeds: Record<string, WireTensor> = {};
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
      wireFeeds[name] = { type: dtype, data: value.data, dims: value.dims };
    }
    const prealloc = new Map<string, TensorValue<Float32Array>>();
    let fetches: string[] | undefined;
    if (Array.isArray(outputs)) {
      fetches = [...outputs as readonly string[]];
    } else if (outputs) {
      fetches = Object.keys(outputs);
      for (const [name, value] of Object.entries(outputs as Record<string, TensorValue<Float32Array> | null>)) if (value) prealloc.set(name, value);
    }
    try {
      for (const name of lend) {
        if (!wireFeeds[name]) throw new Error(`a lent feed \`${name}\` is not among the inputs it feeds (${this.inputNames.join(', ')})`);
      }
      const moved = [...new Set(lend.map((name) => feeds[name]!.data.buffer as ArrayBuffer))];
      const giveBack = (lent: Lent): void => {
        for (const name of lend) if (lent[name]) (feeds[name] as { data: TensorData }).data = lent[name]!;
      };
      const result = await inferenceThread(this.lane).call<Record<string, WireTensor>>('run', [this.loaded.id, wireFeeds, fetches, lend], moved, giveBack);
      const out: Record<string, TensorValue> = {};
      for (const [name, value] of Object.entries(result)) {
        const given = prealloc.get(name);
        if (given) {
          const size = given.dims.reduce((a, b) => a * b, 1);
          if (size !== value.data.length || !(value.data instanceof Float32Array)) {
            throw new Error(`output \`${name}\` has ${value.data.length} values of ${value.type}, the buffer given for it ${size} float32`);
          }
          given.data.set(value.data);
          out[name] = given;
          continue;
        }
        out[name] = { data: value.data, dims: value.dims };
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
  session: Promise<Loaded>;
  refs: number;
}

const cache = new Map<string, CacheEntry>();

let cudaFallbackLogged = false;

async function createSession(path: string, options: ResolvedOptions, log: (line: string) => void): Promise<Loaded> {
  const spec: SessionSpec = {
    graphOptimizationLevel: options.graphOptimization,
    intraOpThreads: options.intraOpThreads,
    interOpThreads: options.interOpThreads,
    allowSpinning: options.allowSpinning,
    executionProvider: options.executionProvider,
  };
  const loaded = await inferenceThread(options.lane).call<Loaded>('create', [path, spec]);
  if (loaded.cudaUnavailable !== undefined && !cudaFallbackLogged) {
    cudaFallbackLogged = true;
    log(`pictalk: CUDA execution provider unavailable (${loaded.cudaUnavailable}); running on CPU`);
  }
  return loaded;
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
  let loaded: Loaded;
  try {
    loaded = await held.session;
  } catch (error) {
    held.refs -= 1;
    const message = error instanceof Error ? error.message : String(error);
    throw new PictalkError('model.invalid', `Could not load the ONNX model ${absolute}: ${message}`, { path: absolute }, { cause: error });
  }
  let released = false;
  return new OnnxModel(absolute, loaded, async () => {
    if (released) return;
    released = true;
    held.refs -= 1;
    if (held.refs === 0 && cache.get(key) === held) {
      cache.delete(key);
      await inferenceThread(resolved.lane).call('release', [loaded.id]);
    }
  }, resolved.lane);
}

/** How many sessions are open; for tests and the metrics endpoint. */
export function openSessionCount(): number {
  return cache.size;
}
