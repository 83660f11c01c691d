/**
 * The cluster queue beyond the port contract: fairness with two busy workers, cancel from another front, caption
 * batching on a worker, a worker killed with SIGKILL mid-job (run again, one result; past the retry limit a clear
 * failure), and Redis stopped and started again. Real Redis, real worker processes for the kills.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ClusterClient, type ClusterHandle } from '../../../inference/cluster/client.js';
import { ClusterWorker } from '../../../inference/cluster/worker.js';
import type { InferencePipelines } from '../../../inference/core.js';
import { createInferenceMetrics, createMetricsRegistry } from '../../../inference/metrics.js';
import type { CaptionRequest, JobOwner } from '../../../inference/types.js';
import { steeredPipelines } from '../../bot/port.contract.js';
import { redisCommand, startRedis, type RedisServer } from '../../helpers/redis.server.js';
import { waitFor as until } from '../../helpers/until.js';

let redis: RedisServer;
beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => { await redis?.stop(); });

const quiet = { warn: () => undefined };
const owner = (userId: string, spaceId = 's1'): JobOwner => ({ userId, spaceId });
const imagine = (prompt: string) => ({ kind: 'imagine' as const, request: { prompt, seed: 1 } });
let n = 0;
const prefix = (): string => `cluster${++n}`;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => { for (const close of closers.splice(0).reverse()) await close().catch(() => undefined); });

async function worker(p: string, pipelines: InferencePipelines, options: { lockMs?: number; onStart?: (id: string, attempt: number) => void; imagine?: number } = {}): Promise<ClusterWorker> {
  const w = await ClusterWorker.open(pipelines, {
    redisUrl: redis.url, prefix: p, lockMs: options.lockMs ?? 2000, concurrency: { imagine: options.imagine ?? 1 }, log: quiet,
    metrics: createInferenceMetrics(createMetricsRegistry()), ...(options.onStart ? { onStart: options.onStart } : {}),
  });
  closers.push(() => w.close());
  return w;
}

async function client(p: string, options: { maxQueued?: number; maxPerUser?: number } = {}): Promise<ClusterClient> {
  const c = await ClusterClient.open({ redisUrl: redis.url, prefix: p, maxQueued: 100, maxPerUser: 50, log: quiet, ...options });
  closers.push(() => c.close());
  return c;
}

/** A worker in its own process, to be killed with SIGKILL. */
async function childWorker(p: string, lockMs: number, stepMs: number, steps: number): Promise<{ child: ChildProcess; starts: string[] }> {
  // it ends with this test's process, whatever ends it (scripts/exit-with-owner.mjs)
  const child = spawn(process.execPath, ['--import', './scripts/exit-with-owner.mjs', '--import', 'tsx', 'tests/inference/cluster/worker.child.ts',
    redis.url, p, String(lockMs), String(stepMs), String(steps)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  closers.push(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await new Promise((r) => child.once('exit', r)); } });
  const starts: string[] = [];
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the worker exited with ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') resolve();
        else if (line.startsWith('start ')) starts.push(line.slice(6));
      }
    });
  });
  return { child, starts };
}

describe('the cluster queue', () => {
  it('starts the one job of a user who waited behind 40 of another user\'s among the next two, with two workers busy', async () => {
    const p = prefix();
    const starts: string[] = [];
    const record = (id: string): void => { starts.push(id); };
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const quick = steeredPipelines({ stepMs: 2, steps: 1 });
    // the first two jobs hold both workers until every job is in line
    const pipelines: InferencePipelines = { ...quick, imagine: async (request, options) => { if (request.prompt === 'hold') await held; return quick.imagine(request, options); } };
    await worker(p, pipelines, { onStart: record });
    await worker(p, pipelines, { onStart: record });
    const front = await client(p);
    const other = await client(p);
    // both workers busy
    const busy = [await front.submit(owner('z', 's0'), imagine('hold'), { jobId: 'z1' }), await front.submit(owner('y', 's0'), imagine('hold'), { jobId: 'y1' })];
    await until(() => starts.length === 2);
    const jobs: ClusterHandle[] = [...busy];
    for (let i = 0; i < 40; i += 1) jobs.push(await front.submit(owner('a'), imagine(`a${i}`), { jobId: `a${i}` }));
    jobs.push(await other.submit(owner('b'), imagine('b0'), { jobId: 'b0' }));   // from another front
    expect(starts).toHaveLength(2);
    release();
    await Promise.all(jobs.map((j) => j.result));
    const next = starts.slice(2);
    expect(next.indexOf('b0')).toBeGreaterThanOrEqual(0);
    expect(next.indexOf('b0')).toBeLessThanOrEqual(1);
    expect(new Set(starts).size).toBe(43);   // every job started once
  });

  it('carries a job\'s live previews from the worker to the front with its progress', async () => {
    const p = prefix();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 250, 255]);
    const base = steeredPipelines({ stepMs: 5, steps: 3 });
    await worker(p, {
      ...base,
      async imagine(request, run) {
        run.onProgress?.({ stage: 'denoise', step: 1, total: 3, preview: { png, width: 128, height: 96 } });
        return base.imagine(request, run);
      },
    });
    const front = await client(p);
    const job = await front.submit(owner('a'), imagine('previewed'));
    const seen: Array<{ step: number; preview?: { png: Buffer; width: number; height: number } }> = [];
    job.on('progress', (pr) => seen.push(pr));
    await job.result;
    const previewed = seen.filter((pr) => pr.preview);
    expect(previewed).toHaveLength(1);
    expect(previewed[0]!.preview!.png.equals(png)).toBe(true);
    expect(previewed[0]!.preview).toMatchObject({ width: 128, height: 96 });
    expect(seen.filter((pr) => !pr.preview).map((pr) => pr.step)).toEqual([1, 2, 3]);
  });

  it('cancels from another front a job that a worker runs, within a second, between steps', async () => {
    const p = prefix();
    await worker(p, steeredPipelines({ stepMs: 50, steps: 100 }));
    const front = await client(p);
    const other = await client(p);
    const job = await front.submit(owner('a'), imagine('long'), { jobId: 'long' });
    const steps: number[] = [];
    job.on('progress', (pr) => steps.push(pr.step));
    await until(() => steps.length >= 2);
    const at = Date.now();
    expect(await other.cancel('long')).toBe(true);
    await expect(job.result).rejects.toMatchObject({ code: 'job.cancelled' });
    expect(Date.now() - at).toBeLessThan(1000);
    const stepsAtCancel = Math.max(...steps);
    await sleep(300);
    expect(Math.max(...steps)).toBeLessThanOrEqual(stepsAtCancel + 1);
    expect(await front.stats()).toMatchObject({ queued: { imagine: 0 }, running: { imagine: 0 } });
  });

  it('batches caption jobs that wait at the same time on one worker', async () => {
    const p = prefix();
    const batches: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const pipelines: InferencePipelines = {
      ...steeredPipelines({ stepMs: 1, steps: 1 }),
      async captionBatch(requests: CaptionRequest[]) {
        batches.push(requests.length);
        if (batches.length === 1) await gate;
        return requests.map((r) => ({ kind: 'caption' as const, caption: `A ${r.image.toString()}.`, tokens: [], score: 0, timingsMs: {} }));
      },
    };
    await worker(p, pipelines);
    const front = await client(p);
    const first = await front.submit(owner('u0'), { kind: 'caption', request: { image: Buffer.from('first') } });
    await until(() => batches.length === 1);
    const rest = [];
    for (let i = 1; i <= 6; i += 1) rest.push(await front.submit(owner(`u${i}`), { kind: 'caption', request: { image: Buffer.from(`img${i}`) } }));
    await sleep(100);
    release();
    const results = await Promise.all([first, ...rest].map((j) => j.result));
    expect(results.map((r) => (r as { caption: string }).caption)).toEqual(['A first.', ...[1, 2, 3, 4, 5, 6].map((i) => `A img${i}.`)]);
    expect(batches[0]).toBe(1);
    expect(Math.max(...batches.slice(1))).toBeGreaterThan(1);
  });

  it('runs again on another worker a job whose worker was killed with SIGKILL, with one result', async () => {
    const p = prefix();
    const doomed = await childWorker(p, 1000, 40, 50);
    const front = await client(p);
    const job = await front.submit(owner('a'), imagine('survivor'), { jobId: 'survivor' });
    const starts: number[] = [];
    job.on('start', () => starts.push(Date.now()));
    await until(() => doomed.starts.length === 1);
    await sleep(200);
    doomed.child.kill('SIGKILL');
    const killedAt = Date.now();
    const attempts: number[] = [];
    await worker(p, steeredPipelines({ stepMs: 5, steps: 3 }), { lockMs: 1000, onStart: (_id, attempt) => attempts.push(attempt) });
    const result = await job.result;
    expect(result).toMatchObject({ kind: 'imagine', images: [{ png: Buffer.from('png:survivor') }] });
    expect(attempts).toEqual([2]);
    expect(Date.now() - killedAt).toBeLessThan(5000);      // noticed after about the lock time
    expect(await front.stats()).toMatchObject({ queued: { imagine: 0 }, running: { imagine: 0 } });
    expect(await redisCommand(redis.port, 'HGET', `${p}:job:survivor`, 'outcome')).toBe('ok');
  });

  it('fails with a clear message a job whose workers were killed twice', async () => {
    const p = prefix();
    const front = await client(p);
    const first = await childWorker(p, 800, 50, 100);
    const job = await front.submit(owner('a'), imagine('cursed'), { jobId: 'cursed' });
    await until(() => first.starts.length === 1);
    first.child.kill('SIGKILL');
    const second = await childWorker(p, 800, 50, 100);
    await until(() => second.starts.length === 1, 10_000);
    expect(second.starts[0]).toBe('cursed 2');
    second.child.kill('SIGKILL');
    await worker(p, steeredPipelines({ stepMs: 5, steps: 2 }), { lockMs: 800 });  // it notices the second stall
    const error = await job.result.then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'inference.failed', message: expect.stringContaining('interrupted twice') });
    expect(await front.stats()).toMatchObject({ queued: { imagine: 0 }, running: { imagine: 0 } });
  }, 30_000);

  it('answers busy while Redis is down for 10 s, crashes nothing, and resumes waiting jobs after Redis is back', async () => {
    const p = prefix();
    const starts: string[] = [];
    await worker(p, steeredPipelines({ stepMs: 20, steps: 10 }), { onStart: (id) => starts.push(id) });
    const front = await client(p);
    const running = await front.submit(owner('a'), imagine('before'), { jobId: 'before' });
    const waiting = await front.submit(owner('b'), imagine('waiting'), { jobId: 'waiting' });
    await until(() => starts.length === 1);
    await redis.halt();
    const at = Date.now();
    await expect(front.submit(owner('c'), imagine('during'))).rejects.toMatchObject({ code: 'queue.busy', retryable: true });
    expect(Date.now() - at).toBeLessThan(2500);         // within a platform's three-second ack deadline
    await sleep(5000);
    const late = Date.now();
    await expect(front.submit(owner('d'), imagine('still during'))).rejects.toMatchObject({ code: 'queue.busy' });
    expect(Date.now() - late).toBeLessThan(2500);
    await sleep(10_000 - (Date.now() - at));
    await redis.start();
    const results = await Promise.all([running.result, waiting.result]);
    expect(results.map((r) => r.kind)).toEqual(['imagine', 'imagine']);
    const after = await front.submit(owner('c'), imagine('after'));
    await expect(after.result).resolves.toMatchObject({ kind: 'imagine' });
    expect(await front.stats()).toMatchObject({ queued: { imagine: 0 }, running: { imagine: 0 } });
  }, 45_000);
});

describe('follow leases', () => {
  const holder = (p: string, id: string): Promise<unknown> => redisCommand(redis.port, 'GET', `${p}:follow:${id}`);

  it('takes back a lapsed lease, leaves one another front claimed meanwhile to it, and never claims a job it follows itself', async () => {
    const p = prefix();
    const warned: Array<Record<string, unknown> | undefined> = [];
    const a = await ClusterClient.open({ redisUrl: redis.url, prefix: p, followMs: 600, log: { warn: (_message, fields) => { warned.push(fields); } } });
    closers.push(() => a.close());
    const b = await client(p);
    // no worker: the jobs wait, unsettled, so any front could follow them
    await a.submit(owner('u1'), imagine('kept'), { jobId: 'kept' });
    await a.submit(owner('u1'), imagine('taken'), { jobId: 'taken' });
    expect(await holder(p, 'kept')).toBe(a.frontId);

    // both leases lapse (Redis away, a stalled process): this front does not claim its own job back through the sweep
    await redisCommand(redis.port, 'DEL', `${p}:follow:kept`, `${p}:follow:taken`);
    expect(await a.claim(['kept', 'taken'])).toEqual([]);
    // another front claims one of them before this front renews
    expect(await b.claim(['taken'])).toEqual(['taken']);
    await sleep(500);                                         // a renewal (every 200 ms) or two
    expect(await holder(p, 'kept')).toBe(a.frontId);          // taken back: nobody else had it
    expect(await holder(p, 'taken')).toBe(b.frontId);         // left to the front that claimed it, not overwritten
    expect(warned).toEqual([{ jobId: 'taken' }]);
    // this front's release touches only its own leases: its own becomes the mark of an answered job, which no front claims
    a.release('taken');
    a.release('kept');
    await sleep(100);
    expect(await holder(p, 'taken')).toBe(b.frontId);
    expect(await holder(p, 'kept')).toBe(`answered:${a.frontId}`);
    expect(await b.claim(['kept'])).toEqual([]);
    // a front stopping lets go of what it follows: another front can claim it at once
    await a.submit(owner('u1'), imagine('let go'), { jobId: 'let-go' });
    await a.letGo(0);
    expect(await holder(p, 'let-go')).toBeNull();
    expect(await b.claim(['let-go'])).toEqual(['let-go']);
  });

  it('sends a job\'s events to the front that follows it, not to every front, and to the front that takes it over', async () => {
    const p = prefix();
    const a = await client(p);
    const b = await client(p);
    // what reaches each front: a subscriber of its channel and of the channel for all
    const heard = { a: [] as string[], b: [] as string[] };
    for (const [name, front] of [['a', a], ['b', b]] as const) {
      const sub = new Redis(redis.url);
      closers.push(() => sub.quit());
      sub.on('message', (_channel: string, message: string) => {
        const event = JSON.parse(message) as { e: string; id?: string };
        if (event.id) heard[name].push(`${event.e} ${event.id}`);
      });
      await sub.subscribe(`${p}:events`, `${p}:events:${front.frontId}`);
    }
    // 1.8 s a job: the takeover below comes well within it, and the worker asks again for the job's front after 1 s
    await worker(p, steeredPipelines({ stepMs: 60, steps: 30 }));
    const mine = await a.submit(owner('u1'), imagine('followed by a'), { jobId: 'of-a' });
    let progress = 0;
    mine.on('progress', () => { progress += 1; });
    await mine.result;
    await sleep(100);
    expect(progress).toBeGreaterThan(0);
    expect(heard.a).toEqual(expect.arrayContaining(['start of-a', 'progress of-a', 'settled of-a']));
    expect(heard.b).toEqual([]);

    // a job whose front stopped: from the claim on, its events go to the front that took it over (its progress from
    // the worker's next look at the job's front)
    await a.submit(owner('u1'), imagine('taken over by b'), { jobId: 'to-b' });
    await a.letGo(0);
    expect(await b.claim(['to-b'])).toEqual(['to-b']);
    const followed = (await b.attach('to-b'))!;
    await followed.result;
    await sleep(100);
    expect(heard.b).toContain('settled to-b');
    expect(heard.b).toContain('progress to-b');
    expect(heard.a.filter((line) => line.startsWith('settled to-b'))).toEqual([]);
  });
});
