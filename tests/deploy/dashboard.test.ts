/**
 * The provisioned Grafana dashboard and the Prometheus metrics the bot exports must agree: a renamed metric would
 * leave a panel silently empty.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClusterMetrics, createEndpointMetrics, createInferenceMetrics, createMetricsRegistry } from '../../inference/metrics.js';

const dashboard = JSON.parse(readFileSync(join(process.cwd(), 'deploy/grafana/dashboards/pictalk.json'), 'utf8')) as {
  panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
};

test('every metric a dashboard panel queries is one the bot exports', async () => {
  const registry = createMetricsRegistry({ defaultMetrics: true });
  createInferenceMetrics(registry);
  createEndpointMetrics(registry, 'discord');
  // a cluster worker's: the queue as Redis holds it and the worker's own counters
  const none = { imagine: 0, caption: 0, speak: 0 };
  createClusterMetrics(registry, { stats: async () => ({ queued: none, running: none }), workerCounts: () => ({ started: 0, retried: 0, stalled: 0, failedStalled: 0 }) });
  const exported = new Set(registry.getMetricsAsArray().map((metric) => metric.name));
  const queried = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      for (const [name] of target.expr.matchAll(/\b(?:pictalk|process|nodejs)_[a-z0-9_]+/g)) {
        queried.add(name.replace(/_(bucket|sum|count)$/, ''));
      }
    }
  }
  expect(queried.size).toBeGreaterThan(5);
  const missing = [...queried].filter((name) => !exported.has(name));
  expect(missing).toEqual([]);
});
