/**
 * An InferenceCore that runs captions only, over one captioner, for the measures of the caption ratio
 * (caption-ratio.ts, caption-lanes.ts, caption-concurrency.ts, caption-folders.ts). Any other kind of job is refused.
 */
import { InferenceCore, type InferenceCoreOptions } from '../../inference/core.js';
import type { ImageToText } from '../../inference/image-to-text.pipeline.js';
import { createInferenceMetrics, createMetricsRegistry } from '../../inference/metrics.js';

const refuse = async (): Promise<never> => { throw new Error('this measure runs captions only'); };

export function captionCore(captioner: ImageToText, options: Omit<InferenceCoreOptions, 'metrics'> = {}): InferenceCore {
  return new InferenceCore({
    imagine: refuse, speak: refuse,
    captionBatch: (requests, run) => captioner.captionBatch(requests, run),
    prefetchCaption: (request) => captioner.prefetch(request),
  }, { ...options, metrics: createInferenceMetrics(createMetricsRegistry()) });
}
