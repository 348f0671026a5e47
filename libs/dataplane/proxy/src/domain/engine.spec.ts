import { describe, expect, it } from 'vitest';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { decide, type DecisionState, type HttpRequestFacts } from './engine';
import { compileListener, selectFilterChain, type HttpConnectionManager } from './listener';
import { compileRouteConfiguration } from './routes';
import { seededRng, TokenBucket } from './resilience';
import type { RateLimitConfig } from './filters';
import { compileResources, RoutingTable } from './table';
import { downstreamMtls, faultFilter, hcm, httpChain, listener, rateLimit, rateLimitFilter, rbacFilter, route, routeConfig, staticCluster, toCluster, types, vhost } from '../testing/fixtures';

function state(now: { t: number } = { t: 0 }, rng = seededRng(1)): DecisionState {
  const buckets = new Map<string, TokenBucket>();
  return {
    rng,
    bucket: (key: string, c: RateLimitConfig) => {
      let b = buckets.get(key);
      if (!b) buckets.set(key, (b = new TokenBucket(c.maxTokens, c.tokensPerFill, c.fillIntervalMs, () => now.t)));
      return b;
    },
  };
}

function req(over: Partial<HttpRequestFacts> & { headers?: Record<string, string> } = {}): HttpRequestFacts {
  const h: Record<string, string> = { ':method': over.method ?? 'GET', ...(over.headers ?? {}) };
  return { method: 'GET', scheme: 'http', authority: 'svc', path: '/', header: (n) => h[n], principal: undefined, sourceIp: '127.0.0.1', destinationPort: 80, ...over };
}

function hcmOf(filters: Record<string, unknown>[]): HttpConnectionManager {
  const l = compileListener(listener('l', 1, [httpChain(hcm({ rds: 'rc', filters }))]));
  return l.filterChains[0]!.terminal as HttpConnectionManager;
}

const rc = compileRouteConfiguration(
  routeConfig('rc', [
    vhost('svc', ['svc'], [
      route({ prefix: '/limited' }, toCluster('c'), { typed_per_filter_config: { 'envoy.filters.http.local_ratelimit': rateLimit(2, 60_000) } }),
      route({ prefix: '/faulty' }, toCluster('c'), { typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': types.fault, abort: { http_status: 503, percentage: { numerator: 100 } } } } }),
      route({ prefix: '/open' }, toCluster('c'), { typed_per_filter_config: { 'envoy.filters.http.rbac': { '@type': types.rbacPerRoute } } }),
      route({ prefix: '/' }, toCluster('c'), { response_headers_to_add: [{ header: { key: 'x-route', value: 'r' } }] }),
    ]),
  ]),
);

describe('decide', () => {
  it('forwards to the matched cluster with header ops in Envoy order', () => {
    const d = decide(hcmOf([]), rc, req(), state());
    expect(d.kind).toBe('forward');
    if (d.kind === 'forward') {
      expect(d.cluster.name).toBe('c');
      expect(d.responseOps[1]!.responseAdd[0]!.key).toBe('x-route');
    }
  });

  it('answers 404 NR when nothing matches', () => {
    const d = decide(hcmOf([]), rc, req({ authority: 'other' }), state());
    expect(d).toMatchObject({ kind: 'respond', flag: 'NR', response: { status: 404 } });
  });

  it('rate limits per route with a token bucket and x-ratelimit headers', () => {
    const now = { t: 0 };
    const s = state(now);
    const h = hcmOf([rateLimitFilter()]);
    const results = Array.from({ length: 3 }, () => decide(h, rc, req({ path: '/limited' }), s));
    expect(results.map((r) => r.kind)).toEqual(['forward', 'forward', 'respond']);
    expect(results[2]).toMatchObject({ flag: 'RL', response: { status: 429, headers: { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '60' } } });
    expect(decide(h, rc, req({ path: '/other' }), s).kind).toBe('forward'); // no bucket on other routes
    now.t = 60_000;
    expect(decide(h, rc, req({ path: '/limited' }), s).kind).toBe('forward');
  });

  it('rate limits at the filter level when the filter carries a bucket', () => {
    const h = hcmOf([rateLimitFilter(rateLimit(1, 1000))]);
    const s = state();
    expect(decide(h, rc, req({ path: '/x' }), s).kind).toBe('forward');
    expect(decide(h, rc, req({ path: '/y' }), s)).toMatchObject({ kind: 'respond', response: { status: 429 } });
  });

  it('injects faults from the filter or the route override', () => {
    const h = hcmOf([faultFilter({ delay: { fixed_delay: { seconds: 1 }, percentage: { numerator: 100 } }, headers: [{ name: 'x-fault', present_match: true }] })]);
    expect(decide(h, rc, req({ path: '/faulty' }), state())).toMatchObject({ kind: 'respond', flag: 'FI', response: { status: 503 } });
    expect(decide(h, rc, req({ path: '/x' }), state())).toMatchObject({ kind: 'forward', delayMs: 0 });
    expect(decide(h, rc, req({ path: '/x', headers: { 'x-fault': '1' } }), state())).toMatchObject({ kind: 'forward', delayMs: 1000, flag: 'DI' });
    const half = hcmOf([faultFilter({ abort: { http_status: 500, percentage: { numerator: 50 } } })]);
    const s = state(undefined, seededRng(42));
    let aborted = 0;
    for (let i = 0; i < 1000; i++) if (decide(half, rc, req({ path: '/x' }), s).kind === 'respond') aborted++;
    expect(aborted).toBeGreaterThan(430);
    expect(aborted).toBeLessThan(570);
  });

  it('enforces RBAC ALLOW and DENY, with per-route disable', () => {
    const allowNs = rbacFilter({
      action: 'ALLOW',
      policies: {
        'ns-frontend': {
          permissions: [{ and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { url_path: { path: { prefix: '/api/' } } }] } }],
          principals: [{ authenticated: { principal_name: { safe_regex: { regex: 'spiffe://cluster\\.local/ns/frontend/sa/.*' } } } }],
        },
        'exact-admin': { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/ops/sa/admin' } } }] },
      },
    });
    const h = hcmOf([allowNs]);
    const frontend = 'spiffe://cluster.local/ns/frontend/sa/web';
    expect(decide(h, rc, req({ path: '/api/x', principal: frontend }), state()).kind).toBe('forward');
    expect(decide(h, rc, req({ path: '/api/x', method: 'POST', headers: { ':method': 'POST' }, principal: frontend }), state())).toMatchObject({ kind: 'respond', flag: 'RBAC', response: { status: 403 } });
    expect(decide(h, rc, req({ path: '/other', principal: frontend }), state()).kind).toBe('respond');
    expect(decide(h, rc, req({ path: '/api/x' }), state()).kind).toBe('respond'); // plaintext: no principal
    expect(decide(h, rc, req({ path: '/anything', method: 'DELETE', principal: 'spiffe://cluster.local/ns/ops/sa/admin' }), state()).kind).toBe('forward');
    expect(decide(h, rc, req({ path: '/open' }), state()).kind).toBe('forward'); // RBACPerRoute without rules
    const deny = hcmOf([rbacFilter({ action: 'DENY', policies: { 'no-delete': { permissions: [{ header: { name: ':method', string_match: { exact: 'DELETE' } } }], principals: [{ any: true }] } } })]);
    expect(decide(deny, rc, req({ headers: { ':method': 'DELETE' } }), state())).toMatchObject({ response: { status: 403 } });
    expect(decide(deny, rc, req(), state()).kind).toBe('forward');
  });
});

describe('listeners', () => {
  it('rejects chains it cannot apply, naming the field', () => {
    const bad = (l: Record<string, unknown>) => () => compileListener(l);
    expect(bad(listener('l', 1, [httpChain({ ...hcm({ rds: 'r' }), http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': types.router } }, faultFilter()] })]))).toThrow(
      /Listener\.filter_chains\[0\]\.filters\[0\]\.typed_config\.http_filters\[0\]: the router filter must be the last HTTP filter/,
    );
    expect(bad(listener('l', 1, [httpChain(hcm({ rds: 'r', filters: [{ name: 'x', typed_config: { '@type': ExtensionTypeUrl.ExtAuthz } }] }))]))).toThrow(/unsupported HTTP filter/);
    expect(bad(listener('l', 1, [httpChain(hcm({}))]))).toThrow(/one of rds, route_config is required/);
    expect(bad(listener('l', 1, []))).toThrow(/at least one filter chain/);
  });

  it('selects TLS or plaintext chains (PERMISSIVE) and by SNI', () => {
    const l = compileListener(
      listener('virtualInbound', 15006, [
        httpChain(hcm({ rds: 'in' }), { name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamMtls() }),
        httpChain(hcm({ rds: 'in' }), { name: 'plain', filter_chain_match: { transport_protocol: 'raw_buffer' } }),
        httpChain(hcm({ rds: 'in' }), { name: 'sni', filter_chain_match: { transport_protocol: 'tls', server_names: ['*.example.com'] }, transport_socket: downstreamMtls(false) }),
      ]),
    );
    expect(l.anyTls && l.anyPlain).toBe(true);
    const pick = (tls: boolean, sni?: string) => selectFilterChain(l, { tls, serverName: sni, destinationPort: 15006, alpn: [] })?.name;
    expect(pick(true)).toBe('mtls');
    expect(pick(false)).toBe('plain');
    expect(pick(true, 'a.example.com')).toBe('sni');
    const strict = compileListener(listener('s', 1, [httpChain(hcm({ rds: 'in' }), { filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamMtls() })]));
    expect(strict.anyPlain).toBe(false);
    expect(selectFilterChain(strict, { tls: false, serverName: undefined, destinationPort: 1, alpn: [] })).toBeUndefined();
  });
});

describe('compileResources and the routing table', () => {
  it('collects precise errors for a NACK and builds tables otherwise', () => {
    const r = compileResources('cds', [staticCluster('ok', [['127.0.0.1', 1]]), { name: 'bad', type: 'EDS', lb_policy: 'ROUND_ROBIN' }]);
    expect(r.errors).toEqual(['Cluster[bad].eds_cluster_config: expected an object']);
    const t = RoutingTable.fromResources({ listeners: [listener('l', 0, [httpChain(hcm({ rds: 'rc' }))])], routes: [routeConfig('rc', [])], clusters: [staticCluster('ok', [['127.0.0.1', 1]])] });
    expect(t.routeNames()).toEqual(['rc']);
    expect(t.endpointsOf(t.clusters.get('ok')!).map((e) => e.port)).toEqual([1]);
    expect(Object.isFrozen(t)).toBe(true);
  });
});
