import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { readinessReport, type ReadinessCheck } from './app';

export interface ProbeServerOptions {
  readonly registry: Registry;
  readonly readiness: readonly ReadinessCheck[];
}

/**
 * The monitoring listener: `GET /healthz`, `/readyz` and `/metrics` only, for kubelet probes
 * and Prometheus on the pod address while the admin API (docs, config reads and writes,
 * preview) stays on loopback. It reads no request body and parses nothing a client sends
 * besides the request line, so it can be reachable by the whole cluster.
 */
export function createProbeServer(opts: ProbeServerOptions): Server {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return json(405, { code: 'METHOD_NOT_ALLOWED', message: 'the monitoring port serves GET /healthz, /readyz and /metrics only' });
    }
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      const { ok, checks } = readinessReport(opts.readiness);
      return json(ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', checks });
    }
    if (path === '/metrics') {
      try {
        const body = await opts.registry.metrics();
        res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body);
      } catch {
        json(500, { code: 'INTERNAL', message: 'metrics unavailable' });
      }
      return;
    }
    return json(404, { code: 'NOT_FOUND', message: `no route ${req.method} ${path}; the monitoring port serves /healthz, /readyz and /metrics` });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxHeadersCount = 50;
  return server;
}

/** Listens on host:port and returns the bound port. */
export async function listenProbes(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}
