import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RoutingTable, seededRng } from '../domain';
import { Proxy, type ProxyRequestRecord } from './proxy';
import { faultFilter, hcm, httpChain, listener, rateLimit, rateLimitFilter, rbacFilter, route, routeConfig, staticCluster, toCluster, types, vhost, weighted } from '../testing/fixtures';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Backend {
  port: number;
  server: Server;
  hits: number;
  lastHeaders: IncomingMessage['headers'];
  lastUrl: string;
}

const backends: Backend[] = [];

async function backend(name: string, handler?: Handler): Promise<Backend> {
  const b: Backend = { port: 0, server: undefined as unknown as Server, hits: 0, lastHeaders: {}, lastUrl: '' };
  b.server = createServer((req, res) => {
    b.hits++;
    b.lastHeaders = req.headers;
    b.lastUrl = req.url ?? '';
    if (handler) return handler(req, res);
    req.resume();
    req.on('end', () => {
      res.setHeader('x-backend', name);
      res.end(name);
    });
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = (b.server.address() as AddressInfo).port;
  backends.push(b);
  return b;
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { host: 'svc.local', ...headers }, agent: keepAlive }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

import { Agent } from 'node:http';
const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

let proxy: Proxy;
let port = 0;
const records: ProxyRequestRecord[] = [];

async function serve(resources: { routes?: unknown[]; clusters?: unknown[]; filters?: Record<string, unknown>[] }, p = proxy): Promise<void> {
  const table = RoutingTable.fromResources({
    listeners: [listener('http', 0, [httpChain(hcm({ rds: 'rc', filters: resources.filters ?? [] }))])],
    routes: resources.routes ?? [],
    clusters: resources.clusters ?? [],
  });
  await p.apply(table);
  port = p.ports().http ?? 0;
}

beforeAll(() => {
  proxy = new Proxy({ node: { id: 'router~127.0.0.1~gw.test~test.svc.cluster.local', mode: 'router', workload: 'gw', namespace: 'test' }, rng: seededRng(11), onRecord: (r) => records.push(r) });
});

afterEach(async () => {
  await proxy.apply(RoutingTable.empty());
});

afterAll(async () => {
  await proxy.close(100);
  keepAlive.destroy();
  await Promise.all(backends.map((b) => new Promise((r) => b.server.close(r))));
});

describe('proxy over real sockets', () => {
  it('splits by weight within tolerance over 1,000 requests', async () => {
    const v1 = await backend('v1');
    const v2 = await backend('v2');
    await serve({
      routes: [routeConfig('rc', [vhost('svc', ['svc.local'], [route({ prefix: '/' }, weighted([['v1', 80], ['v2', 20]]))])])],
      clusters: [staticCluster('v1', [['127.0.0.1', v1.port]]), staticCluster('v2', [['127.0.0.1', v2.port]])],
    });
    const counts: Record<string, number> = {};
    for (let batch = 0; batch < 20; batch++) {
      const replies = await Promise.all(Array.from({ length: 50 }, () => get(port, '/')));
      for (const r of replies) counts[r.body] = (counts[r.body] ?? 0) + 1;
    }
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(1000);
    expect(counts.v2).toBeGreaterThan(150);
    expect(counts.v2).toBeLessThan(250);
  });

  it('routes by header, rewrites the path and host, and edits headers both ways', async () => {
    const a = await backend('a');
    const b = await backend('b');
    await serve({
      routes: [
        routeConfig('rc', [
          vhost('svc', ['svc.local'], [
            route({ prefix: '/api/', headers: [{ name: 'x-canary', exact_match: 'true' }] }, toCluster('b', { prefix_rewrite: '/v2/', host_rewrite_literal: 'b.internal' })),
            route({ prefix: '/' }, toCluster('a'), {
              request_headers_to_add: [{ header: { key: 'x-added', value: 'yes' } }],
              request_headers_to_remove: ['x-secret'],
              response_headers_to_add: [{ header: { key: 'x-route', value: 'default' } }],
              response_headers_to_remove: ['x-backend'],
            }),
          ]),
        ]),
      ],
      clusters: [staticCluster('a', [['127.0.0.1', a.port]]), staticCluster('b', [['127.0.0.1', b.port]])],
    });
    const canary = await get(port, '/api/x?q=1', { 'x-canary': 'true' });
    expect(canary.body).toBe('b');
    expect(b.lastUrl).toBe('/v2/x?q=1');
    expect(b.lastHeaders.host).toBe('b.internal');
    expect(b.lastHeaders.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const plain = await get(port, '/api/x', { 'x-secret': 's', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(plain.body).toBe('a');
    expect(a.lastHeaders['x-added']).toBe('yes');
    expect(a.lastHeaders['x-secret']).toBeUndefined();
    expect(a.lastHeaders.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(plain.headers['x-route']).toBe('default');
    expect(plain.headers['x-backend']).toBeUndefined();
    const rec = records.at(-1)!;
    expect(rec).toMatchObject({ reporter: 'source', responseCode: 200, traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'b7ad6b7169203331', sourceWorkload: 'gw' });
  });

  it('retries hide a backend failing every other request', async () => {
    let n = 0;
    const flaky = await backend('flaky', (req, res) => {
      req.resume();
      n++;
      res.statusCode = n % 2 === 1 ? 503 : 200;
      res.end(n % 2 === 1 ? 'fail' : 'ok');
    });
    await serve({
      routes: [routeConfig('rc', [vhost('svc', ['*'], [route({ prefix: '/' }, toCluster('flaky', { retry_policy: { retry_on: '5xx', num_retries: { value: 2 }, retry_back_off: { base_interval: { nanos: 1_000_000 } } } }))])])],
      clusters: [staticCluster('flaky', [['127.0.0.1', flaky.port]])],
    });
    const replies = [];
    for (let i = 0; i < 20; i++) replies.push(await get(port, '/', {}, 'POST', 'payload'));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(flaky.hits).toBe(40);
    expect(proxy.stats.get('cluster_upstream_rq_retry', { envoy_cluster_name: 'flaky' })).toBe(20);
  });

  it('outlier detection ejects a failing endpoint', async () => {
    const good = await backend('good');
    const bad = await backend('bad', (req, res) => {
      req.resume();
      res.statusCode = 500;
      res.end('bad');
    });
    await serve({
      routes: [routeConfig('rc', [vhost('svc', ['*'], [route({ prefix: '/' }, toCluster('pool'))])])],
      clusters: [staticCluster('pool', [['127.0.0.1', good.port], ['127.0.0.1', bad.port]], { outlier_detection: { consecutive_5xx: { value: 3 }, base_ejection_time: { seconds: 60 }, max_ejection_percent: { value: 50 } } })],
    });
    const replies = [];
    for (let i = 0; i < 30; i++) replies.push(await get(port, '/'));
    expect(bad.hits).toBe(3);
    expect(replies.slice(10).every((r) => r.body === 'good')).toBe(true);
    expect(proxy.clusterStatus().pool!.endpoints.find((e) => e.address === `127.0.0.1:${bad.port}`)!.ejected).toBe(true);
  });

  it('answers 429 with x-ratelimit headers from the local rate limit', async () => {
    const b = await backend('rl');
    await serve({
      filters: [rateLimitFilter(rateLimit(5, 60_000))],
      routes: [routeConfig('rc', [vhost('svc', ['*'], [route({ prefix: '/' }, toCluster('rl'))])])],
      clusters: [staticCluster('rl', [['127.0.0.1', b.port]])],
    });
    const replies = [];
    for (let i = 0; i < 7; i++) replies.push(await get(port, '/'));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(replies[5]!.headers).toMatchObject({ 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0' });
    expect(Number(replies[5]!.headers['x-ratelimit-reset'])).toBeGreaterThan(0);
    expect(b.hits).toBe(5);
    expect(records.at(-1)).toMatchObject({ responseCode: 429, responseFlags: 'RL' });
  });

  it('circuit breaker answers 503 UO beyond max_requests', async () => {
    const release: (() => void)[] = [];
    const slow = await backend('slow', (req, res) => {
      req.resume();
      release.push(() => res.end('slow'));
    });
    await serve({
      routes: [routeConfig('rc', [vhost('svc', ['*'], [route({ prefix: '/' }, toCluster('slow'))])])],
      clusters: [staticCluster('slow', [['127.0.0.1', slow.port]], { circuit_breakers: { thresholds: [{ max_requests: { value: 2 } }] } })],
    });
    const inflight = [get(port, '/'), get(port, '/')];
    while (slow.hits < 2) await new Promise((r) => setTimeout(r, 5));
    const third = await get(port, '/');
    expect(third.status).toBe(503);
    expect(records.at(-1)!.responseFlags).toBe('UO');
    release.forEach((f) => f());
    expect((await Promise.all(inflight)).map((r) => r.status)).toEqual([200, 200]);
  });

  it('RBAC DENY answers 403; direct response, redirect and fault abort answer locally', async () => {
    const b = await backend('rbac');
    await serve({
      filters: [
        rbacFilter({ action: 'DENY', policies: { 'no-admin': { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] } } }),
        faultFilter({ abort: { http_status: 418, percentage: { numerator: 100 } }, headers: [{ name: 'x-fault', present_match: true }] }),
      ],
      routes: [
        routeConfig('rc', [
          vhost('svc', ['*'], [
            route({ path: '/hello' }, { direct_response: { status: 200, body: { inline_string: 'hello' } } }),
            route({ prefix: '/old' }, { redirect: { path_redirect: '/new', response_code: 'FOUND' } }),
            route({ prefix: '/' }, toCluster('rbac')),
          ]),
        ]),
      ],
      clusters: [staticCluster('rbac', [['127.0.0.1', b.port]])],
    });
    expect((await get(port, '/admin/users')).status).toBe(403);
    expect((await get(port, '/public')).status).toBe(200);
    expect(await get(port, '/hello')).toMatchObject({ status: 200, body: 'hello' });
    expect(await get(port, '/old?x=1')).toMatchObject({ status: 302, headers: { location: 'http://svc.local/new?x=1' } });
    expect((await get(port, '/public', { 'x-fault': '1' })).status).toBe(418);
    expect(b.hits).toBe(1);
  });

  it('answers 503 UF when the endpoint refuses connections, 404 NR without a route, 504 UT past the timeout', async () => {
    const hang = await backend('hang', (req) => req.resume());
    await serve({
      routes: [
        routeConfig('rc', [
          vhost('svc', ['svc.local'], [
            route({ prefix: '/down' }, toCluster('down')),
            route({ prefix: '/hang' }, toCluster('hang', { timeout: { nanos: 200_000_000 } })),
          ]),
        ]),
      ],
      clusters: [staticCluster('down', [['127.0.0.1', 1]]), staticCluster('hang', [['127.0.0.1', hang.port]])],
    });
    expect((await get(port, '/down')).status).toBe(503);
    expect(records.at(-1)!.responseFlags).toBe('UF');
    expect((await get(port, '/x', { host: 'other' })).status).toBe(404);
    expect((await get(port, '/hang')).status).toBe(504);
    expect(records.at(-1)!.responseFlags).toBe('UT');
  });

  it('mirrors requests to a shadow cluster', async () => {
    const main = await backend('main');
    const shadow = await backend('shadow');
    await serve({
      routes: [routeConfig('rc', [vhost('svc', ['*'], [route({ prefix: '/' }, toCluster('main', { request_mirror_policies: [{ cluster: 'shadow' }] }))])])],
      clusters: [staticCluster('main', [['127.0.0.1', main.port]]), staticCluster('shadow', [['127.0.0.1', shadow.port]])],
    });
    expect((await get(port, '/m')).body).toBe('main');
    while (shadow.hits < 1) await new Promise((r) => setTimeout(r, 5));
    expect(shadow.lastHeaders.host).toBe('svc.local-shadow');
  });

  it('swaps the table under load without failing a request', async () => {
    const v1 = await backend('v1');
    const v2 = await backend('v2');
    const clusters = [staticCluster('v1', [['127.0.0.1', v1.port]]), staticCluster('v2', [['127.0.0.1', v2.port]])];
    const rcWith = (w: number) => routeConfig('rc', [vhost('svc', ['*'], [route({ prefix: '/' }, weighted([['v1', 100 - w], ['v2', w]]))])]);
    await serve({ routes: [rcWith(0)], clusters });
    let stop = false;
    const statuses: number[] = [];
    const bodies: string[] = [];
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const r = await get(port, '/');
        statuses.push(r.status);
        bodies.push(r.body);
      }
    });
    for (let i = 1; i <= 10; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await serve({ routes: [rcWith(i * 10)], clusters });
    }
    await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(load);
    expect(statuses.length).toBeGreaterThan(100);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(bodies.at(-1)).toBe('v2');
  });
});

export { types };
