/** The cluster's metrics for a front and/or worker process: figures from Redis and the worker's own counts. */
import { createClusterMetrics as register, type MetricsRegistry } from '../metrics.js';
import type { ClusterClient } from './client.js';
import type { ClusterWorker } from './worker.js';

export function createClusterMetrics(registry: MetricsRegistry, parts: { client?: ClusterClient | undefined; worker?: ClusterWorker | undefined }): void {
  const { client, worker } = parts;
  const stats = client ? () => client.stats() : () => worker!.stats();
  register(registry, { stats, ...(worker ? { workerCounts: () => ({ ...worker.counts }) } : {}) });
}
