import { describe, expect, it } from 'vitest';
import type { HTTPRouteRule } from '@aviary/mesh-api';
import { httpRuleRoutes, type RuleContext } from './rules';

const ctx = (listener?: RuleContext['listener']): RuleContext => ({ routeKey: 'http:web/r', createdAt: '', ruleIndex: 0, backends: [], invalidWeight: 0, ...(listener && { listener }) });
const redirectOf = (requestRedirect: Record<string, unknown>, listener?: RuleContext['listener']) =>
  httpRuleRoutes({ matches: [{ path: { type: 'Exact', value: '/r' } }], filters: [{ type: 'RequestRedirect', requestRedirect }] } as HTTPRouteRule, ctx(listener))[0]!.route.redirect;

describe('Gateway API RequestRedirect → Istio redirect', () => {
  it('keeps every status code of the CRD enum (303, 307 and 308 too); 302 by default', () => {
    for (const statusCode of [301, 302, 303, 307, 308]) expect(redirectOf({ statusCode })?.redirectCode).toBe(statusCode);
    expect(redirectOf({})?.redirectCode).toBe(302);
  });

  it('no scheme, no port: the listener port, left out when it is the default of the listener protocol', () => {
    expect(redirectOf({ hostname: 'example.org' }, { port: 8080, protocol: 'HTTP' })).toEqual({ authority: 'example.org', port: 8080, redirectCode: 302 });
    expect(redirectOf({ hostname: 'example.org' }, { port: 80, protocol: 'HTTP' })).toEqual({ authority: 'example.org', redirectCode: 302 });
    expect(redirectOf({ hostname: 'example.org' }, { port: 443, protocol: 'HTTPS' })).toEqual({ authority: 'example.org', redirectCode: 302 });
    expect(redirectOf({ hostname: 'example.org' }, { port: 8443, protocol: 'HTTPS' })?.port).toBe(8443);
  });

  it('a scheme without a port: the scheme default, explicit only when the request came to another port', () => {
    expect(redirectOf({ scheme: 'https', hostname: 'example.org' }, { port: 80, protocol: 'HTTP' })).toEqual({ scheme: 'https', authority: 'example.org', redirectCode: 302 });
    expect(redirectOf({ scheme: 'https' }, { port: 8080, protocol: 'HTTP' })).toEqual({ scheme: 'https', port: 443, redirectCode: 302 });
    expect(redirectOf({ scheme: 'http' }, { port: 8443, protocol: 'HTTPS' })?.port).toBe(80);
  });

  it('an explicit port is kept as written; mesh routes (no listener) get no default', () => {
    expect(redirectOf({ port: 80, hostname: 'example.org' }, { port: 8080, protocol: 'HTTP' })?.port).toBe(80);
    expect(redirectOf({ scheme: 'https', port: 8443 }, { port: 80, protocol: 'HTTP' })?.port).toBe(8443);
    expect(redirectOf({ hostname: 'example.org' })).toEqual({ authority: 'example.org', redirectCode: 302 });
  });
});

describe('Gateway API CORS filter → Istio corsPolicy', () => {
  const corsOf = (cors: Record<string, unknown>) =>
    httpRuleRoutes({ filters: [{ type: 'CORS', cors }], backendRefs: [] } as unknown as HTTPRouteRule, { ...ctx(), backends: [{ host: 'v1.web.svc.cluster.local', port: 8080, weight: 1 }] })[0]!.route.corsPolicy;

  it('origins become matchers (a wildcard covers any number of labels), lists and credentials carried over, maxAge in seconds, unmatched preflights not forwarded', () => {
    expect(corsOf({ allowOrigins: ['https://www.foo.com', 'https://*.bar.com'], allowMethods: ['GET', 'OPTIONS'], allowHeaders: ['x-header-1'], exposeHeaders: ['x-header-3'], allowCredentials: true, maxAge: 3600 })).toEqual({
      allowOrigins: [{ exact: 'https://www.foo.com' }, { regex: 'https://[^/]*\\.bar\\.com' }],
      allowMethods: ['GET', 'OPTIONS'],
      allowHeaders: ['x-header-1'],
      exposeHeaders: ['x-header-3'],
      allowCredentials: true,
      maxAge: '3600s',
      unmatchedPreflights: 'IGNORE',
    });
    const re = new RegExp(`^${corsOf({ allowOrigins: ['https://*.bar.com'] })!.allowOrigins![0]!.regex!}$`);
    expect(['https://www.bar.com', 'https://xpto.www.bar.com'].map((o) => re.test(o))).toEqual([true, true]);
    expect(['https://bar.com', 'https://www.bar.com.evil.org', 'http://www.bar.com'].map((o) => re.test(o))).toEqual([false, false, false]);
  });

  it('wildcards with credentials are kept: the proxy echoes the request origin, method and headers; maxAge defaults to 5s', () => {
    expect(corsOf({ allowOrigins: ['*'], allowMethods: ['*'], allowHeaders: ['*'], allowCredentials: true })).toEqual({ allowOrigins: [{ regex: '.*' }], allowMethods: ['*'], allowHeaders: ['*'], allowCredentials: true, maxAge: '5s', unmatchedPreflights: 'IGNORE' });
  });
});

describe('Gateway API timeouts → Istio timeout and retries', () => {
  const backend = { host: 'v1.web.svc.cluster.local', port: 8080, weight: 1 };
  const timingOf = (timeouts: Record<string, string>) => {
    const route = httpRuleRoutes({ timeouts } as HTTPRouteRule, { ...ctx(), backends: [backend] })[0]!.route;
    return { timeout: route.timeout, retries: route.retries };
  };

  it('request alone bounds the route; "0s" disables it', () => {
    expect(timingOf({ request: '10s' })).toEqual({ timeout: '10s', retries: undefined });
    expect(timingOf({ request: '0s' })).toEqual({ timeout: '0s', retries: undefined });
  });

  it('backendRequest bounds each try (default retry count kept), and the route too when request sets no limit', () => {
    expect(timingOf({ backendRequest: '500ms' })).toEqual({ timeout: '500ms', retries: { perTryTimeout: '500ms' } });
    expect(timingOf({ request: '0s', backendRequest: '500ms' })).toEqual({ timeout: '500ms', retries: { perTryTimeout: '500ms' } });
    expect(timingOf({ request: '10s', backendRequest: '1s' })).toEqual({ timeout: '10s', retries: { perTryTimeout: '1s' } });
  });

  it('backendRequest "0s" disables the per-try bound: retries and route timeout as without it', () => {
    expect(timingOf({ backendRequest: '0s' })).toEqual({ timeout: undefined, retries: undefined });
    expect(timingOf({ request: '3s', backendRequest: '0s' })).toEqual({ timeout: '3s', retries: undefined });
  });

  it('a redirect or a rule without usable backends gets neither', () => {
    const direct = httpRuleRoutes({ timeouts: { backendRequest: '1s' } } as HTTPRouteRule, ctx())[0]!.route;
    expect(direct.directResponse).toEqual({ status: 500 });
    expect(direct.retries).toBeUndefined();
    expect(direct.timeout).toBeUndefined();
  });
});

describe('Gateway API RequestMirror filters → Istio mirror / mirrors', () => {
  const backend = { host: 'v1.web.svc.cluster.local', port: 8080, weight: 1 };
  const routeOf = (mirrors: RuleContext['mirrors'], backends = [backend]) => httpRuleRoutes({} as HTTPRouteRule, { ...ctx(), backends, ...(mirrors && { mirrors }) })[0]!.route;

  it('one mirror keeps the single mirror fields (percentage only below 100)', () => {
    const one = routeOf([{ host: 'v2.web.svc.cluster.local', port: 8080, percent: 100 }]);
    expect(one.mirror).toEqual({ host: 'v2.web.svc.cluster.local', port: { number: 8080 } });
    expect(one.mirrorPercentage).toBeUndefined();
    expect(one.mirrors).toBeUndefined();
    expect(routeOf([{ host: 'v2.web.svc.cluster.local', port: 8080, percent: 12.5 }]).mirrorPercentage).toEqual({ value: 12.5 });
  });

  it('several mirrors become one mirror policy each, in filter order, with their own percentages', () => {
    const two = routeOf([
      { host: 'v2.web.svc.cluster.local', port: 8080, percent: 100 },
      { host: 'v3.web.svc.cluster.local', port: 8080, percent: 20 },
    ]);
    expect(two.mirror).toBeUndefined();
    expect(two.mirrors).toEqual([
      { destination: { host: 'v2.web.svc.cluster.local', port: { number: 8080 } } },
      { destination: { host: 'v3.web.svc.cluster.local', port: { number: 8080 } }, percentage: { value: 20 } },
    ]);
  });

  it('no usable backend: a 500 and no mirrors', () => {
    const none = routeOf([{ host: 'v2.web.svc.cluster.local', port: 8080, percent: 100 }, { host: 'v3.web.svc.cluster.local', port: 8080, percent: 100 }], []);
    expect(none.directResponse).toEqual({ status: 500 });
    expect(none.mirrors).toBeUndefined();
  });
});
