/**
 * The inference core: ONE instance serves every platform. It takes jobs from `bot/`, keeps them in a bounded, fair
 * line per job kind, runs them on the pipelines with a concurrency limit per kind, batches caption jobs that wait at
 * the same time into one `captionBatch` call, and settles every accepted job with a result or a PictalkError.
 *
 * Order is fair, not FIFO (see fair-queue.ts): round-robin over spaces, then over users, FIFO within a user.
 * Each lane runs its jobs through a LaneRunner: how many jobs share one pipeline call (batching) and what may start
 * before a job's turn (prefetching) are properties the lane is given, so a new kind adds a runner, not branches.
 *
 * No p-queue: a lane starts a call only when it has a free slot (the fair line decides who goes next, knows every
 * job's position and drops a cancelled job at once), so p-queue's own FIFO line would always be empty and its
 * concurrency limit never reached; what was left of it, `onIdle` at shutdown, is the set of calls in flight here.
 */
import { randomUUID } from 'node:crypto';
import { PictalkError, asInferenceError, describe, isPictalkError } from '../common/errors.js';
import { FairQueue } from './fair-queue.js';
import { createInferenceMetrics, type InferenceMetrics, type JobOutcome, type MetricsRegistry } from './metrics.js';
import type {
  CaptionRequest, CaptionResult, CaptionRunOptions, ImagineRequest, ImagineResult, JobInput, JobKind, JobOwner, Progress, ResultOf,
  RunOptions, SpeakRequest, SpeechResult,
} from './types.js';

/** The pipelines the core runs: the real ones in production, fakes in tests. */
export interface InferencePipelines {
  imagine(request: ImagineRequest, options: RunOptions): Promise<ImagineResult>;
  /**
   * One result per request, in order. An item may be an Error to fail only that request's job; when the call
   * itself throws, every job of the batch fails (after a retry one by one when the error blames the input).
   */
  captionBatch(requests: CaptionRequest[], options: CaptionRunOptions): Promise<ReadonlyArray<CaptionResult | Error>>;
  /**
   * Start the work of a waiting caption that needs no model (decoding its image), when present: the core calls it for
   * the captions next in line, at most two batches' worth, so their images decode while the running batch searches.
   */
  prefetchCaption?(request: CaptionRequest): void;
  /** Used for a batch of one when present. */
  caption?(request: CaptionRequest, options: RunOptions): Promise<CaptionResult>;
  speak(request: SpeakRequest, options: RunOptions): Promise<SpeechResult>;
}

export const JOB_KINDS: readonly JobKind[] = ['imagine', 'caption', 'speak'];

export interface InferenceCoreOptions {
  /** Pipeline calls running at once, per kind (default 1 each: the CPU is the limit). */
  concurrency?: Partial<Record<JobKind, number>>;
  /** Jobs waiting, all kinds together (default 100). */
  maxQueued?: number;
  /** One user's unfinished jobs, waiting or running, all kinds together (default 10). */
  maxPerUser?: number;
  /** Default run-time limit per kind, from start to result (defaults: imagine 180 s, caption 30 s, speak 30 s). */
  timeoutMs?: Partial<Record<JobKind, number>>;
  /** Caption jobs per `captionBatch` call (default 8). */
  maxBatch?: number;
  /** Where the metrics go: a registry (default: prom-client's global one) or ready-made metrics. */
  registry?: MetricsRegistry;
  metrics?: InferenceMetrics;
  /** Called when a job's event listener throws (default: a process warning); the queue carries on either way. */
  onListenerError?: (error: unknown, context: { jobId: string; event: keyof JobEvents }) => void;
}

export interface SubmitOptions {
  /** Run-time limit for this job, overriding the kind's default. */
  timeoutMs?: number;
  /** An id of the caller's choosing (unique among unfinished jobs); random when absent. */
  jobId?: string;
}

export interface JobEvents {
  /** The place in its kind's line: 1 is next, 0 is running. Emitted whenever it changes. */
  position: (position: number) => void;
  start: () => void;
  progress: (progress: Progress) => void;
}

export interface JobHandle<K extends JobKind = JobKind> {
  readonly id: string;
  readonly kind: K;
  readonly owner: JobOwner;
  /** 1.. while waiting (1 = next), 0 while running, -1 once settled. */
  position(): number;
  /** Listen to an event; returns a function that removes the listener. */
  on<E extends keyof JobEvents>(event: E, listener: JobEvents[E]): () => void;
  /** Settles exactly once: the result, or a PictalkError (`job.cancelled`, `job.timeout`, `inference.failed`, ...). */
  readonly result: Promise<ResultOf<K>>;
  /** Cancel while waiting (removed at once) or running (aborted); false when it had already settled. */
  cancel(reason?: string): boolean;
}

export interface InferenceStats {
  queued: Record<JobKind, number>;
  running: Record<JobKind, number>;
  /** Unfinished jobs per user id. */
  users: Record<string, { queued: number; running: number }>;
  closed: boolean;
}

export const DEFAULT_TIMEOUT_MS: Record<JobKind, number> = { imagine: 180_000, caption: 30_000, speak: 30_000 };
const MAX_TIMEOUT_MS = 3_600_000;

type AnyResult = ResultOf<JobKind>;

/** One pipeline call: a single job, or a batch of caption jobs sharing one AbortController. */
interface Call {
  jobs: Job[];
  controller: AbortController;
}

/**
 * How a lane runs its jobs. `run` returns one result per job, in order (an Error fails only its job), and may settle a
 * job early through `settle` (a caption delivered before its batch's longest one).
 */
interface LaneRunner {
  /** The pipeline call it makes, for error messages. */
  name: string;
  /** Jobs per pipeline call; 1 runs each job alone. */
  maxBatch: number;
  run(jobs: readonly Job[], options: RunOptions, settle: (index: number, result: AnyResult | Error) => void): Promise<ReadonlyArray<AnyResult | Error>>;
  /** The model-free work of a waiting job (decoding its image), started for the jobs next in line, two calls' worth. */
  prefetch?(job: Job): void;
}

interface Lane {
  kind: JobKind;
  queue: FairQueue<Job>;
  runner: LaneRunner;
  concurrency: number;
  calls: Set<Call>;
  /** The calls in flight, for `close` to wait on. */
  running: Set<Promise<void>>;
  pumpScheduled: boolean;
}

type RequestOf<K extends JobKind> = Extract<JobInput, { kind: K }>['request'];
const requestOf = <K extends JobKind>(job: Job, _kind: K): RequestOf<K> => job.input.request as RequestOf<K>;

/** The runners of the three kinds: imagine and speak one job per call; captions batched, their images prefetched. */
function runners(pipelines: InferencePipelines, maxBatch: number): Record<JobKind, LaneRunner> {
  return {
    imagine: { name: 'imagine', maxBatch: 1, run: async ([job], options) => [await pipelines.imagine(requestOf(job!, 'imagine'), options)] },
    speak: { name: 'speak', maxBatch: 1, run: async ([job], options) => [await pipelines.speak(requestOf(job!, 'speak'), options)] },
    caption: {
      name: 'captionBatch',
      maxBatch,
      run: async (jobs, options, settle) => {
        const requests = jobs.map((job) => requestOf(job, 'caption'));
        if (requests.length === 1 && pipelines.caption) return [await pipelines.caption(requests[0]!, options)];
        return pipelines.captionBatch(requests, { ...options, onCaption: settle });
      },
      ...(pipelines.prefetchCaption ? { prefetch: (job: Job) => pipelines.prefetchCaption!(requestOf(job, 'caption')) } : {}),
    },
  };
}

class Job implements JobHandle {
  state: 'queued' | 'running' | 'settled' = 'queued';
  /** Its model-free work (a caption's image decoding) has been started ahead of its call. */
  prefetched = false;
  readonly submittedAt = performance.now();
  startedAt = 0;
  call: Call | undefined;
  private lastPosition = -1;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: { [E in keyof JobEvents]: Set<JobEvents[E]> } = { position: new Set(), start: new Set(), progress: new Set() };
  readonly result: Promise<AnyResult>;
  private resolve!: (value: AnyResult) => void;
  private reject!: (error: PictalkError) => void;

  constructor(
    readonly id: string,
    readonly kind: JobKind,
    readonly owner: JobOwner,
    readonly input: JobInput,
    readonly timeoutMs: number,
    private readonly core: InferenceCore,
    private readonly onSettled: (job: Job, outcome: JobOutcome, code?: string) => void,
    private readonly onListenerError: NonNullable<InferenceCoreOptions['onListenerError']>,
  ) {
    this.result = new Promise<AnyResult>((resolve, reject) => { this.resolve = resolve; this.reject = reject; });
    // A caller that drops the handle must not crash the process with an unhandled rejection.
    this.result.catch(() => undefined);
  }

  position(): number {
    return this.state === 'settled' ? -1 : this.state === 'running' ? 0 : this.lastPosition;
  }

  on<E extends keyof JobEvents>(event: E, listener: JobEvents[E]): () => void {
    const set = this.listeners[event] as Set<JobEvents[E]>;
    set.add(listener);
    return () => { set.delete(listener); };
  }

  cancel(reason = 'by its requester'): boolean {
    return this.core.cancel(this, reason);
  }

  emit<E extends keyof JobEvents>(event: E, ...args: Parameters<JobEvents[E]>): void {
    for (const listener of this.listeners[event] as Set<(...a: Parameters<JobEvents[E]>) => void>) {
      try {
        listener(...args);
      } catch (error) {
        // A listener's bug (an adapter failing to edit a message) must not break the queue.
        this.onListenerError(error, { jobId: this.id, event });
      }
    }
  }

  setPosition(position: number): void {
    if (position === this.lastPosition) return;
    this.lastPosition = position;
    this.emit('position', position);
  }

  start(call: Call, onTimeout: (job: Job) => void): void {
    this.state = 'running';
    this.call = call;
    this.startedAt = performance.now();
    this.setPosition(0);
    this.emit('start');
    this.timer = setTimeout(() => onTimeout(this), this.timeoutMs);
    this.timer.unref();           // a pending timeout alone must not keep the process alive
  }

  succeed(value: AnyResult): boolean {
    if (!this.finish('success')) return false;
    this.resolve(value);
    return true;
  }

  fail(error: PictalkError): boolean {
    const outcome: JobOutcome = error.code === 'job.cancelled' ? 'cancelled' : error.code === 'job.timeout' ? 'timeout' : 'failed';
    if (!this.finish(outcome, error.code)) return false;
    this.reject(error);
    return true;
  }

  private finish(outcome: JobOutcome, code?: string): boolean {
    if (this.state === 'settled') return false;
    this.state = 'settled';
    clearTimeout(this.timer);
    this.lastPosition = -1;
    for (const set of Object.values(this.listeners)) set.clear();
    this.onSettled(this, outcome, code);
    return true;
  }
}

export class InferenceCore {
  private readonly lanes: Record<JobKind, Lane>;
  private readonly active = new Map<string, Job>();          // unsettled jobs by id
  private readonly perUser = new Map<string, number>();
  private readonly metrics: InferenceMetrics;
  private readonly maxQueued: number;
  private readonly maxPerUser: number;
  private readonly timeouts: Record<JobKind, number>;
  private readonly onListenerError: NonNullable<InferenceCoreOptions['onListenerError']>;
  private closed = false;

  constructor(private readonly pipelines: InferencePipelines, options: InferenceCoreOptions = {}) {
    for (const name of ['imagine', 'captionBatch', 'speak'] as const) {
      if (typeof pipelines?.[name] !== 'function') {
        throw new PictalkError('config.invalid', `Expected the pipelines to have a \`${name}\` function, got ${describe(pipelines?.[name])}`);
      }
    }
    this.maxQueued = positiveInteger('maxQueued', options.maxQueued ?? 100);
    this.maxPerUser = positiveInteger('maxPerUser', options.maxPerUser ?? 10);
    const laneRunners = runners(pipelines, positiveInteger('maxBatch', options.maxBatch ?? 8));
    this.timeouts = { ...DEFAULT_TIMEOUT_MS };
    for (const kind of JOB_KINDS) {
      const ms = options.timeoutMs?.[kind];
      if (ms !== undefined) this.timeouts[kind] = timeout(`timeoutMs.${kind}`, ms, 'config.invalid');
    }
    this.metrics = options.metrics ?? createInferenceMetrics(options.registry);
    this.onListenerError = options.onListenerError ?? ((error, { jobId, event }) => {
      process.emitWarning(`A '${event}' listener of job ${jobId} threw: ${error instanceof Error ? error.message : String(error)}`);
    });
    const lane = (kind: JobKind): Lane => {
      const concurrency = positiveInteger(`concurrency.${kind}`, options.concurrency?.[kind] ?? 1);
      return { kind, queue: new FairQueue<Job>(), runner: laneRunners[kind], concurrency, calls: new Set(), running: new Set(), pumpScheduled: false };
    };
    this.lanes = { imagine: lane('imagine'), caption: lane('caption'), speak: lane('speak') };
    for (const kind of JOB_KINDS) { this.metrics.setQueueDepth(kind, 0); this.metrics.setRunning(kind, 0); }
  }

  /**
   * Accept a job, or throw `queue.busy` (the line is full, for everyone or for this user, or the core is closed)
   * or `input.invalid` (a malformed owner, kind, timeout or duplicate id). An accepted job always settles.
   */
  submit<K extends JobKind>(owner: JobOwner, input: Extract<JobInput, { kind: K }>, options: SubmitOptions = {}): JobHandle<K> {
    const kind: K = checkSubmission(owner, input);
    const timeoutMs = options.timeoutMs === undefined ? this.timeouts[kind] : timeout('timeoutMs', options.timeoutMs, 'input.invalid');
    const id = options.jobId ?? randomUUID();
    if (typeof id !== 'string' || id.length === 0 || this.active.has(id)) {
      throw new PictalkError('input.invalid', `Expected \`jobId\` to be a new, non-empty string, got ${describe(id)}${this.active.has(id) ? ' (already in use)' : ''}`);
    }

    if (this.closed) this.refuse(kind, 'The inference core is shutting down and takes no new jobs; try again shortly', { closed: true });
    const queued = this.queuedTotal();
    if (queued >= this.maxQueued) {
      this.refuse(kind, `The queue is full (${queued} of ${this.maxQueued} jobs waiting); try again in a little while`,
        { scope: 'total', queued, limit: this.maxQueued });
    }
    const mine = this.perUser.get(owner.userId) ?? 0;
    if (mine >= this.maxPerUser) {
      this.refuse(kind, `You already have ${mine} of ${this.maxPerUser} jobs waiting or running; wait for one to finish`,
        { scope: 'user', queued: mine, limit: this.maxPerUser });
    }

    const job = new Job(id, kind, { userId: owner.userId, spaceId: owner.spaceId }, input, timeoutMs, this, this.settled, this.onListenerError);
    const lane = this.lanes[kind];
    this.active.set(id, job);
    this.perUser.set(owner.userId, mine + 1);
    lane.queue.push(owner, job);
    this.metrics.setQueueDepth(kind, lane.queue.size);
    this.updatePositions(lane);
    // Start on the next turn of the event loop: the caller can attach listeners first, and jobs submitted in the
    // same turn can share a batch.
    this.schedulePump(lane);
    return job as unknown as JobHandle<K>;
  }

  stats(): InferenceStats {
    const zero = (): Record<JobKind, number> => ({ imagine: 0, caption: 0, speak: 0 });
    const stats: InferenceStats = { queued: zero(), running: zero(), users: {}, closed: this.closed };
    for (const job of this.active.values()) {
      const state = job.state === 'queued' ? 'queued' : 'running';
      stats[state][job.kind]++;
      const user = (stats.users[job.owner.userId] ??= { queued: 0, running: 0 });
      user[state]++;
    }
    return stats;
  }

  /** Refuse new jobs, fail the waiting ones with `job.cancelled` (reason `shutdown`), and wait for the running ones. */
  async close(): Promise<void> {
    this.closed = true;
    for (const lane of Object.values(this.lanes)) {
      for (const job of lane.queue.drain()) {
        job.fail(new PictalkError('job.cancelled', 'The bot is restarting, so this job was not started; please send it again',
          { reason: 'shutdown' }));
      }
      this.metrics.setQueueDepth(lane.kind, 0);
    }
    await Promise.all(Object.values(this.lanes).flatMap((lane) => [...lane.running]));
  }

  /** Cancel the waiting or running job of this id (a cancel that names the job, not its handle); false if none. */
  cancelById(jobId: string, reason = 'by its requester'): boolean {
    const job = this.active.get(jobId);
    return job ? this.cancel(job, reason) : false;
  }

  /** @internal JobHandle.cancel lands here. */
  cancel(job: Job, reason: string): boolean {
    if (job.state === 'settled') return false;
    const lane = this.lanes[job.kind];
    if (job.state === 'queued') {
      lane.queue.remove(job.owner, job);
      this.metrics.setQueueDepth(lane.kind, lane.queue.size);
      job.fail(new PictalkError('job.cancelled', `The ${job.kind} job was cancelled ${reason} before it started`));
      this.updatePositions(lane);
      return true;
    }
    job.fail(new PictalkError('job.cancelled', `The ${job.kind} job was cancelled ${reason} while it ran`));
    this.abortIfAbandoned(job.call);
    return true;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Scheduling
  // ---------------------------------------------------------------------------------------------------------------

  private readonly settled = (job: Job, outcome: JobOutcome, code?: string): void => {
    this.active.delete(job.id);
    const left = (this.perUser.get(job.owner.userId) ?? 1) - 1;
    if (left > 0) this.perUser.set(job.owner.userId, left); else this.perUser.delete(job.owner.userId);
    if (job.startedAt && (outcome === 'success' || outcome === 'failed')) {
      this.metrics.observeRun(job.kind, (performance.now() - job.startedAt) / 1000);
    }
    this.metrics.countJob(job.kind, outcome, code);
  };

  private refuse(kind: JobKind, message: string, details: Record<string, unknown>): never {
    this.metrics.countJob(kind, 'rejected', 'queue.busy');
    throw new PictalkError('queue.busy', message, details);
  }

  private queuedTotal(): number {
    return JOB_KINDS.reduce((n, kind) => n + this.lanes[kind].queue.size, 0);
  }

  private schedulePump(lane: Lane): void {
    if (lane.pumpScheduled) return;
    lane.pumpScheduled = true;
    // setImmediate runs after every pending promise callback, so callers that resubmit as soon as a result
    // arrives land in the same batch.
    setImmediate(() => { lane.pumpScheduled = false; this.pump(lane); });
  }

  /** Start waiting jobs while the lane has free slots, up to its runner's batch per call. */
  private pump(lane: Lane): void {
    while (!this.closed && lane.calls.size < lane.concurrency && lane.queue.size > 0) {
      const jobs = [lane.queue.shift()!];
      while (jobs.length < lane.runner.maxBatch && lane.queue.size > 0) jobs.push(lane.queue.shift()!);
      const call: Call = { jobs, controller: new AbortController() };
      lane.calls.add(call);
      for (const job of jobs) {
        this.metrics.observeWait(lane.kind, (performance.now() - job.submittedAt) / 1000);
        job.start(call, this.onTimeout);
      }
      this.metrics.observeBatch(lane.kind, jobs.length);
      const running = this.execute(lane, call).finally(() => {
        lane.calls.delete(call);
        lane.running.delete(running);
        this.metrics.setRunning(lane.kind, this.runningJobs(lane));
        this.schedulePump(lane);
      });
      lane.running.add(running);
    }
    this.metrics.setQueueDepth(lane.kind, lane.queue.size);
    this.metrics.setRunning(lane.kind, this.runningJobs(lane));
    const order = this.updatePositions(lane);
    if (lane.runner.prefetch) this.prefetch(lane.runner, order);
  }

  private runningJobs(lane: Lane): number {
    let n = 0;
    for (const call of lane.calls) n += call.jobs.length;
    return n;
  }

  /** Start the model-free work of the jobs next in line, two calls' worth; each once. */
  private prefetch(runner: LaneRunner, order: readonly Job[]): void {
    for (const job of order.slice(0, 2 * runner.maxBatch)) {
      if (job.prefetched) continue;
      job.prefetched = true;
      try {
        runner.prefetch!(job);
      } catch {
        // a prefetch is only a head start: the call that takes the job does the work again and reports any error
      }
    }
  }

  /** Tell each waiting job its place in line; returns the line. */
  private updatePositions(lane: Lane): Job[] {
    const order = lane.queue.order();
    order.forEach((job, index) => job.setPosition(index + 1));
    return order;
  }

  private readonly onTimeout = (job: Job): void => {
    job.fail(new PictalkError('job.timeout', `The ${job.kind} job ran past its limit of ${job.timeoutMs} ms and was stopped`,
      { timeoutMs: job.timeoutMs }));
    this.abortIfAbandoned(job.call);
  };

  /** Abort a pipeline call once none of its jobs waits for it any more (all cancelled or timed out). */
  private abortIfAbandoned(call: Call | undefined): void {
    if (call && call.jobs.every((job) => job.state === 'settled')) call.controller.abort();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Running
  // ---------------------------------------------------------------------------------------------------------------

  /** Run one call and settle its jobs; never throws. */
  private async execute(lane: Lane, call: Call): Promise<void> {
    const { jobs, controller } = call;
    const options: RunOptions = {
      signal: controller.signal,
      onProgress: (progress) => { for (const job of jobs) if (job.state === 'running') job.emit('progress', progress); },
    };
    try {
      await this.runJobs(lane.runner, jobs, options);
    } catch (error) {
      for (const job of jobs) job.fail(asInferenceError(error, `The ${job.kind} job`));
    }
  }

  private async runJobs(runner: LaneRunner, jobs: Job[], options: RunOptions): Promise<void> {
    let results: ReadonlyArray<AnyResult | Error>;
    try {
      // each job settles as soon as its own result is final: its user (or a client with the next one) need not
      // wait for the call's slowest job
      results = await runner.run(jobs, options, (i, result) => { if (jobs[i]) this.settleWith(jobs[i], result); });
    } catch (error) {
      // One bad input can make a whole batch throw: retry one by one so only its own job fails.
      const blamesInput = isPictalkError(error) && error.code.startsWith('input.');
      if (jobs.length > 1 && blamesInput && !options.signal?.aborted) {
        for (const job of jobs) {
          if (job.state !== 'running') continue;
          try {
            const [result] = await runner.run([job], options, () => undefined);
            this.settleWith(job, result);
          } catch (single) {
            job.fail(asInferenceError(single, `The ${job.kind} job`));
          }
        }
        return;
      }
      throw error;
    }
    if (!Array.isArray(results) || results.length !== jobs.length) {
      throw new PictalkError('inference.failed', `Expected ${runner.name} to return ${jobs.length} results, got ${describe(Array.isArray(results) ? results.length : results)}`);
    }
    jobs.forEach((job, i) => this.settleWith(job, results[i]));
  }

  private settleWith(job: Job, result: AnyResult | Error | undefined): void {
    if (result instanceof Error) {
      job.fail(asInferenceError(result, `The ${job.kind} job`));
    } else if (result?.kind !== job.kind) {
      job.fail(new PictalkError('inference.failed', `Expected the ${job.kind} pipeline to return a ${job.kind} result, got ${describe(result?.kind)}`));
    } else {
      job.succeed(result);
    }
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new PictalkError('config.invalid', `Expected \`${name}\` to be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/**
 * A submission's own shape, whichever queue takes it (this core, or the cluster's): a known kind, a request object,
 * an owner with non-empty ids. Returns the kind; throws `input.invalid` naming what is wrong.
 */
export function checkSubmission<K extends JobKind>(owner: JobOwner, input: Extract<JobInput, { kind: K }>): K {
  const kind = input?.kind;
  if (!JOB_KINDS.includes(kind)) {
    throw new PictalkError('input.invalid', `Expected a job kind of ${JOB_KINDS.join(', ')}, got ${describe(kind)}`);
  }
  if (typeof input.request !== 'object' || input.request === null) {
    throw new PictalkError('input.invalid', `Expected a ${kind} request object, got ${describe(input.request)}`);
  }
  for (const field of ['userId', 'spaceId'] as const) {
    if (typeof owner?.[field] !== 'string' || owner[field].length === 0) {
      throw new PictalkError('input.invalid', `Expected \`owner.${field}\` to be a non-empty string, got ${describe(owner?.[field])}`);
    }
  }
  return kind;
}

/** A job's run-time limit: an integer from 1 ms to an hour, else `code` naming the setting. */
export function timeout(name: string, value: number, code: 'config.invalid' | 'input.invalid'): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_MS) {
    throw new PictalkError(code, `Expected \`${name}\` to be an integer from 1 to ${MAX_TIMEOUT_MS} ms, got ${describe(value)}`);
  }
  return value;
}
