import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { createProbeServer, listenProbes } from './probes';

describe('the monitoring listener', () => {
  const registry = new Registry();
  new Counter({ name: 'aviary_probe_test_total', help: 'test', registers: [registry] }).inc();
  let up = true;
  const server = createProbeServer({ registry, readiness: [{ name: 'nats', ready: () => up }] });
  let base = '';
  beforeAll(async () => {
    base = `http://127.0.0.1:${await listenProbes(server, '127.0.0.1', 0)}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('answers /healthz, /readyz (503 when a check fails) and /metrics', async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    up = false;
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'not ready', checks: { nats: false } });
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('aviary_probe_test_total 1');
  });

  it('serves nothing else: no admin routes, no request bodies', async () => {
    expect((await fetch(`${base}/api/v1/config/vs`)).status).toBe(404);
    expect((await fetch(`${base}/docs`)).status).toBe(404);
    const post = await fetch(`${base}/api/v1/inject/preview`, { method: 'POST', body: 'kind: Pod' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});
