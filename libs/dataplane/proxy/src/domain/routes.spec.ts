import { describe, expect, it } from 'vitest';
import { compileRouteConfiguration, matchRoute, pickWeightedCluster, redirectLocation, rewritePath, selectVirtualHost, type Route, type RouteAction } from './routes';
import { seededRng } from './resilience';
import { ProxyConfigError } from './raw';
import { route, routeConfig, toCluster, vhost, weighted } from '../testing/fixtures';

const headersOf = (h: Record<string, string>) => (name: string) => h[name];

function rc(vhosts: Record<string, unknown>[]) {
  return compileRouteConfiguration(routeConfig('rc', vhosts));
}

describe('virtual host selection', () => {
  const table = rc([
    vhost('exact', ['api.example.com', 'api.example.com:8080'], []),
    vhost('suffix-short', ['*.com'], []),
    vhost('suffix-long', ['*.example.com'], []),
    vhost('prefix', ['api.*'], []),
    vhost('any', ['*'], []),
  ]);
  const pick = (h: string) => selectVirtualHost(table, h)?.name;

  it('prefers exact, then the longest suffix wildcard, then prefix wildcards, then *', () => {
    expect(pick('api.example.com')).toBe('exact');
    expect(pick('API.Example.COM')).toBe('exact');
    expect(pick('www.example.com')).toBe('suffix-long');
    expect(pick('foo.com')).toBe('suffix-short');
    expect(pick('api.internal')).toBe('prefix');
    expect(pick('other')).toBe('any');
  });

  it('matches with the port first, then without it', () => {
    expect(pick('api.example.com:8080')).toBe('exact');
    expect(pick('www.example.com:9999')).toBe('suffix-long');
  });

  it('never lets a wildcard match the empty string', () => {
    const t = rc([vhost('w', ['*.example.com'], [])]);
    expect(selectVirtualHost(t, '.example.com')).toBeUndefined();
  });
});

describe('route matching', () => {
  const v = rc([
    vhost('v', ['*'], [
      route({ path: '/exact' }, toCluster('exact')),
      route({ safe_regex: { regex: '/items/[0-9]+' } }, toCluster('regex')),
      route({ prefix: '/api', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }, toCluster('post')),
      route({ prefix: '/api', headers: [{ name: 'x-version', exact_match: 'v2' }] }, toCluster('v2')),
      route({ prefix: '/api', headers: [{ name: 'x-user', string_match: { prefix: 'admin-' } }] }, toCluster('admin')),
      route({ prefix: '/api', headers: [{ name: 'x-trace', safe_regex_match: { regex: '[a-f0-9]{4}' } }] }, toCluster('traced')),
      route({ prefix: '/api', headers: [{ name: 'x-debug', present_match: true }] }, toCluster('debug')),
      route({ prefix: '/api', headers: [{ name: 'x-canary', exact_match: 'no', invert_match: true }] }, toCluster('not-no')),
      route({ prefix: '/api', query_parameters: [{ name: 'beta', string_match: { exact: '1' } }] }, toCluster('beta')),
      route({ prefix: '/CI', case_sensitive: { value: false } }, toCluster('ci')),
      route({ path_separated_prefix: '/sep' }, toCluster('sep')),
      route({ prefix: '/' }, toCluster('default')),
    ]),
  ]).virtualHosts[0]!;
  const clusterOf = (path: string, h: Record<string, string> = {}) => {
    const r = matchRoute(v, { path, header: headersOf({ ':method': 'GET', ...h }) });
    const a = r?.action as Extract<RouteAction, { kind: 'route' }> | undefined;
    return a?.clusters[0]?.name;
  };

  it('matches path, regex (whole path, no query) and prefix, first match wins', () => {
    expect(clusterOf('/exact')).toBe('exact');
    expect(clusterOf('/exact?x=1')).toBe('exact');
    expect(clusterOf('/exact/more')).toBe('default');
    expect(clusterOf('/items/42')).toBe('regex');
    expect(clusterOf('/items/42/x')).toBe('default');
    expect(clusterOf('/items/42?q=1')).toBe('regex');
  });

  it('matches headers: :method, exact, prefix, regex, present, inverted', () => {
    expect(clusterOf('/api', { ':method': 'POST' })).toBe('post');
    expect(clusterOf('/api', { 'x-version': 'v2' })).toBe('v2');
    expect(clusterOf('/api', { 'x-user': 'admin-bob' })).toBe('admin');
    expect(clusterOf('/api', { 'x-trace': 'ab12' })).toBe('traced');
    expect(clusterOf('/api', { 'x-trace': 'ab12z' })).toBe('default');
    expect(clusterOf('/api', { 'x-debug': '' })).toBe('debug');
    expect(clusterOf('/api', { 'x-canary': 'yes' })).toBe('not-no');
    expect(clusterOf('/api', { 'x-canary': 'no' })).toBe('default');
  });

  it('matches query parameters, case-insensitive prefixes and separated prefixes', () => {
    expect(clusterOf('/api?beta=1')).toBe('beta');
    expect(clusterOf('/api?beta=2')).toBe('default');
    expect(clusterOf('/ci/x')).toBe('ci');
    expect(clusterOf('/Ci/x')).toBe('ci');
    expect(clusterOf('/Exact')).toBe('default');
    expect(clusterOf('/sep')).toBe('sep');
    expect(clusterOf('/sep/a')).toBe('sep');
    expect(clusterOf('/separate')).toBe('default');
  });
});

describe('route actions', () => {
  const v = rc([
    vhost('v', ['*'], [
      route({ prefix: '/split' }, weighted([['v1', 90], ['v2', 10]])),
      route({ prefix: '/old/' }, toCluster('c', { prefix_rewrite: '/new/' })),
      route({ prefix: '/re' }, toCluster('c', { regex_rewrite: { pattern: { regex: '^/re/(\\w+)/x$' }, substitution: '/\\1/y' }, host_rewrite_literal: 'backend.local' })),
      route({ prefix: '/go' }, { redirect: { https_redirect: true, host_redirect: 'secure.example.com', response_code: 'PERMANENT_REDIRECT' } }),
      route({ prefix: '/moved' }, { redirect: { prefix_rewrite: '/here', strip_query: true } }),
      route({ prefix: '/hello' }, { direct_response: { status: 200, body: { inline_string: 'hi' } } }),
    ]),
  ]).virtualHosts[0]!;
  const routeFor = (path: string): Route => matchRoute(v, { path, header: () => undefined })!;

  it('splits by weight deterministically with an injected RNG', () => {
    const r = routeFor('/split');
    const a = r.action as Extract<RouteAction, { kind: 'route' }>;
    expect(pickWeightedCluster(a, 0).name).toBe('v1');
    expect(pickWeightedCluster(a, 0.899).name).toBe('v1');
    expect(pickWeightedCluster(a, 0.9).name).toBe('v2');
    const rng = seededRng(7);
    let v2 = 0;
    for (let i = 0; i < 10_000; i++) if (pickWeightedCluster(a, rng()).name === 'v2') v2++;
    expect(v2).toBeGreaterThan(900);
    expect(v2).toBeLessThan(1100);
  });

  it('rewrites the matched prefix or by regex, keeping the query', () => {
    const old = routeFor('/old/a/b');
    expect(rewritePath(old, old.action as Extract<RouteAction, { kind: 'route' }>, '/old/a/b?q=1')).toBe('/new/a/b?q=1');
    const re = routeFor('/re/abc/x');
    const a = re.action as Extract<RouteAction, { kind: 'route' }>;
    expect(rewritePath(re, a, '/re/abc/x')).toBe('/abc/y');
    expect(a.hostRewrite).toBe('backend.local');
  });

  it('builds redirect locations', () => {
    const go = routeFor('/go/x');
    expect(go.action.kind).toBe('redirect');
    const a = go.action as Extract<RouteAction, { kind: 'redirect' }>;
    expect(a.status).toBe(308);
    expect(redirectLocation(go, a, { scheme: 'http', authority: 'example.com:8080', path: '/go/x?a=1' })).toBe('https://secure.example.com/go/x?a=1');
    const moved = routeFor('/moved/y');
    const m = moved.action as Extract<RouteAction, { kind: 'redirect' }>;
    expect(m.status).toBe(301);
    expect(redirectLocation(moved, m, { scheme: 'http', authority: 'example.com:8080', path: '/moved/y?a=1' })).toBe('http://example.com:8080/here/y');
  });

  it('compiles direct responses', () => {
    expect(routeFor('/hello').action).toEqual({ kind: 'direct', status: 200, body: 'hi' });
  });

  it('defaults the timeout to 15s and compiles retry policies', () => {
    const t = rc([vhost('v', ['*'], [route({ prefix: '/' }, toCluster('c', { timeout: { seconds: 2 }, retry_policy: { retry_on: '5xx,connect-failure,cancelled', num_retries: { value: 3 }, per_try_timeout: { nanos: 500_000_000 } } }))])]);
    const a = t.virtualHosts[0]!.routes[0]!.action as Extract<RouteAction, { kind: 'route' }>;
    expect(a.timeoutMs).toBe(2000);
    expect([...a.retry!.retryOn]).toEqual(['5xx', 'connect-failure']);
    expect(a.retry!.numRetries).toBe(3);
    expect(a.retry!.perTryTimeoutMs).toBe(500);
  });
});

describe('route configuration validation', () => {
  const reason = (vhosts: Record<string, unknown>[]): string => {
    try {
      rc(vhosts);
    } catch (err) {
      expect(err).toBeInstanceOf(ProxyConfigError);
      return (err as Error).message;
    }
    return 'accepted';
  };

  it('names the field of an invalid regex', () => {
    expect(reason([vhost('v', ['*'], [route({ safe_regex: { regex: '(' } }, toCluster('c'))])])).toMatch(/^RouteConfiguration\.virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: invalid regex/);
    expect(reason([vhost('v', ['*'], [route({ safe_regex: { regex: '(a)\\1' } }, toCluster('c'))])])).toMatch(/back-references/);
    expect(reason([vhost('v', ['*'], [route({ safe_regex: { regex: 'a(?=b)' } }, toCluster('c'))])])).toMatch(/look-around/);
  });

  it('rejects duplicate domains, bad wildcards, missing actions and zero weights', () => {
    expect(reason([vhost('a', ['x'], []), vhost('b', ['x'], [])])).toMatch(/virtual_hosts\[1\]\.domains\[0\]: duplicate domain x/);
    expect(reason([vhost('a', ['a*b'], [])])).toMatch(/invalid wildcard/);
    expect(reason([vhost('a', ['*'], [route({ prefix: '/' }, {})])])).toMatch(/routes\[0\]: exactly one of route, redirect, direct_response/);
    expect(reason([vhost('a', ['*'], [route({ prefix: '/' }, weighted([['a', 0], ['b', 0]]))])])).toMatch(/sum of weights/);
    expect(reason([vhost('a', ['*'], [route({}, toCluster('c'))])])).toMatch(/match: exactly one of prefix/);
    expect(reason([vhost('a', ['*'], [route({ prefix: '/' }, toCluster('c', { prefix_rewrite: '/a', regex_rewrite: { pattern: { regex: 'a' }, substitution: 'b' } }))])])).toMatch(/exclusive/);
  });
});
