/**
 * Throughput through ONE InferenceCore (or the cluster queue) with the real pipelines: `clients` closed-loop clients (each submits a job,
 * waits for its result, submits the next) of one kind, distinct users in one space, until `jobs` jobs are done.
 * With several captions waiting at once the core batches them into one `captionBatch` call, which is what the
 * caption ratio c8 / c1 measures.
 */
import type { JobInput, JobKind, JobOwner } from '../inference/types.js';
import { summarize, type Summary } from './bench.stats.js';

export interface ThroughputLevel {
  clients: number;
  jobs: number;
  seconds: number;
  jobs_per_s: number;
  /** Submit-to-result time of each job (queueing included). */
  latency_ms: Summary;
}

/**
 * `warmup` untimed jobs first, at the same concurrency: a batched caption call meets batch sizes the sessions have
 * not run yet, and onnxruntime plans memory per new input shape on first sight.
 */
/** Where the clients submit: an in-process core, or a front's client of the cluster queue. */
export interface Submitter {
  submit(owner: JobOwner, input: JobInput): { result: Promise<unknown> } | Promise<{ result: Promise<unknown> }>;
}

export async function closedLoop<K extends JobKind>(
  core: Submitter, clients: number, jobs: number, input: (i: number) => Extract<JobInput, { kind: K }>, warmup = 0,
): Promise<ThroughputLevel> {
  const drive = async (count: number, offset: number, latencies: number[]): Promise<void> => {
    let next = 0;
    const client = async (id: number): Promise<void> => {
      while (next < count) {
        const i = offset + next;
        next += 1;
        const submitted = performance.now();
        await (await core.submit({ userId: `bench-user-${id}`, spaceId: 'bench' }, input(i))).result;
        latencies.push(performance.now() - submitted);
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, id) => client(id)));
  };
  if (warmup > 0) await drive(warmup, jobs, []);
  const latencies: number[] = [];
  const started = performance.now();
  await drive(jobs, 0, latencies);
  const seconds = (performance.now() - started) / 1000;
  return { clients, jobs, seconds: Number(seconds.toFixed(3)), jobs_per_s: Number((jobs / seconds).toFixed(2)), latency_ms: summarize(latencies) };
}
