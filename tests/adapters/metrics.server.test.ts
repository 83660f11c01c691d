import { createMetricsRegistry, createInferenceMetrics } from '../../inference/metrics.js';
import { startMetricsServer } from '../../adapters/metrics.server.js';

describe('the operator endpoints', () => {
  it('serve Prometheus metrics, a health check that turns 503 when stopping, and 404 elsewhere', async () => {
    const registry = createMetricsRegistry();
    createInferenceMetrics(registry).setQueueDepth('imagine', 3);
    const server = await startMetricsServer({ port: 0, host: '127.0.0.1', registry, health: () => ({ queued: 3 }) });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/pictalk_queue_depth\{kind="imagine"\} 3/);
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok', queued: 3 });
      server.setReady(false);
      expect((await fetch(`${base}/healthz`)).status).toBe(503);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });
});
