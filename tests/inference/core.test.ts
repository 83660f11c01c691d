import { InferenceCore, type InferenceCoreOptions, type InferencePipelines, type JobHandle } from '../../inference/core.js';
import { PictalkError, isPictalkError } from '../../common/errors.js';
import { createMetricsRegistry, type MetricsRegistry } from '../../inference/metrics.js';
import type {
  CaptionRequest, CaptionResult, CaptionRunOptions, ImagineRequest, ImagineResult, JobKind, JobOwner, Progress, RunOptions, SpeakRequest, SpeechResult,
} from '../../inference/types.js';

// ---------------------------------------------------------------------------------------------------------------------
// A fake pipelines port: every call waits until the test settles it.
// ---------------------------------------------------------------------------------------------------------------------

interface FakeCall {
  kind: JobKind | 'captionBatch';
  labels: string[];                 // the prompts / texts / image contents, to see who ran
  options: RunOptions;
  resolve(value?: unknown): void;
  reject(error: unknown): void;
}

const imagineResult = (prompt: string): ImagineResult => ({
  kind: 'imagine', images: [], model: { name: 'fake', hash: '0' }, timingsMs: {},
  settings: { prompt, negativePrompt: '', seed: 1, steps: 1, guidance: 1, width: 8, height: 8, scheduler: 'pndm', count: 1, candidates: 1 },
});
const captionResult = (label: string): CaptionResult => ({ kind: 'caption', caption: `Caption of ${label}.`, tokens: [label], score: -1, timingsMs: {} });
const speechResult = (text: string): SpeechResult => ({ kind: 'speak', ogg: Buffer.from(text), durationSecs: 1, waveform: new Uint8Array(256), timingsMs: {} });

class FakePipelines implements InferencePipelines {
  readonly calls: FakeCall[] = [];
  /** When set, calls settle themselves with their default result after this many ms. */
  autoMs: number | undefined;

  private call<T>(kind: FakeCall['kind'], labels: string[], options: RunOptions, make: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: FakeCall = { kind, labels, options, resolve: (v) => resolve((v ?? make()) as T), reject };
      this.calls.push(call);
      if (this.autoMs !== undefined) setTimeout(() => call.resolve(), this.autoMs);
    });
  }

  imagine(request: ImagineRequest, options: RunOptions): Promise<ImagineResult> {
    return this.call('imagine', [request.prompt], options, () => imagineResult(request.prompt));
  }
  captionBatch(requests: CaptionRequest[], options: RunOptions): Promise<CaptionResult[]> {
    const labels = requests.map((r) => r.image.toString());
    return this.call('captionBatch', labels, options, () => labels.map(captionResult));
  }
  speak(request: SpeakRequest, options: RunOptions): Promise<SpeechResult> {
    return this.call('speak', [request.text], options, () => speechResult(request.text));
  }

  started(): string[] { return this.calls.flatMap((c) => c.labels); }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) { if (condition()) return; await tick(); }
  throw new Error(`Timed out waiting for ${what}`);
}

/** Histogram values carry the sample's name (`_sum`, `_count`, `_bucket`), which prom-client's type leaves out. */
const nameOf = (value: unknown): string | undefined => (value as { metricName?: string }).metricName;
const owner = (userId: string, spaceId = 'guild-1'): JobOwner => ({ userId, spaceId });
const imagine = (prompt: string) => ({ kind: 'imagine' as const, request: { prompt } });
const caption = (label: string) => ({ kind: 'caption' as const, request: { image: Buffer.from(label) } });

async function errorOf(promise: Promise<unknown>): Promise<PictalkError> {
  try {
    await promise;
  } catch (error) {
    if (isPictalkError(error)) return error;
    throw error;
  }
  throw new Error('Expected the promise to reject');
}

function setup(options: InferenceCoreOptions = {}): { fake: FakePipelines; core: InferenceCore; registry: MetricsRegistry } {
  const fake = new FakePipelines();
  const registry = createMetricsRegistry();
  const core = new InferenceCore(fake, { maxPerUser: 50, registry, ...options });
  return { fake, core, registry };
}

/** Settle calls one at a time, in order, until `done` holds. */
async function runAll(fake: FakePipelines, done: () => boolean): Promise<void> {
  let settled = 0;
  while (!done()) {
    await until(() => fake.calls.length > settled || done(), 'the next pipeline call');
    if (done()) break;
    fake.calls[settled++]!.resolve();
    await tick();
  }
}

// ---------------------------------------------------------------------------------------------------------------------

describe('InferenceCore fairness', () => {
  it('lets another user\'s single job through after at most one of twenty queued jobs from one user', async () => {
    const { fake, core } = setup();
    const heavy = Array.from({ length: 20 }, (_, i) => core.submit(owner('alice'), imagine(`alice-${i + 1}`)));
    await until(() => fake.calls.length === 1, 'alice-1 to start');
    const startedBeforeBob = fake.started().length;
    const bob = core.submit(owner('bob'), imagine('bob-1'));
    expect(bob.position()).toBe(2);                  // behind one of alice's, not behind nineteen
    await runAll(fake, () => fake.started().includes('bob-1'));
    const order = fake.started();
    const aliceBetween = order.slice(startedBeforeBob, order.indexOf('bob-1')).filter((l) => l.startsWith('alice'));
    expect(aliceBetween.length).toBeLessThanOrEqual(1);
    await runAll(fake, () => core.stats().running.imagine + core.stats().queued.imagine === 0);
    await expect(Promise.all([...heavy, bob].map((h) => h.result))).resolves.toHaveLength(21);
  });

  it('takes turns across spaces before users, so a crowded guild does not starve a quiet workspace', async () => {
    const { fake, core } = setup();
    const blocker = core.submit(owner('zed', 'guild-1'), imagine('blocker'));
    await until(() => fake.calls.length === 1, 'the blocker to start');
    for (const user of ['u1', 'u2', 'u3']) for (let i = 1; i <= 2; i++) core.submit(owner(user, 'guild-1'), imagine(`${user}.${i}`));
    const slack = core.submit(owner('w', 'slack-T1'), imagine('slack-1'));
    expect(slack.position()).toBe(2);
    await runAll(fake, () => core.stats().queued.imagine === 0 && core.stats().running.imagine === 0);
    expect(fake.started()).toEqual(['blocker', 'u1.1', 'slack-1', 'u2.1', 'u3.1', 'u1.2', 'u2.2', 'u3.2']);
    await blocker.result;
  });

  it('emits position events that only go down, ending at 0 when the job starts', async () => {
    const { fake, core } = setup();
    for (let i = 1; i <= 3; i++) core.submit(owner(`u${i}`), imagine(`p${i}`));
    const last = core.submit(owner('u4'), imagine('p4'));
    const positions: number[] = [];
    let started = false;
    last.on('position', (p) => positions.push(p));
    last.on('start', () => { started = true; });
    expect(last.position()).toBe(4);
    await runAll(fake, () => started);
    expect(positions).toEqual([3, 2, 1, 0]);
    expect(last.position()).toBe(0);
    fake.calls[3]!.resolve();
    await last.result;
    expect(last.position()).toBe(-1);
  });
});

describe('InferenceCore limits', () => {
  it('says queue.busy, with how full it is, when the line is full for everyone', async () => {
    const { fake, core, registry } = setup({ maxQueued: 3 });
    core.submit(owner('a'), imagine('running'));
    await until(() => fake.calls.length === 1, 'the first job to start');
    for (let i = 0; i < 3; i++) core.submit(owner(`u${i}`), imagine(`q${i}`));
    const error = (() => { try { core.submit(owner('late'), imagine('late')); } catch (e) { return e; } })();
    expect(error).toBeInstanceOf(PictalkError);
    expect(error).toMatchObject({ code: 'queue.busy', retryable: true, details: { scope: 'total', queued: 3, limit: 3 } });
    expect((error as Error).message).toBe('The queue is full (3 of 3 jobs waiting); try again in a little while');
    const rejected = await registry.getSingleMetric('pictalk_jobs_total')!.get();
    expect(rejected.values.find((v) => v.labels.outcome === 'rejected')?.value).toBe(1);
  });

  it('says queue.busy when one user has too many unfinished jobs, while others still get in', () => {
    const { core } = setup({ maxPerUser: 2 });
    core.submit(owner('a'), imagine('1'));
    core.submit(owner('a'), caption('2'));
    expect(() => core.submit(owner('a'), imagine('3'))).toThrow(expect.objectContaining({
      code: 'queue.busy', message: 'You already have 2 of 2 jobs waiting or running; wait for one to finish',
    }));
    expect(() => core.submit(owner('b'), imagine('4'))).not.toThrow();
  });

  it('refuses malformed submissions with input.invalid before queueing anything', () => {
    const { core } = setup();
    expect(() => core.submit(owner(''), imagine('x'))).toThrow(/owner.userId.*got `""`/);
    expect(() => core.submit(owner('a'), { kind: 'paint', request: {} } as never)).toThrow(/job kind of imagine, caption, speak, got `"paint"`/);
    expect(() => core.submit(owner('a'), imagine('x'), { timeoutMs: -5 })).toThrow(/timeoutMs/);
    core.submit(owner('a'), imagine('x'), { jobId: 'job-1' });
    expect(() => core.submit(owner('a'), imagine('y'), { jobId: 'job-1' })).toThrow(/already in use/);
    expect(core.stats().queued.imagine).toBe(1);
  });

  it('refuses a bad configuration with config.invalid', () => {
    expect(() => new InferenceCore(new FakePipelines(), { concurrency: { imagine: 0 } })).toThrow(expect.objectContaining({ code: 'config.invalid' }));
    expect(() => new InferenceCore({} as InferencePipelines)).toThrow(/`imagine` function/);
  });

  it('runs up to the configured concurrency per kind, kinds independently', async () => {
    const { fake, core } = setup({ concurrency: { imagine: 2 } });
    for (let i = 0; i < 4; i++) core.submit(owner(`u${i}`), imagine(`i${i}`));
    core.submit(owner('s'), { kind: 'speak', request: { text: 'hello' } });
    await until(() => fake.calls.length === 3, 'three calls');
    await tick();
    expect(fake.calls.map((c) => c.kind).sort()).toEqual(['imagine', 'imagine', 'speak']);
    expect(core.stats()).toMatchObject({ queued: { imagine: 2, caption: 0, speak: 0 }, running: { imagine: 2, caption: 0, speak: 1 } });
  });
});

describe('InferenceCore cancel and timeout', () => {
  it('removes a cancelled waiting job at once, and those behind it move up', async () => {
    const { fake, core } = setup();
    core.submit(owner('a'), imagine('running'));
    const doomed = core.submit(owner('b'), imagine('doomed'));
    const behind = core.submit(owner('c'), imagine('behind'));
    await until(() => fake.calls.length === 1, 'the first job to start');
    const positions: number[] = [];
    behind.on('position', (p) => positions.push(p));
    expect(doomed.cancel()).toBe(true);
    expect(positions).toEqual([1]);
    const error = await errorOf(doomed.result);
    expect(error.code).toBe('job.cancelled');
    expect(error.message).toContain('before it started');
    expect(doomed.cancel()).toBe(false);
    await runAll(fake, () => fake.started().includes('behind'));
    expect(fake.started()).toEqual(['running', 'behind']);
  });

  it('aborts a running job through its AbortSignal and rejects it with job.cancelled', async () => {
    const { fake, core } = setup();
    const job = core.submit(owner('a'), imagine('long'));
    const next = core.submit(owner('b'), imagine('next'));
    await until(() => fake.calls.length === 1, 'the job to start');
    const signal = fake.calls[0]!.options.signal!;
    expect(signal.aborted).toBe(false);
    expect(job.cancel('by a moderator')).toBe(true);
    expect(signal.aborted).toBe(true);
    expect((await errorOf(job.result)).message).toBe('The imagine job was cancelled by a moderator while it ran');
    // The slot frees when the pipeline gives up, not before: concurrency holds.
    await tick();
    expect(fake.calls.length).toBe(1);
    fake.calls[0]!.reject(new PictalkError('job.cancelled', 'stopped between steps'));
    await until(() => fake.calls.length === 2, 'the next job to start');
    fake.calls[1]!.resolve();
    await expect(next.result).resolves.toMatchObject({ kind: 'imagine' });
  });

  it('stops a job that runs past its timeout with job.timeout and aborts the run', async () => {
    const { fake, core } = setup({ timeoutMs: { imagine: 10_000 } });
    const job = core.submit(owner('a'), imagine('slow'), { timeoutMs: 30 });
    await until(() => fake.calls.length === 1, 'the job to start');
    const error = await errorOf(job.result);
    expect(error).toMatchObject({ code: 'job.timeout', retryable: true, details: { timeoutMs: 30 } });
    expect(fake.calls[0]!.options.signal!.aborted).toBe(true);
    fake.calls[0]!.resolve();                               // a late result is ignored
    await tick();
    expect(core.stats().running.imagine).toBe(0);
  });

  it('does not count waiting time against the timeout', async () => {
    const { fake, core } = setup();
    core.submit(owner('a'), imagine('first'));
    const second = core.submit(owner('b'), imagine('second'), { timeoutMs: 40 });
    await until(() => fake.calls.length === 1, 'the first job to start');
    await sleep(80);
    fake.calls[0]!.resolve();
    await until(() => fake.calls.length === 2, 'the second job to start');
    fake.calls[1]!.resolve();
    await expect(second.result).resolves.toMatchObject({ kind: 'imagine' });
  });
});

describe('InferenceCore results', () => {
  it('forwards progress from the pipeline to the job\'s listeners', async () => {
    const { fake, core } = setup();
    const job = core.submit(owner('a'), imagine('p'));
    const seen: Progress[] = [];
    job.on('progress', (p) => seen.push(p));
    await until(() => fake.calls.length === 1, 'the job to start');
    fake.calls[0]!.options.onProgress!({ stage: 'denoise', step: 1, total: 20 });
    fake.calls[0]!.options.onProgress!({ stage: 'denoise', step: 2, total: 20 });
    fake.calls[0]!.resolve();
    await job.result;
    expect(seen).toEqual([{ stage: 'denoise', step: 1, total: 20 }, { stage: 'denoise', step: 2, total: 20 }]);
  });

  it('wraps unknown errors as inference.failed and keeps pictalk errors as they are', async () => {
    const { fake, core } = setup();
    const a = core.submit(owner('a'), imagine('a'));
    const b = core.submit(owner('b'), imagine('b'));
    await until(() => fake.calls.length === 1, 'a to start');
    fake.calls[0]!.reject(new TypeError('tensor shape [1, 4, 8, 8] does not match'));
    await until(() => fake.calls.length === 2, 'b to start');
    fake.calls[1]!.reject(new PictalkError('input.invalid', 'Expected `steps` to be from 1 to 100, got `0` (number)'));
    expect(await errorOf(a.result)).toMatchObject({ code: 'inference.failed', message: 'The imagine job failed: tensor shape [1, 4, 8, 8] does not match' });
    expect((await errorOf(b.result)).code).toBe('input.invalid');
  });

  it('keeps a listener that throws from breaking the queue, and reports it', async () => {
    const reported: string[] = [];
    const { fake, core } = setup({ onListenerError: (error, { event }) => reported.push(`${event}: ${(error as Error).message}`) });
    const job = core.submit(owner('a'), imagine('p'));
    job.on('start', () => { throw new Error('adapter bug'); });
    await until(() => fake.calls.length === 1, 'the job to start');
    fake.calls[0]!.resolve();
    await expect(job.result).resolves.toMatchObject({ kind: 'imagine' });
    expect(reported).toEqual(['start: adapter bug']);
  });
});

describe('InferenceCore caption batching', () => {
  it('runs caption jobs that wait at the same time as one batch call, each job with its own result', async () => {
    const { fake, core, registry } = setup();
    const first = core.submit(owner('a'), caption('img-0'));
    await until(() => fake.calls.length === 1, 'the first caption to start');
    const waiting = Array.from({ length: 5 }, (_, i) => core.submit(owner(`u${i}`), caption(`img-${i + 1}`)));
    fake.calls[0]!.resolve();
    await until(() => fake.calls.length === 2, 'the batch to start');
    expect(fake.calls[1]!.labels).toEqual(['img-1', 'img-2', 'img-3', 'img-4', 'img-5']);
    fake.calls[1]!.resolve();
    const results = await Promise.all(waiting.map((j) => j.result));
    expect(results.map((r) => r.caption)).toEqual(['Caption of img-1.', 'Caption of img-2.', 'Caption of img-3.', 'Caption of img-4.', 'Caption of img-5.']);
    expect((await first.result).caption).toBe('Caption of img-0.');
    const batch = await registry.getSingleMetric('pictalk_batch_size')!.get();
    expect(batch.values.find((v) => nameOf(v) === 'pictalk_batch_size_sum' && v.labels.kind === 'caption')?.value).toBe(6);
  });

  it('settles each job of a batch as soon as the pipeline reports its caption, before the batch ends', async () => {
    const { fake, core } = setup();
    core.submit(owner('a'), caption('running'));
    await until(() => fake.calls.length === 1, 'the first caption to start');
    const jobs = ['short', 'long'].map((l, i) => core.submit(owner(`u${i}`), caption(l)));
    fake.calls[0]!.resolve();
    await until(() => fake.calls.length === 2, 'the batch to start');
    const early = captionResult('short');
    (fake.calls[1]!.options as CaptionRunOptions).onCaption!(0, early);
    await expect(jobs[0]!.result).resolves.toBe(early);
    expect(jobs[1]!.position()).toBe(0);                     // the other one still runs
    fake.calls[1]!.resolve([captionResult('ignored: settled already'), captionResult('long')]);
    await expect(jobs[1]!.result).resolves.toMatchObject({ caption: 'Caption of long.' });
    await expect(jobs[0]!.result).resolves.toBe(early);
  });

  it('prefetches the captions next in line, two batches\' worth, each once, and never imagine jobs', async () => {
    const fake = new FakePipelines();
    const prefetched: string[] = [];
    const pipelines: InferencePipelines = {
      imagine: (r, o) => fake.imagine(r, o), speak: (r, o) => fake.speak(r, o), captionBatch: (r, o) => fake.captionBatch(r, o),
      prefetchCaption: (request) => {
        prefetched.push(request.image.toString());
        if (request.image.toString() === 'c3') throw new Error('a prefetch that fails is only a lost head start');
      },
    };
    const core = new InferenceCore(pipelines, { maxPerUser: 50, registry: createMetricsRegistry(), maxBatch: 2 });
    core.submit(owner('a'), imagine('a cat'));
    const jobs = Array.from({ length: 7 }, (_, i) => core.submit(owner(`u${i}`), caption(`c${i}`)));
    await until(() => fake.calls.filter((c) => c.kind === 'captionBatch').length === 1, 'the first batch');
    await tick();
    // c0 and c1 run; the four behind them (two batches of two) decode ahead; c6 waits for its turn
    expect(fake.calls.find((c) => c.kind === 'captionBatch')!.labels).toEqual(['c0', 'c1']);
    expect(prefetched).toEqual(['c2', 'c3', 'c4', 'c5']);
    await runAll(fake, () => core.stats().queued.caption + core.stats().running.caption === 0);
    expect(prefetched).toEqual(['c2', 'c3', 'c4', 'c5', 'c6']);
    await expect(Promise.all(jobs.map((j) => j.result))).resolves.toHaveLength(7);
  });

  it('caps a batch at maxBatch', async () => {
    const { fake, core } = setup({ maxBatch: 3 });
    for (let i = 0; i < 7; i++) core.submit(owner(`u${i}`), caption(`c${i}`));
    await runAll(fake, () => core.stats().queued.caption + core.stats().running.caption === 0);
    expect(fake.calls.map((c) => c.labels.length)).toEqual([3, 3, 1]);
  });

  it('fails only the job whose item came back as an error', async () => {
    const { fake, core } = setup();
    const jobs = ['ok-1', 'bad', 'ok-2'].map((l, i) => core.submit(owner(`u${i}`), caption(l)));
    await until(() => fake.calls.length === 1, 'the batch to start');
    fake.calls[0]!.resolve([captionResult('ok-1'), new PictalkError('input.unsupported', 'Expected a PNG, JPEG, WebP or GIF image'), captionResult('ok-2')]);
    await expect(jobs[0]!.result).resolves.toMatchObject({ caption: 'Caption of ok-1.' });
    expect((await errorOf(jobs[1]!.result)).code).toBe('input.unsupported');
    await expect(jobs[2]!.result).resolves.toMatchObject({ caption: 'Caption of ok-2.' });
  });

  it('fails every job of a batch with inference.failed when the batch call throws', async () => {
    const { fake, core } = setup();
    const jobs = ['x', 'y', 'z'].map((l, i) => core.submit(owner(`u${i}`), caption(l)));
    await until(() => fake.calls.length === 1, 'the batch to start');
    fake.calls[0]!.reject(new Error('ONNX session crashed'));
    for (const job of jobs) expect(await errorOf(job.result)).toMatchObject({ code: 'inference.failed', message: 'The caption job failed: ONNX session crashed' });
  });

  it('retries one by one when a batch throws an input error, so one bad image fails only its own job', async () => {
    const { fake, core } = setup();
    const jobs = ['good', 'broken', 'fine'].map((l, i) => core.submit(owner(`u${i}`), caption(l)));
    await until(() => fake.calls.length === 1, 'the batch to start');
    fake.calls[0]!.reject(new PictalkError('input.unsupported', 'Expected an image, got text'));
    await until(() => fake.calls.length === 2, 'the first retry');
    fake.calls[1]!.resolve();
    await until(() => fake.calls.length === 3, 'the second retry');
    fake.calls[2]!.reject(new PictalkError('input.unsupported', 'Expected an image, got text'));
    await until(() => fake.calls.length === 4, 'the third retry');
    fake.calls[3]!.resolve();
    expect(fake.calls.slice(1).map((c) => c.labels)).toEqual([['good'], ['broken'], ['fine']]);
    await expect(jobs[0]!.result).resolves.toMatchObject({ caption: 'Caption of good.' });
    expect((await errorOf(jobs[1]!.result)).code).toBe('input.unsupported');
    await expect(jobs[2]!.result).resolves.toMatchObject({ caption: 'Caption of fine.' });
  });

  it('keeps a batch running when one of its jobs is cancelled, and aborts it when all are', async () => {
    const { fake, core } = setup();
    const [a, b] = ['a', 'b'].map((l, i) => core.submit(owner(`u${i}`), caption(l))) as [JobHandle<'caption'>, JobHandle<'caption'>];
    await until(() => fake.calls.length === 1, 'the batch to start');
    const signal = fake.calls[0]!.options.signal!;
    a.cancel();
    expect(signal.aborted).toBe(false);
    b.cancel();
    expect(signal.aborted).toBe(true);
    expect((await errorOf(a.result)).code).toBe('job.cancelled');
    expect((await errorOf(b.result)).code).toBe('job.cancelled');
  });

  it('serves eight clients with fewer than half the caption calls per job that one client needs', async () => {
    // Throughput in calls, not seconds: a caption call costs about the same whatever its batch size, so jobs per call
    // is the throughput gain from batching (the benchmark measures it in seconds on the real model).
    const { fake, core } = setup({ maxPerUser: 8 });
    fake.autoMs = 5;
    const jobsPerCall = async (clients: number): Promise<{ ratio: number; sizes: number[] }> => {
      const before = fake.calls.length;
      let done = 0;
      await Promise.all(Array.from({ length: clients }, async (_, c) => {
        while (done < 32) { await core.submit(owner(`client-${c}`), caption(`c${c}`)).result; done++; }
      }));
      const sizes = fake.calls.slice(before).map((call) => call.labels.length);
      return { ratio: done / sizes.length, sizes };
    };
    const one = await jobsPerCall(1);
    const eight = await jobsPerCall(8);
    expect(one.ratio).toBe(1);
    expect(eight.ratio).toBeGreaterThan(2);
    // Clients that resubmit as soon as their result arrives share the next batch.
    expect(eight.sizes.reduce((a, b) => a + b, 0) / eight.sizes.length).toBeGreaterThan(6);
  });
});

describe('InferenceCore metrics and lifecycle', () => {
  it('records queue depth, wait and run times, jobs by outcome and failures by code', async () => {
    const { fake, core, registry } = setup();
    const ok1 = core.submit(owner('a'), imagine('ok1'));
    const ok2 = core.submit(owner('b'), imagine('ok2'));
    const bad = core.submit(owner('c'), imagine('bad'));
    const gone = core.submit(owner('d'), imagine('gone'));
    await until(() => fake.calls.length === 1, 'the first job');
    const depth = await registry.getSingleMetric('pictalk_queue_depth')!.get();
    expect(depth.values.find((v) => v.labels.kind === 'imagine')?.value).toBe(3);
    gone.cancel();
    fake.calls[0]!.resolve();
    await until(() => fake.calls.length === 2, 'the second job');
    fake.calls[1]!.resolve();
    await until(() => fake.calls.length === 3, 'the third job');
    fake.calls[2]!.reject(new Error('boom'));
    await Promise.allSettled([ok1.result, ok2.result, bad.result, gone.result]);

    const jobs = (await registry.getSingleMetric('pictalk_jobs_total')!.get()).values;
    const count = (outcome: string) => jobs.find((v) => v.labels.kind === 'imagine' && v.labels.outcome === outcome)?.value;
    expect([count('success'), count('failed'), count('cancelled')]).toEqual([2, 1, 1]);
    const failures = (await registry.getSingleMetric('pictalk_job_failures_total')!.get()).values;
    expect(failures.map((v) => [v.labels.code, v.value]).sort()).toEqual([['inference.failed', 1], ['job.cancelled', 1]]);
    const wait = (await registry.getSingleMetric('pictalk_job_wait_seconds')!.get()).values;
    expect(wait.find((v) => nameOf(v) === 'pictalk_job_wait_seconds_count' && v.labels.kind === 'imagine')?.value).toBe(3);
    const run = (await registry.getSingleMetric('pictalk_job_run_seconds')!.get()).values;
    expect(run.find((v) => nameOf(v) === 'pictalk_job_run_seconds_count' && v.labels.kind === 'imagine')?.value).toBe(3);
    const depthAfter = await registry.getSingleMetric('pictalk_queue_depth')!.get();
    expect(depthAfter.values.find((v) => v.labels.kind === 'imagine')?.value).toBe(0);
  });

  it('close() fails waiting jobs with a clear error, waits for running ones, then refuses new jobs', async () => {
    const { fake, core } = setup();
    const running = core.submit(owner('a'), imagine('running'));
    const waiting = core.submit(owner('b'), imagine('waiting'));
    await until(() => fake.calls.length === 1, 'the first job');
    let closed = false;
    const closing = core.close().then(() => { closed = true; });
    expect(await errorOf(waiting.result)).toMatchObject({ code: 'job.cancelled', details: { reason: 'shutdown' } });
    await sleep(20);
    expect(closed).toBe(false);
    fake.calls[0]!.resolve();
    await closing;
    await expect(running.result).resolves.toMatchObject({ kind: 'imagine' });
    expect(fake.calls.length).toBe(1);
    expect(() => core.submit(owner('c'), imagine('late'))).toThrow(expect.objectContaining({ code: 'queue.busy', details: { closed: true } }));
    expect(core.stats()).toMatchObject({ closed: true, queued: { imagine: 0 }, running: { imagine: 0 }, users: {} });
  });

  it('settles every accepted job under a random mix of results, failures, cancels and timeouts', async () => {
    const { fake, core } = setup({ maxPerUser: 100, maxQueued: 500, concurrency: { imagine: 2, caption: 2, speak: 1 } });
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const handles: JobHandle[] = [];
    for (let i = 0; i < 60; i++) {
      const kind = (['imagine', 'caption', 'speak'] as const)[Math.floor(random() * 3)]!;
      const input = kind === 'imagine' ? imagine(`j${i}`) : kind === 'caption' ? caption(`j${i}`) : { kind, request: { text: `j${i}` } };
      handles.push(core.submit(owner(`u${i % 5}`, `s${i % 2}`), input as never, { timeoutMs: random() < 0.1 ? 5 : 5000 }));
    }
    let handled = 0;
    for (let round = 0; round < 400 && core.stats().queued.imagine + core.stats().queued.caption + core.stats().queued.speak
      + core.stats().running.imagine + core.stats().running.caption + core.stats().running.speak > 0; round++) {
      if (random() < 0.1) handles[Math.floor(random() * handles.length)]!.cancel();
      while (handled < fake.calls.length) {
        const call = fake.calls[handled++]!;
        const r = random();
        if (r < 0.15) call.reject(new Error('random failure'));
        else if (r < 0.2) setTimeout(() => call.resolve(), 10);
        else call.resolve();
      }
      await sleep(1);
    }
    const outcomes = await Promise.allSettled(handles.map((h) => h.result));
    expect(outcomes).toHaveLength(60);
    for (const o of outcomes) if (o.status === 'rejected') expect(isPictalkError(o.reason)).toBe(true);
    expect(core.stats().users).toEqual({});
    await core.close();
  });
});
