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
