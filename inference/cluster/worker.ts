/**
 * A cluster worker: takes jobs from BullMQ and runs them on its models, through a local InferenceCore so that caption
 * jobs taken together share a batch and imagine jobs share UNet runs, exactly as in one process.
 *
 * Fairness stays in pictalk: BullMQ's own line is kept empty. A worker with a free slot first takes any job already in
 * BullMQ (one a stalled worker left behind), else moves the next job of pictalk's fair line (scripts.ts) into BullMQ
 * and takes it. So the job that starts next is always the fair line's next, whichever worker is free.
 *
 * BullMQ gives the rest: the worker holds a lock on each running job and renews it; when a worker dies its locks run
 * out after PICTALK_WORKER_LOCK_MS, another worker's stalled-job check puts the job back, and it runs again (once:
 * past that it fails with a clear message). A job settles exactly once in Redis (scripts.ts), so a job run twice
 * still has one result and one charge.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, Worker, type ConnectionOptions, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { PictalkError, asInferenceError } from '../../common/errors.js';
import { InferenceCore, JOB_KINDS, type InferencePipelines } from '../core.js';
import type { InferenceMetrics } from '../metrics.js';
import type { JobKind } from '../types.js';
import { decodeInput, encode } from './codec.js';
import { DEFAULT_WORKER_LOCK_MS } from './defaults.js';
import { DEFAULT_PREFIX, REDIS_CONNECT_MS, closeQuietly, connect, keys, readStats, ready, redisOptionsOf, scripts, type RedisLog, type Scripts } from './redis.js';
import { ANSWERED_MARK } from './scripts.js';


export interface ClusterWorkerOptions {
  redisUrl: string;
  prefix?: string;
  /** PICTALK_WORKER_LOCK_MS: how long a claim on a running job lasts without renewal (default 30000). */
  lockMs?: number;
  /** Pipeline calls side by side per kind, as the in-process core's `concurrency` (imagine: the UNet batch). */
  concurrency?: Partial<Record<JobKind, number>>;
  /** Caption jobs per batch (default 8). */
  maxBatch?: number;
  /** How long a settled job's result stays in Redis (default 3600 s). */
  resultTtlSecs?: number;
  metrics?: InferenceMetrics;
  log?: RedisLog & { info?(message: string, fields?: Record<string, unknown>): void };
  workerId?: string;
  connectMs?: number;
  /** Called for each job this worker starts (attempt counts from 1): tests and the bench watch the order. */
  onStart?: (jobId: string, attempt: number) => void;
}

interface Running {
  id: string;
  kind: JobKind;
  bull: BullJob;
  token: string;
  cancel?: () => void;
  /** Its pipeline call has ended; only its outcome is on the way to Redis (its lock is still renewed until then). */
  done?: boolean;
  /** The front its progress goes to ('' for every front), and when that was last asked. */
  front: string;
  frontAt: number;
}

/** How often a running job's front is asked again (one that takes the job over gets its progress from then on). */
const FRONT_RECHECK_MS = 1000;

export class ClusterWorker {
  readonly id: string;
  private readonly core: InferenceCore;
  private readonly scripts: Scripts;
  private readonly keys: ReturnType<typeof keys>;
  private readonly queues = new Map<JobKind, Queue>();
  private readonly workers = new Map<JobKind, Worker>();
  private readonly running = new Map<string, Running>();
  private readonly slots: Record<JobKind, number>;
  private readonly pumping = new Set<JobKind>();
  private readonly again = new Set<JobKind>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly lockMs: number;
  private readonly resultTtl: number;
  private readonly log: NonNullable<ClusterWorkerOptions['log']>;
  private closing = false;
  /** Counts for metrics and tests. */
  readonly counts = { started: 0, retried: 0, stalled: 0, failedStalled: 0 };

  private constructor(
    pipelines: InferencePipelines,
    private readonly redis: Redis,
    private readonly sub: Redis,
    private readonly options: ClusterWorkerOptions,
  ) {
    this.id = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    this.scripts = scripts(redis, prefix);
    this.keys = keys(prefix);
    this.lockMs = options.lockMs ?? DEFAULT_WORKER_LOCK_MS;
    this.resultTtl = options.resultTtlSecs ?? 3600;
    this.log = options.log ?? { warn: (message: string) => process.emitWarning(message) };
    const maxBatch = options.maxBatch ?? 8;
    const concurrency = { imagine: 1, caption: 1, speak: 1, ...options.concurrency };
    // a worker takes as many jobs of a kind as its core runs at once: the caption lane's batch, the imagine lane's UNet batch
    this.slots = { imagine: concurrency.imagine, caption: concurrency.caption * maxBatch, speak: concurrency.speak };
    this.core = new InferenceCore(pipelines, {
      concurrency, maxBatch, maxQueued: 10_000, maxPerUser: 10_000,
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    const connection = { url: options.redisUrl };
    for (const kind of JOB_KINDS) {
      const queue = new Queue(this.keys.queue(kind), { connection: connectionOf(connection), prefix });
      queue.on('error', (error: Error) => this.log.warn(`BullMQ queue ${kind}: ${error.message}`));
      this.queues.set(kind, queue);
      const worker = new Worker(this.keys.queue(kind), null, {
        connection: connectionOf(connection), prefix, autorun: false,
        lockDuration: this.lockMs, stalledInterval: Math.max(500, Math.round(this.lockMs / 2)), maxStalledCount: 1,
      });
      worker.on('error', (error: Error) => this.log.warn(`BullMQ worker ${kind}: ${error.message}`));
      worker.on('stalled', () => { this.counts.stalled += 1; });
      this.workers.set(kind, worker);
    }
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.keys.wake && JOB_KINDS.includes(message as JobKind)) this.pump(message as JobKind);
      else if (channel === this.keys.cancel) this.running.get(message)?.cancel?.();
    });
  }

  static async open(pipelines: InferencePipelines, options: ClusterWorkerOptions): Promise<ClusterWorker> {
    const log = options.log ?? { warn: (message: string) => process.emitWarning(message) };
    const redis = connect(options.redisUrl, 'blocking', log, 'pictalk-worker');
    const sub = connect(options.redisUrl, 'blocking', log, 'pictalk-worker-events');
    try {
      await Promise.all([ready(redis, options.connectMs ?? REDIS_CONNECT_MS), ready(sub, options.connectMs ?? REDIS_CONNECT_MS)]);
    } catch (error) {
      await closeQuietly(redis, sub);
      throw error;
    }
    const worker = new ClusterWorker(pipelines, redis, sub, options);
    await worker.begin();
    return worker;
  }

  private async begin(): Promise<void> {
    await this.sub.subscribe(this.keys.wake, this.keys.cancel);
    await Promise.all([...this.workers.values()].map((w) => w.waitUntilReady()));
    for (const worker of this.workers.values()) worker.startStalledCheckTimer().catch(() => undefined);
    const every = (ms: number, task: () => Promise<void> | void): void => {
      const timer = setInterval(() => { Promise.resolve().then(task).catch(() => undefined); }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(Math.max(200, Math.round(this.lockMs / 3)), () => this.renewLocks());
    every(500, () => { for (const kind of JOB_KINDS) this.pump(kind); });   // work whose wake-up was missed
    every(5000, () => this.redispatchLost());
    for (const kind of JOB_KINDS) this.pump(kind);
  }

  /** Jobs waiting and running per kind in the whole cluster. */
  stats(): Promise<{ queued: Record<JobKind, number>; running: Record<JobKind, number> }> {
    return readStats(this.redis, this.keys);
  }

  /** Whether this worker takes jobs and Redis answers (for /healthz). */
  async ping(): Promise<boolean> {
    if (this.closing) return false;
    try { return (await this.redis.ping()) === 'PONG'; } catch { return false; }
  }

  /** Jobs this worker runs now, per kind. */
  busy(): Record<JobKind, number> {
    const out = { imagine: 0, caption: 0, speak: 0 };
    for (const job of this.running.values()) if (!job.done) out[job.kind] += 1;
    return out;
  }

  /** Take jobs of a kind while this worker has free slots; one pump per kind at a time. */
  private pump(kind: JobKind): void {
    if (this.closing) return;
    if (this.pumping.has(kind)) { this.again.add(kind); return; }
    this.pumping.add(kind);
    this.fill(kind)
      .catch((error: unknown) => this.log.warn(`taking ${kind} jobs failed`, { error: String(error) }))
      .finally(() => {
        this.pumping.delete(kind);
        if (this.again.delete(kind)) this.pump(kind);
      });
  }

  private async fill(kind: JobKind): Promise<void> {
    const worker = this.workers.get(kind)!;
    const taken: Array<{ bull: BullJob; token: string }> = [];
    while (!this.closing && this.busy()[kind] + taken.length < this.slots[kind]) {
      const token = `${this.id}:${randomUUID()}`;
      let bull = await worker.getNextJob(token, { block: false }) as BullJob | undefined;
      if (!bull) {
        const id = await this.scripts.pop(kind);
        if (!id) break;
        await this.queues.get(kind)!.add(kind, { id }, { jobId: id, removeOnComplete: true, removeOnFail: { age: 3600 } });
        bull = await worker.getNextJob(token, { block: false }) as BullJob | undefined;
        if (!bull) continue;      // another worker took it first: look again
      }
      taken.push({ bull, token });
    }
    // submitted to the local core in one turn, so captions taken together share a batch
    const started = await Promise.all(taken.map(({ bull, token }) => this.run(kind, bull, token)));
    // a job that turned out to be settled already (cancelled while it waited) left its slot free: look again
    if (started.includes(false)) this.again.add(kind);
  }

  /**
   * Start one BullMQ job: claim it in pictalk's record, hand it to the local core, settle it when it ends. Resolves
   * once it has started (true), or at once when there was nothing to run (false).
   */
  private async run(kind: JobKind, bull: BullJob, token: string): Promise<boolean> {
    const id = String(bull.id);
    const deferred = (bull as BullJob & { deferredFailure?: string }).deferredFailure;
    if (deferred) {
      // BullMQ put it back once already (its worker stopped) and it stalled again: fail it, tell its requester why
      await this.failStalled(kind, id, deferred);
      await bull.moveToFailed(new Error(deferred), token, false).catch(() => undefined);
      return false;
    }
    const claim = await this.scripts.start(id, this.id);
    if (claim[0] !== 'run') {            // cancelled (or settled) while it waited: nothing to run
      await bull.moveToCompleted('gone', token, false).catch(() => undefined);
      return false;
    }
    const [, input, timeoutMs, attempts, space, user, front] = claim as [string, string, string, number, string, string, string];
    this.counts.started += 1;
    if (attempts > 1) this.counts.retried += 1;
    this.options.onStart?.(id, attempts);
    const running: Running = { id, kind, bull, token, front: front ?? '', frontAt: Date.now() };
    this.running.set(id, running);
    const settled = (async (): Promise<void> => {
      let outcome: { ok: true; payload: string } | { ok: false; payload: string };
      try {
        const handle = this.core.submit({ userId: user, spaceId: space }, decodeInput(input), { jobId: id, timeoutMs: Number(timeoutMs) });
        running.cancel = () => { handle.cancel('by its requester'); };
        handle.on('progress', (p) => {
          // a live preview (a PNG of a few kB, every few steps) rides along as base64
          const preview = p.preview ? { preview: { png: p.preview.png.toString('base64'), width: p.preview.width, height: p.preview.height } } : {};
          this.publishProgress(running, JSON.stringify({ e: 'progress', id, stage: p.stage, step: p.step, total: p.total, ...preview }));
        });
        outcome = { ok: true, payload: encode(await handle.result) };
      } catch (error) {
        outcome = { ok: false, payload: JSON.stringify(asInferenceError(error, `The ${kind} job`)) };
      }
      // the models are free: the slot takes the next job while this one's outcome goes to Redis
      running.done = true;
      this.pump(kind);
      await this.settle(id, outcome.ok ? 'ok' : 'error', outcome.payload);
      await bull.moveToCompleted('settled', token, false).catch(() => undefined);   // lost its lock: another worker owns it
    })();
    settled.finally(() => { this.running.delete(id); this.pump(kind); }).catch(() => undefined);
    return true;
  }

  /**
   * A running job's progress goes to the front that follows it, on that front's channel (one PUBLISH, as many as
   * there are steps); which front that is, is asked again at most once a second, so a front that took the job over
   * gets the rest of it. A job with no front known goes to every front.
   */
  private publishProgress(running: Running, message: string): void {
    const now = Date.now();
    if (now - running.frontAt >= FRONT_RECHECK_MS) {
      running.frontAt = now;
      this.redis.get(this.keys.follow(running.id)).then((holder) => { if (holder && !holder.startsWith(ANSWERED_MARK)) running.front = holder; }).catch(() => undefined);
    }
    this.redis.publish(running.front ? this.keys.frontEvents(running.front) : this.keys.events, message).catch(() => undefined);
  }

  /** Settle in Redis; while Redis is away, keep the outcome and try again (a result is never dropped). */
  private async settle(id: string, outcome: 'ok' | 'error', payload: string): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.scripts.settle(id, outcome, payload, this.resultTtl);
        return;
      } catch (error) {
        if (this.closing && attempt > 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)));
      }
    }
  }

  private async failStalled(kind: JobKind, jobId: string, reason: string): Promise<void> {
    const error = new PictalkError('inference.failed',
      `The ${kind} job was interrupted twice (the worker running it stopped), so it was not tried again; please send it again`,
      { reason });
    if (await this.scripts.settle(jobId, 'error', JSON.stringify(error), this.resultTtl)) this.counts.failedStalled += 1;
  }

  private async renewLocks(): Promise<void> {
    await Promise.all([...this.running.values()].map((job) => job.bull.extendLock(job.token, this.lockMs).catch(() => 0)));
  }

  /** A job popped from the fair line whose BullMQ add was lost (a worker died between the two): add it again. */
  private async redispatchLost(): Promise<void> {
    const stale = await this.redis.zrangebyscore(this.keys.dispatched, 0, Date.now() - 5000);
    for (const id of stale) {
      const kind = await this.redis.hget(this.keys.job(id), 'kind') as JobKind | null;
      if (!kind || !JOB_KINDS.includes(kind)) { await this.redis.zrem(this.keys.dispatched, id); continue; }
      await this.queues.get(kind)!.add(kind, { id }, { jobId: id, removeOnComplete: true, removeOnFail: { age: 3600 } });
      await this.redis.zadd(this.keys.dispatched, Date.now(), id);
      this.pump(kind);
    }
  }

  /** Stop taking jobs, finish the running ones (their results are settled), and disconnect. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.core.close();
    // the running jobs' own settle-and-complete chains end after the core's results
    while (this.running.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await Promise.allSettled([...this.workers.values()].map((w) => w.close()));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    await closeQuietly(this.sub, this.redis);
  }
}

/** BullMQ's connection option: its own ioredis connections from the URL (blocking ones need maxRetriesPerRequest null). */
function connectionOf({ url }: { url: string }): ConnectionOptions {
  return { ...(redisOptionsOf(url) as Record<string, unknown>), maxRetriesPerRequest: null, connectTimeout: 2000, retryStrategy: (times: number) => Math.min(50 * times, 1000) };
}
