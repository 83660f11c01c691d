import { corePort } from '../../adapters/core.port.js';
import { InferenceCore } from '../../inference/core.js';
import { createMetricsRegistry } from '../../inference/metrics.js';
import { portContract, steeredPipelines } from './port.contract.js';

portContract('the in-process core', async (options) => {
  const core = new InferenceCore(steeredPipelines(options), {
    registry: createMetricsRegistry(), maxQueued: options.maxQueued, maxPerUser: options.maxPerUser, concurrency: { imagine: 1 },
  });
  return { port: corePort(core), close: () => core.close() };
});
