/**
 * Vary on the real core and the builtin text-to-image model: when the front that drew a picture no longer holds it
 * (a restart, another front of a cluster), the picture is redrawn from the job's stored seed and settings and is
 * the picture that was posted.
 */
import { join } from 'node:path';
import { corePort } from '../../adapters/core.port.js';
import { Bot } from '../../bot/bot.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import { InferenceCore, type InferencePipelines } from '../../inference/core.js';
import { createMetricsRegistry } from '../../inference/metrics.js';
import { loadTextToImage, type TextToImage } from '../../inference/text-to-image.pipeline.js';
import type { ImagineRequest } from '../../inference/types.js';
import { ManualClock, RecordingConversation, request, silentLogger } from './helpers.js';

const BUILTIN = join(process.cwd(), 'models/builtin/text-to-image');

describe('Vary with the builtin model behind the real core', () => {
  let t2i: TextToImage;
  const seen: ImagineRequest[] = [];
  const pipelines = (): InferencePipelines => ({
    imagine: (req, options) => { seen.push(req); return t2i.imagine(req, options); },
    async captionBatch(requests) { return requests.map(() => ({ kind: 'caption' as const, caption: 'A picture.', tokens: [], score: 0, timingsMs: {} })); },
    async speak(req) { return { kind: 'speak', ogg: Buffer.from(req.text), durationSecs: 1, waveform: new Uint8Array(256), timingsMs: {} }; },
  });
  beforeAll(async () => { t2i = await loadTextToImage(BUILTIN); }, 30_000);
  afterAll(async () => { await t2i.dispose(); });

  it('redraws the posted picture from the stored settings on a front that never saw it, and varies it', async () => {
    const store = new SqliteStore(':memory:');
    const cores = [new InferenceCore(pipelines(), { registry: createMetricsRegistry() }), new InferenceCore(pipelines(), { registry: createMetricsRegistry() })];
    const [first, second] = cores.map((core, i) => new Bot({
      store, core: corePort(core), clock: new ManualClock(), logger: silentLogger, randomSeed: () => 500 + i,
    }));
    try {
      const drawn = new RecordingConversation();
      await first!.handle(request({ name: 'imagine', options: { prompt: 'a red circle to the left of a blue square', count: 2, seed: 77 } }), drawn);
      const posted = drawn.reply.images!;
      expect(posted).toHaveLength(2);

      const varied = new RecordingConversation();
      const before = seen.length;
      await second!.handle(request({ name: 'vary', jobId: drawn.reply.jobId!, index: 2 }), varied);
      expect(varied.reply.error).toBeUndefined();
      const [redraw, variation] = seen.slice(before);
      // the whole batch again (a batch's rows are not those of smaller batches on the int8 UNet), image 2 taken:
      // byte for byte the posted picture
      expect(redraw).toMatchObject({ seed: 77, count: 2, steps: 10, guidance: 3, scheduler: 'ddim', width: 64, height: 64 });
      expect(variation!.image!.equals(posted[1]!.png)).toBe(true);
      expect(variation).toMatchObject({ prompt: 'a red circle to the left of a blue square', seed: 501, count: 2, strength: 0.6 });
      expect(varied.reply.images).toHaveLength(2);
      expect(varied.reply.text).toContain('from a picture at strength 0.6');
    } finally {
      await Promise.all(cores.map((core) => core.close()));
    }
  }, 60_000);
});
