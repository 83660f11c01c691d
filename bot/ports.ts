/**
 * What bot/ needs from the outside, as small ports: the inference core (real one in inference/core.ts, a fake in
 * tests), a clock, a logger. bot/ never imports the concrete core, so its tests run without models.
 */
import type { Logger as CommonLogger } from '../common/logger.js';
import type { JobInput, JobKind, JobOwner, JobResult, Progress } from '../inference/types.js';

/**
 * A submitted job. `result` rejects with a PictalkError (`job.cancelled`, `job.timeout`, `inference.failed`, ...);
 * recognise it by its shape (`isPictalkError`), since it may have crossed a process boundary as JSON. Everything that
 * asks the queue is asynchronous: the queue may live in another process (the cluster's Redis-backed queue).
 */
export interface JobHandle {
  readonly id: string;
  /** 1.. while waiting (1 = next), 0 while running, -1 once settled. */
  position(): Promise<number>;
  on(event: 'position', listener: (position: number) => void): unknown;
  on(event: 'start', listener: () => void): unknown;
  on(event: 'progress', listener: (progress: Progress) => void): unknown;
  readonly result: Promise<JobResult>;
  /** Ask the queue to stop the job; false when it had already settled. */
  cancel(): Promise<boolean>;
}

export interface SubmitOptions {
  timeoutMs?: number;
  /** bot/ picks the id so its jobs table, buttons and the core agree on one name. */
  jobId?: string;
  /**
   * Part of another job's reply (an image's alt text, a caption's voice): no front need take it over on its own (the
   * front that takes over the parent job makes its parts again), and a stopping front lets it run to the end.
   */
  part?: boolean;
}

/** Queue figures for `/status`, per job kind; the core offers more, bot/ reads these. */
export interface QueueStats {
  queued: Record<JobKind, number>;
  running: Record<JobKind, number>;
}

/**
 * "Submit a job and get a handle": the one port bot/ runs jobs through, in-process (adapters/core.port.ts over
 * inference/core.ts) or across processes. tests/bot/port.contract.ts is its contract.
 */
export interface InferencePort {
  /** Accept a job; rejects with `queue.busy` when the line is full (for everyone, or for this user). */
  submit(owner: JobOwner, input: JobInput, options?: SubmitOptions): Promise<JobHandle>;
  /** Cancel a job by its id, from any process: false when no job of that id is waiting or running. */
  cancel(jobId: string): Promise<boolean>;
  stats?(): Promise<QueueStats>;
  /**
   * Of these job ids, those the queue can still deliver (waiting, running, or settled with the result kept), when the
   * queue outlives this process (the cluster's): a restarting front follows those instead of failing them.
   */
  attachable?(jobIds: readonly string[]): Promise<string[]>;
  /**
   * Of these job ids, those the queue can still deliver and no live process follows (their front stopped), now
   * claimed by this process: follow each with `attach`.
   */
  claim?(jobIds: readonly string[]): Promise<string[]>;
  /** A handle on a job another process submitted, or undefined when the queue no longer knows it. */
  attach?(jobId: string): Promise<JobHandle | undefined>;
  /**
   * This process is done with a job (its reply is built and settled): no other process need take it over. A queue
   * that outlives its fronts keeps this process's claim on a job from submit or attach until then.
   */
  release?(jobId: string): void;
}

/**
 * Rate-limit buckets shared by several processes (the cluster's, in Redis): one token for `key` (capacity in a burst,
 * refilled over `windowMs`). Without it, each process keeps its own buckets in memory.
 */
export interface SharedRateLimits {
  take(key: string, capacity: number, windowMs: number): Promise<{ ok: boolean; retryAfterMs: number }>;
}

export interface Clock {
  now(): number; // ms since epoch
}

export const systemClock: Clock = { now: () => Date.now() };

/** Where bot/ reports what no user should see (unknown errors, a failed `finish`): the part of common/'s Logger it uses. */
export type Logger = Pick<CommonLogger, 'warn' | 'error'>;

export const consoleLogger: Logger = {
  warn: (message, details) => console.warn(`[pictalk] ${message}`, details ?? ''),
  error: (message, details) => console.error(`[pictalk] ${message}`, details ?? ''),
};

/**
 * Writes alt text for a generated image. The default submits a caption job to the core (the paper's unified loop:
 * the captioner describes what the generator drew); tests or operators may plug another one in.
 */
export interface AltTextCaptioner {
  describe(png: Buffer, context: { owner: JobOwner; jobId: string; index: number }): Promise<string>;
}
