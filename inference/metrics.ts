/**
 * The one module that imports prom-client. The inference core records into these metrics; whoever serves
 * `/metrics` calls `renderMetrics(registry)`.
 * Metric names follow the Prometheus conventions (base units, `_total` for counters).
 * @see https://prometheus.io/docs/practices/naming/
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, register as defaultRegistry } from 'prom-client';
import type { JobKind } from './types.js';

export type MetricsRegistry = Registry;

/** How a job ended: the `outcome` label of `pictalk_jobs_total`. */
export type JobOutcome = 'success' | 'failed' | 'cancelled' | 'timeout' | 'rejected';

export interface InferenceMetrics {
  readonly registry: Registry;
  setQueueDepth(kind: JobKind, depth: number): void;
  setRunning(kind: JobKind, running: number): void;
  observeWait(kind: JobKind, seconds: number): void;
  observeRun(kind: JobKind, seconds: number): void;
  observeBatch(kind: JobKind, size: number): void;
  /** One UNet run of the text-to-image pipeline: how many imagine requests shared it. */
  observeUnetRun(requests: number): void;
  /**
   * One ranking of candidate pictures by the captioner inside an imagine job (its `scorer`): how many pictures it
   * scored and how long it took. It runs outside the caption lane, so this is where its cost shows.
   */
  observeRank(pictures: number, seconds: number): void;
  /** One finished (or refused) job; `code` is the error code when it did not succeed. */
  countJob(kind: JobKind, outcome: JobOutcome, code?: string): void;
}

/** A fresh registry, optionally with the process metrics (CPU, memory, event-loop lag) that prom-client collects. */
export function createMetricsRegistry(options: { defaultMetrics?: boolean; prefix?: string } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: options.prefix ?? 'pictalk_' });
  return registry;
}

/** The text exposition format for an HTTP `/metrics` answer. */
export async function renderMetrics(registry: Registry = defaultRegistry): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}

// Seconds: a caption or a voice clip takes tens of milliseconds to a second, an image seconds to minutes.
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const RUN_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/**
 * Create (or reuse, when the registry already holds them) the inference metrics. Reusing makes two cores on the
 * default registry share metrics instead of failing with "already registered".
 */
export function createInferenceMetrics(registry: Registry = defaultRegistry): InferenceMetrics {
  const reuse = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  const registers = [registry];

  const queueDepth = reuse('pictalk_queue_depth', () => new Gauge({
    name: 'pictalk_queue_depth', help: 'Jobs waiting in the inference queue, by job kind', labelNames: ['kind'], registers,
  }));
  const running = reuse('pictalk_jobs_running', () => new Gauge({
    name: 'pictalk_jobs_running', help: 'Jobs running now, by job kind', labelNames: ['kind'], registers,
  }));
  const wait = reuse('pictalk_job_wait_seconds', () => new Histogram({
    name: 'pictalk_job_wait_seconds', help: 'Time from submission to start, by job kind', labelNames: ['kind'], buckets: WAIT_BUCKETS, registers,
  }));
  const run = reuse('pictalk_job_run_seconds', () => new Histogram({
    name: 'pictalk_job_run_seconds', help: 'Time from start to result, by job kind', labelNames: ['kind'], buckets: RUN_BUCKETS, registers,
  }));
  const batch = reuse('pictalk_batch_size', () => new Histogram({
    name: 'pictalk_batch_size', help: 'Jobs per pipeline call, by job kind', labelNames: ['kind'], buckets: [1, 2, 4, 8, 16, 32], registers,
  }));
  const unetRuns = reuse('pictalk_unet_run_requests', () => new Histogram({
    name: 'pictalk_unet_run_requests', help: 'Imagine requests sharing one UNet run (cross-request batching)', buckets: [1, 2, 4, 8, 16], registers,
  }));
  const rankSeconds = reuse('pictalk_rank_seconds', () => new Histogram({
    name: 'pictalk_rank_seconds', help: 'Time the captioner spent ranking candidate pictures inside imagine jobs (outside the caption lane)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers,
  }));
  const rankPictures = reuse('pictalk_rank_pictures_total', () => new Counter({
    name: 'pictalk_rank_pictures_total', help: 'Candidate pictures the captioner scored inside imagine jobs', registers,
  }));
  const jobs = reuse('pictalk_jobs_total', () => new Counter({
    name: 'pictalk_jobs_total', help: 'Jobs by kind and outcome (success, failed, cancelled, timeout, rejected)', labelNames: ['kind', 'outcome'], registers,
  }));
  const failures = reuse('pictalk_job_failures_total', () => new Counter({
    name: 'pictalk_job_failures_total', help: 'Jobs that did not succeed, by kind and error code', labelNames: ['kind', 'code'], registers,
  }));

  return {
    registry,
    setQueueDepth: (kind, depth) => queueDepth.set({ kind }, depth),
    setRunning: (kind, n) => running.set({ kind }, n),
    observeWait: (kind, seconds) => wait.observe({ kind }, seconds),
    observeRun: (kind, seconds) => run.observe({ kind }, seconds),
    observeBatch: (kind, size) => batch.observe({ kind }, size),
    observeUnetRun: (requests) => unetRuns.observe(requests),
    observeRank: (pictures, seconds) => { rankSeconds.observe(seconds); rankPictures.inc(pictures); },
    countJob: (kind, outcome, code) => {
      jobs.inc({ kind, outcome });
      if (outcome !== 'success') failures.inc({ kind, code: code ?? 'unknown' });
    },
  };
}

/** What the cluster's metrics read when Prometheus scrapes: the queue as Redis holds it, this worker's own counts. */
export interface ClusterMetricsSource {
  /** Jobs waiting and running per kind in the whole cluster (one figure, whichever process is scraped). */
  stats(): Promise<{ queued: Record<JobKind, number>; running: Record<JobKind, number> }>;
  /** This worker's counts since it started, when the process is a worker. */
  workerCounts?(): { started: number; retried: number; stalled: number; failedStalled: number };
}

/**
 * The cluster's metrics, collected at scrape time: `pictalk_cluster_queue_depth` and `pictalk_cluster_jobs_running`
 * from Redis (the same on every process: chart one process's, or `max by (kind)`), and per worker the jobs it started,
 * ran again after another worker stopped (`retries`), found stalled, and failed after a second stall. Per-worker run
 * times are `pictalk_job_run_seconds` of each worker process.
 */
export function createClusterMetrics(registry: Registry, source: ClusterMetricsSource): void {
  const registers = [registry];
  const kinds: JobKind[] = ['imagine', 'caption', 'speak'];
  let pending: Promise<Awaited<ReturnType<ClusterMetricsSource['stats']>> | undefined> | undefined;
  // one Redis read per scrape for both gauges
  const read = () => (pending ??= source.stats().catch(() => undefined).finally(() => { setTimeout(() => { pending = undefined; }, 100); }));
  new Gauge({
    name: 'pictalk_cluster_queue_depth', help: 'Jobs waiting in the cluster queue (Redis), by job kind', labelNames: ['kind'], registers,
    async collect() {
      const stats = await read();
      if (stats) for (const kind of kinds) this.set({ kind }, stats.queued[kind]);
    },
  });
  new Gauge({
    name: 'pictalk_cluster_jobs_running', help: 'Jobs running on the cluster\'s workers (Redis), by job kind', labelNames: ['kind'], registers,
    async collect() {
      const stats = await read();
      if (stats) for (const kind of kinds) this.set({ kind }, stats.running[kind]);
    },
  });
  const counts = source.workerCounts;
  if (!counts) return;
  const counter = (name: string, help: string, key: keyof ReturnType<NonNullable<ClusterMetricsSource['workerCounts']>>): void => {
    // counted by the worker since it started, read at scrape time: a counter that never goes down (`rate()` works)
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(counts()[key]); } });
  };
  counter('pictalk_worker_jobs_started_total', 'Jobs this worker started', 'started');
  counter('pictalk_worker_retries_total', 'Jobs this worker ran again after the worker running them stopped', 'retried');
  counter('pictalk_worker_stalled_total', 'Stalled jobs (a worker stopped renewing its lock) this worker found and put back', 'stalled');
  counter('pictalk_worker_stalled_failed_total', 'Jobs this worker failed because they stalled a second time', 'failedStalled');
}

/** What an adapter's endpoint reports, without knowing prom-client (adapters/ take it as plain callbacks). */
export interface EndpointMetrics {
  /** Seconds from a request's arrival to its acknowledgement, by the response it got (`deferred`, `message`, ...). */
  acknowledged(response: string, seconds: number): void;
  /** A request refused before anything ran, by reason (`signature`, `stale`, `too_large`, `malformed`, ...). */
  refused(reason: string): void;
}

const ACK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 3];

/**
 * An HTTP endpoint's metrics, labelled by platform: `pictalk_interaction_ack_seconds` (Discord wants the answer
 * within 3 s) and `pictalk_interactions_refused_total` (a steady stream of bad signatures means a wrong public key,
 * or someone probing the URL).
 */
export function createEndpointMetrics(registry: Registry, platform: string): EndpointMetrics {
  const registers = [registry];
  const ack = (registry.getSingleMetric('pictalk_interaction_ack_seconds') as Histogram<'platform' | 'response'> | undefined) ?? new Histogram({
    name: 'pictalk_interaction_ack_seconds', help: 'Time from a platform request\'s arrival to its acknowledgement, by platform and response',
    labelNames: ['platform', 'response'], buckets: ACK_BUCKETS, registers,
  });
  const refused = (registry.getSingleMetric('pictalk_interactions_refused_total') as Counter<'platform' | 'reason'> | undefined) ?? new Counter({
    name: 'pictalk_interactions_refused_total', help: 'Platform requests refused before anything ran, by platform and reason',
    labelNames: ['platform', 'reason'], registers,
  });
  return {
    acknowledged: (response, seconds) => ack.observe({ platform, response }, seconds),
    refused: (reason) => refused.inc({ platform, reason }),
  };
}
