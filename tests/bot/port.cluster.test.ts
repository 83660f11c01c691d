/**
 * The InferencePort contract on the cluster queue: a front's ClusterClient and a ClusterWorker over a private Redis,
 * each test under its own key prefix.
 */
import type { InferencePort } from '../../bot/ports.js';
import { ClusterClient } from '../../inference/cluster/client.js';
import { ClusterWorker } from '../../inference/cluster/worker.js';
import { createInferenceMetrics, createMetricsRegistry } from '../../inference/metrics.js';
import { startRedis, type RedisServer } from '../helpers/redis.server.js';
import { portContract, steeredPipelines } from './port.contract.js';

let redis: RedisServer;
beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => { await redis?.stop(); });

let n = 0;
portContract('the cluster queue (BullMQ on Redis)', async (options) => {
  const prefix = `contract${++n}`;
  const worker = await ClusterWorker.open(steeredPipelines(options), {
    redisUrl: redis.url, prefix, lockMs: 2000, concurrency: { imagine: 1 },
    metrics: createInferenceMetrics(createMetricsRegistry()),
  });
  const client = await ClusterClient.open({ redisUrl: redis.url, prefix, maxQueued: options.maxQueued, maxPerUser: options.maxPerUser });
  const port: InferencePort = client;
  return { port, close: async () => { await client.close(); await worker.close(); } };
});
