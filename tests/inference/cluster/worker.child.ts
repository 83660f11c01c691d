/**
 * Run with `node --import tsx`: a cluster worker in its own process over steered pipelines, for the tests that kill
 * one with SIGKILL. Argv: redis URL, key prefix, lock ms, step ms, steps. Prints `ready` once it takes jobs, and
 * `start <id> <attempt>` for each job it starts.
 */
import { ClusterWorker } from '../../../inference/cluster/worker.js';
import { createInferenceMetrics, createMetricsRegistry } from '../../../inference/metrics.js';
import { steeredPipelines } from '../../bot/port.contract.js';

const [url = '', prefix = '', lockMs, stepMs, steps] = process.argv.slice(2);
const worker = await ClusterWorker.open(steeredPipelines({ stepMs: Number(stepMs), steps: Number(steps) }), {
  redisUrl: url, prefix, lockMs: Number(lockMs), concurrency: { imagine: 1 },
  metrics: createInferenceMetrics(createMetricsRegistry()),
  onStart: (id, attempt) => console.log(`start ${id} ${attempt}`),
  log: { warn: () => undefined },
});
console.log('ready');
process.on('SIGTERM', () => { worker.close().then(() => process.exit(0), () => process.exit(1)); });
