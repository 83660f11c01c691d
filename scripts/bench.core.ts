/**
 * The builtin pipelines behind one in-process `InferenceCore`, as the bot wires them (imagine jobs side by side
 * sharing UNet runs, the captioner ranking candidates), for the benchmarks that need a whole core.
 */
import { coreConcurrency, loadSettings } from '../adapters/config.js';
import { InferenceCore } from '../inference/core.js';
import { loadImageToText } from '../inference/image-to-text.pipeline.js';
import { createMetricsRegistry } from '../inference/metrics.js';
import type { BackendOptions } from '../inference/onnx.backend.js';
import { loadTextToImage } from '../inference/text-to-image.pipeline.js';
import { createTextToSpeech } from '../inference/text-to-speech.pipeline.js';

export interface BenchCore {
  core: InferenceCore;
  /** Close the core (its running jobs end) and release the pipelines. */
  close(): Promise<void>;
}

/** `lanes`: the captioner's inference threads (its own default when absent; the cluster bench's one-thread processes: 1). */
export async function loadBenchCore(dirs: { t2iDir: string; captionerDir: string }, backend: BackendOptions, lanes?: number): Promise<BenchCore> {
  const captioner = await loadImageToText(dirs.captionerDir, { backend, lanes });
  const t2i = await loadTextToImage(dirs.t2iDir, { backend, scorer: captioner.scoreText });
  const speech = createTextToSpeech();
  await speech.load();
  const core = new InferenceCore({
    imagine: (request, run) => t2i.imagine(request, run),
    captionBatch: (requests, run) => captioner.captionBatch(requests, run),
    prefetchCaption: (request) => captioner.prefetch(request),
    speak: (request, run) => speech.speak(request, run),
  }, { registry: createMetricsRegistry(), maxPerUser: 100, concurrency: coreConcurrency(loadSettings({})) });
  return {
    core,
    async close() {
      await core.close();
      await Promise.all([t2i.dispose(), captioner.dispose(), speech.close()]);
    },
  };
}
