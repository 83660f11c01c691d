/**
 * The operator's HTTP endpoints: `/metrics` for Prometheus and `/healthz` for the container health check.
 * /healthz answers 200 while the process can take work, 503 once it is shutting down or when `health` says it cannot
 * (its role's dependencies do not answer: Redis, the database, models not loaded).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderMetrics, type MetricsRegistry } from '../inference/metrics.js';

export interface MetricsServer {
  port: number;
  setReady(ready: boolean): void;
  close(): Promise<void>;
}

export async function startMetricsServer(options: {
  port: number;
  registry: MetricsRegistry;
  /** Figures for /healthz; `healthy: false` makes it answer 503. */
  health?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  host?: string;
}): Promise<MetricsServer> {
  let ready = true;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      Promise.resolve(options.health?.() ?? {}).then(
        (figures) => {
          const ok = ready && figures.healthy !== false;
          res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
            .end(JSON.stringify({ status: !ready ? 'stopping' : ok ? 'ok' : 'unhealthy', ...figures }));
        },
        (error: unknown) => res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'unhealthy', error: String(error) })),
      );
      return;
    }
    if (path === '/metrics') {
      renderMetrics(options.registry).then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(error)}`),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    setReady: (value) => { ready = value; },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
