/**
 * The one wiring test: bot/ on the real InferenceCore (with fake pipelines, no models), so the port in bot/ports.ts
 * and the core's handle agree on positions, events, cancellation and errors.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InferenceCore, type InferencePipelines } from '../../inference/core.js';
import { PictalkError } from '../../common/errors.js';
import { createMetricsRegistry } from '../../inference/metrics.js';
import type { InferencePort } from '../../bot/ports.js';
import { Bot } from '../../bot/bot.js';
import { corePort } from '../../adapters/core.port.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import { actor, ManualClock, RecordingConversation, request, silentLogger } from './helpers.js';
import { until as waitUntil } from '../helpers/until.js';

function pipelines(delayMs = 5): InferencePipelines {
  return {
    async imagine(req, { signal, onProgress }) {
      for (let step = 1; step <= 3; step += 1) {
        await sleep(delayMs);
        if (signal?.aborted) throw new PictalkError('job.cancelled', 'aborted');
        onProgress?.({ stage: 'denoise', step, total: 3 });
      }
      const seed = req.seed ?? 0;
      const count = req.count ?? 1;
      return {
        kind: 'imagine', images: Array.from({ length: count }, (_, i) => ({ png: Buffer.from(`png:${req.prompt}`), seed: seed + i, width: 64, height: 64 })),
        settings: { prompt: req.prompt, negativePrompt: '', seed, steps: 3, guidance: 7.5, width: 64, height: 64, scheduler: 'pndm', count, candidates: 1 },
        model: { name: 'fake', hash: '0' }, timingsMs: {},
      };
    },
    async captionBatch(requests) {
      return requests.map((r) => ({ kind: 'caption' as const, caption: `A ${r.image.toString().slice(4)}.`, tokens: [], score: 0, timingsMs: {} }));
    },
    async speak(req) {
      return { kind: 'speak', ogg: Buffer.from(req.text), durationSecs: 1, waveform: new Uint8Array(256), timingsMs: {} };
    },
  };
}

describe('bot/ on the real InferenceCore', () => {
  it('is an InferencePort, and runs imagine with the unified-loop alt text', async () => {
    const core = new InferenceCore(pipelines(), { registry: createMetricsRegistry() });
    const port: InferencePort = corePort(core); // the type check is half of this test
    const bot = new Bot({ store: new SqliteStore(':memory:'), core: port, clock: new ManualClock(), logger: silentLogger });
    const conversation = new RecordingConversation();
    await bot.handle(request({ name: 'imagine', options: { prompt: 'green star', seed: 3 } }), conversation);
    expect(conversation.reply.images?.[0]?.altText).toBe('A green star.');
    const stages = conversation.statuses.map((s) => (s.state === 'queued' ? `queued ${s.position}` : `${s.stage} ${s.step}/${s.total}`));
    expect(stages[0]).toBe('queued 1');
    expect(stages).toContain('denoise 3/3');
    await core.close();
  });

  it('cancels a queued job through the core and refunds it', async () => {
    const core = new InferenceCore(pipelines(20), { registry: createMetricsRegistry(), concurrency: { imagine: 1 } });
    const store = new SqliteStore(':memory:');
    const bot = new Bot({ store, core: corePort(core), clock: new ManualClock(), logger: silentLogger });
    const running = new RecordingConversation();
    const waiting = new RecordingConversation();
    const until = (done: () => boolean): Promise<boolean> => waitUntil(done, 10_000, 1);
    const first = bot.handle(request({ name: 'imagine', options: { prompt: 'a' } }), running);
    await until(() => running.statuses.some((s) => s.state === 'running'));
    const second = bot.handle(request({ name: 'imagine', options: { prompt: 'b' } }), waiting);
    await until(() => waiting.statuses.length > 0);
    const jobId = waiting.statuses[0]!.jobId;
    // next in line behind the running first job, and still waiting when the cancel comes
    expect(waiting.statuses).toEqual([{ state: 'queued', jobId, position: 1 }]);
    const cancel = new RecordingConversation();
    await bot.handle(request({ name: 'cancel', jobId }, actor()), cancel);
    await Promise.all([first, second]);
    expect(waiting.reply.error?.code).toBe('job.cancelled');
    expect(running.reply.images).toHaveLength(1);
    expect((await store.usage('space1', 'u1', 'imagine', '2025-06-01'))).toEqual({ reserved: 0, charged: 1, refunded: 1 });
    await core.close();
  });
});
