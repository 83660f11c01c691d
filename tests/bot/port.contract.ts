/**
 * The InferencePort contract: what bot/ relies on from the queue, whichever implements it. port.core.test.ts runs it
 * on the in-process core (adapters/core.port.ts); a queue across processes runs the same suite on its own port.
 *
 * `open` gives a port over pipelines that the suite steers: each imagine job runs `steps` steps of `stepMs`, and
 * fails with `inference.failed` when its prompt is "fail"; at most `maxQueued` jobs wait, `maxPerUser` per user;
 * one imagine job runs at a time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../helpers/until.js';
import { PictalkError, isPictalkError } from '../../common/errors.js';
import type { InferencePort, JobHandle } from '../../bot/ports.js';
import type { InferencePipelines } from '../../inference/core.js';
import type { JobOwner } from '../../inference/types.js';

export interface PortOptions {
  stepMs: number;
  steps: number;
  maxQueued: number;
  maxPerUser: number;
}

export interface PortUnderTest {
  port: InferencePort;
  close(): Promise<void>;
}

/** Fake pipelines: an imagine job steps with abort checks between steps, as the real pipeline does. */
export function steeredPipelines(options: Pick<PortOptions, 'stepMs' | 'steps'>): InferencePipelines {
  return {
    async imagine(request, { signal, onProgress }) {
      if (request.prompt === 'fail') throw new PictalkError('inference.failed', 'The model failed on purpose', { prompt: 'fail' });
      for (let step = 1; step <= options.steps; step += 1) {
        await sleep(options.stepMs);
        if (signal?.aborted) throw new PictalkError('job.cancelled', 'aborted between steps');
        onProgress?.({ stage: 'denoise', step, total: options.steps });
      }
      return {
        kind: 'imagine', images: [{ png: Buffer.from(`png:${request.prompt}`), seed: request.seed ?? 0, width: 64, height: 64 }],
        settings: { prompt: request.prompt, negativePrompt: '', seed: request.seed ?? 0, steps: options.steps, guidance: 3, width: 64, height: 64, scheduler: 'ddim', count: 1, candidates: 1 },
        model: { name: 'fake', hash: '0' }, timingsMs: {},
      };
    },
    async captionBatch(requests) {
      return requests.map((r) => ({ kind: 'caption' as const, caption: `A ${r.image.toString()}.`, tokens: [], score: 0, timingsMs: {} }));
    },
    async speak(request) {
      return { kind: 'speak', ogg: Buffer.from(request.text), durationSecs: 1, waveform: new Uint8Array(256), timingsMs: {} };
    },
  };
}

const owner = (userId: string, spaceId = 's1'): JobOwner => ({ userId, spaceId });
const imagine = (prompt: string) => ({ kind: 'imagine' as const, request: { prompt, seed: 1 } });

const until = (done: () => boolean): Promise<void> => waitFor(done, 5000, 2);

export function portContract(name: string, open: (options: PortOptions) => Promise<PortUnderTest>): void {
  describe(`${name}: the InferencePort contract`, () => {
    let t: PortUnderTest | undefined;
    afterEach(async () => { await t?.close(); t = undefined; });
    const start = async (options: Partial<PortOptions> = {}): Promise<InferencePort> => {
      t = await open({ stepMs: 5, steps: 3, maxQueued: 50, maxPerUser: 20, ...options });
      return t.port;
    };

    it('reports a job from its place in line to its typed result, with start and progress events', async () => {
      const port = await start();
      const events: string[] = [];
      const first = await port.submit(owner('a'), imagine('one'), { jobId: 'job-1' });
      const second = await port.submit(owner('b'), imagine('two'), { jobId: 'job-2' });
      expect(second.id).toBe('job-2');
      expect(await second.position()).toBeGreaterThanOrEqual(1);
      second.on('position', (p) => events.push(`position ${p}`));
      second.on('start', () => events.push('start'));
      second.on('progress', (p) => events.push(`${p.stage} ${p.step}/${p.total}`));
      await first.result;
      const result = await second.result;
      expect(result).toMatchObject({ kind: 'imagine', images: [{ png: Buffer.from('png:two') }] });
      expect((result as { images: Array<{ png: Buffer }> }).images[0]!.png).toBeInstanceOf(Buffer);
      expect(events).toContain('start');
      expect(events.slice(events.indexOf('start'))).toEqual(['start', 'denoise 1/3', 'denoise 2/3', 'denoise 3/3']);
      expect(await second.position()).toBe(-1);
    });

    it('refuses a job when the line is full, and when the user has too many, with queue.busy', async () => {
      const port = await start({ maxQueued: 2, maxPerUser: 2, stepMs: 50 });
      const held: JobHandle[] = [];
      held.push(await port.submit(owner('a'), imagine('1')));
      let started = false;
      held[0]!.on('start', () => { started = true; });
      held.push(await port.submit(owner('a'), imagine('2')));
      // user a has two jobs in: a third is refused
      await expect(port.submit(owner('a'), imagine('3'))).rejects.toMatchObject({ code: 'queue.busy' });
      await until(() => started);
      // one running, one waiting: one more may wait, then the line is full for everyone
      held.push(await port.submit(owner('b'), imagine('4')));
      const refused = await port.submit(owner('c'), imagine('5')).then(() => undefined, (error: unknown) => error);
      expect(isPictalkError(refused) && refused.code === 'queue.busy' && refused.retryable).toBe(true);
      await Promise.all(held.map((h) => h.cancel()));
    });

    it('cancels a waiting job by its handle and a running one by its id; the result says cancelled', async () => {
      const port = await start({ stepMs: 20, steps: 5 });
      const running = await port.submit(owner('a'), imagine('run'), { jobId: 'run-1' });
      let started = false;
      running.on('start', () => { started = true; });
      const waiting = await port.submit(owner('b'), imagine('wait'), { jobId: 'wait-1' });
      expect(await waiting.position()).toBeGreaterThanOrEqual(1);
      expect(await waiting.cancel()).toBe(true);
      await expect(waiting.result).rejects.toMatchObject({ code: 'job.cancelled' });
      await until(() => started);
      expect(await running.position()).toBe(0);
      expect(await port.cancel('run-1')).toBe(true);
      await expect(running.result).rejects.toMatchObject({ code: 'job.cancelled' });
      expect(await port.cancel('run-1')).toBe(false);
      expect(await port.cancel('no-such-job')).toBe(false);
      expect(await waiting.cancel()).toBe(false);
    });

    it('stops a cancelled running job between steps, not after the whole run', async () => {
      const port = await start({ stepMs: 30, steps: 20 });
      const job = await port.submit(owner('a'), imagine('long'), { jobId: 'long-1' });
      const steps: number[] = [];
      job.on('progress', (p) => steps.push(p.step));
      await until(() => steps.length >= 2);
      const at = Date.now();
      await port.cancel('long-1');
      await expect(job.result).rejects.toMatchObject({ code: 'job.cancelled' });
      expect(Date.now() - at).toBeLessThan(1000);
      await sleep(100);
      expect(Math.max(...steps)).toBeLessThan(20);
    });

    it('gives the next start to a user who waited behind another user\'s many jobs', async () => {
      const port = await start({ stepMs: 2, steps: 1 });
      const starts: string[] = [];
      const jobs: JobHandle[] = [];
      for (let i = 0; i < 10; i += 1) jobs.push(await port.submit(owner('a'), imagine(`a${i}`), { jobId: `a${i}` }));
      jobs.push(await port.submit(owner('b'), imagine('b0'), { jobId: 'b0' }));
      for (const job of jobs) job.on('start', () => starts.push(job.id));
      await Promise.all(jobs.map((j) => j.result));
      expect(starts.indexOf('b0')).toBeLessThanOrEqual(2);
    });

    it('fails a job the model fails with its error, in a form that survives JSON', async () => {
      const port = await start();
      const job = await port.submit(owner('a'), imagine('fail'));
      const error = await job.result.then(() => undefined, (e: unknown) => e);
      expect(isPictalkError(error)).toBe(true);
      const again = PictalkError.fromJSON(JSON.parse(JSON.stringify(error)));
      expect(again).toMatchObject({ code: 'inference.failed', message: 'The model failed on purpose', details: { prompt: 'fail' } });
    });

    it('counts waiting and running jobs per kind', async () => {
      const port = await start({ stepMs: 30, steps: 3 });
      const jobs = [await port.submit(owner('a'), imagine('1')), await port.submit(owner('b'), imagine('2'))];
      await sleep(10);
      const stats = await port.stats!();
      expect(stats.queued.imagine + stats.running.imagine).toBe(2);
      expect(stats.running.imagine).toBeLessThanOrEqual(1);
      await Promise.all(jobs.map((j) => j.result));
      expect(await port.stats!()).toMatchObject({ queued: { imagine: 0 }, running: { imagine: 0 } });
    });
  });
}
