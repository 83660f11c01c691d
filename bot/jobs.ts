/**
 * Running a job on the core and following it: status forwarding (queued position, running step), the registry of
 * jobs that can still be cancelled, and job ids.
 */
import { randomBytes } from 'node:crypto';
import { PictalkError } from '../common/errors.js';
import type { JobInput, JobKind, JobOwner, JobResult, PreviewImage, ResultOf } from '../inference/types.js';
import type { InferencePort, JobHandle, SubmitOptions } from './ports.js';
import type { JobStatus } from './types.js';

/** Short, URL- and button-safe (Discord custom ids are at most 100 characters), unguessable enough to not collide. */
export const newJobId = (): string => `j${randomBytes(6).toString('base64url')}`;

/** A job that can still be cancelled: its main inference job is queued or running. */
export interface ActiveJob {
  id: string;
  kind: JobKind;
  requesterId: string;
  spaceId: string;
  cancelled: boolean;
  handle?: JobHandle;
}

export class ActiveJobs {
  private readonly jobs = new Map<string, ActiveJob>();

  add(job: Omit<ActiveJob, 'cancelled' | 'handle'>): ActiveJob {
    const active: ActiveJob = { ...job, cancelled: false };
    this.jobs.set(job.id, active);
    return active;
  }

  get(id: string): ActiveJob | undefined {
    return this.jobs.get(id);
  }

  remove(id: string): void {
    this.jobs.delete(id);
  }

  of(spaceId: string, userId: string): ActiveJob[] {
    return [...this.jobs.values()].filter((job) => job.spaceId === spaceId && job.requesterId === userId);
  }

  /**
   * Mark cancelled and ask the core to stop; the job's own flow sees the rejection and refunds. A job whose submit
   * is still on its way is cancelled by `runJob` as soon as its handle arrives.
   */
  cancel(id: string): boolean {
    const job = this.jobs.get(id);
    if (!job) return false;
    job.cancelled = true;
    job.handle?.cancel().catch(() => undefined);   // a queue that cannot be reached: the job times out instead
    return true;
  }
}

export interface RunJobOptions {
  /** The job id shown to the user; sub-jobs (alt text, voice) report status under their parent's id. */
  statusJobId: string;
  coreJobId: string;
  /** Absent: the core's default for the kind. */
  timeoutMs: number | undefined;
  onStatus?: (status: JobStatus) => void;
  /** Registered so `cancel` reaches this handle. */
  active?: ActiveJob;
}

/** Submit, forward status, await the typed result. Throws the core's PictalkError (or `job.cancelled`). */
export async function runJob<K extends JobKind>(
  core: InferencePort, owner: JobOwner, input: Extract<JobInput, { kind: K }>, options: RunJobOptions,
): Promise<ResultOf<K>> {
  const submitOptions: SubmitOptions = { jobId: options.coreJobId, ...(options.statusJobId !== options.coreJobId ? { part: true } : {}) };
  if (options.timeoutMs !== undefined) submitOptions.timeoutMs = options.timeoutMs;
  const handle = await core.submit(owner, input, submitOptions);
  return followJob(handle, input.kind, options);
}

/**
 * Follow a submitted job (or one a previous process submitted, attached again after a restart): forward its status,
 * register it for cancel, await its typed result.
 */
export async function followJob<K extends JobKind>(
  handle: JobHandle, kind: K, options: Omit<RunJobOptions, 'coreJobId' | 'timeoutMs'>,
): Promise<ResultOf<K>> {
  const { statusJobId: jobId, onStatus } = options;
  const report = (status: JobStatus): void => {
    try {
      onStatus?.(status);
    } catch {
      // A failing status update must not fail the job: the final reply still goes out.
    }
  };
  if (options.active) {
    options.active.handle = handle;
    if (options.active.cancelled) await handle.cancel();
  }
  // The core's events (they come asynchronously, after `submit` resolved), listened to before the position at submit
  // time is asked for; an event that came while it was asked wins over it.
  // Positions: 1.. waiting (1 = next), 0 running (a `start` event follows, which reports it), -1 settled.
  let heard = false;
  handle.on('position', (position) => {
    heard = true;
    if (position > 0) report({ state: 'queued', jobId, position });
  });
  handle.on('start', () => {
    heard = true;
    report({ state: 'running', jobId, stage: 'starting', step: 0, total: 1 });
  });
  // the latest live preview stays on the statuses after it, so a throttled adapter that sends only the latest shows it
  let preview: PreviewImage | undefined;
  handle.on('progress', (p) => {
    if (p.preview) preview = p.preview;
    report({ state: 'running', jobId, stage: p.stage, step: p.step, total: p.total, ...(preview && p.stage === 'denoise' ? { preview } : {}) });
  });
  const initial = await handle.position();
  if (initial > 0 && !heard) report({ state: 'queued', jobId, position: initial });
  const result: JobResult = await handle.result;
  if (options.active?.cancelled) {
    // The cancel came while the result was on its way: the user was told it is cancelled, so honour that.
    throw new PictalkError('job.cancelled', `Job ${jobId} was cancelled`);
  }
  if (result.kind !== kind) {
    throw new PictalkError('inference.failed', `Expected a ${kind} result from the core, got a ${result.kind} result`);
  }
  return result as ResultOf<K>;
}
