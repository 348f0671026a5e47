import { describe, expect, it } from 'vitest';
import { validate } from '../validate';

const meta = { name: 'example', namespace: 'default' };
const v1 = 'gateway.networking.k8s.io/v1';
const http = { name: 'http', port: 80, protocol: 'HTTP' };
const gw = (spec: Record<string, unknown>) => ({ apiVersion: v1, kind: 'Gateway', metadata: meta, spec: { gatewayClassName: 'aviary', listeners: [http], ...spec } });
const listener = (l: Record<string, unknown>) => gw({ listeners: [{ ...http, ...l }] });
const hr = (spec: Record<string, unknown>) => ({ apiVersion: v1, kind: 'HTTPRoute', metadata: meta, spec: { parentRefs: [{ name: 'gw' }], ...spec } });
const rule = (r: Record<string, unknown>) => hr({ rules: [{ backendRefs: [{ name: 'svc', port: 80 }], ...r }] });
const filter = (f: Record<string, unknown>) => rule({ filters: [f] });

/** [what, resource, expected path, expected message fragment] */
const cases: [string, unknown, string, string][] = [
  ['Gateway API Gateway needs its group', { ...gw({}), apiVersion: 'gateway.networking.k8s.io/v2' }, 'apiVersion', 'networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3, gateway.networking.k8s.io/v1'],
  ['Istio Gateway fields are unknown on the Gateway API Gateway', gw({ servers: [] }), 'spec.servers', 'unknown field "servers"'],
  ['experimental listener field', listener({ frontendValidation: {} }), 'spec.listeners[0].frontendValidation', 'unknown field'],
  ['ReferenceGrant is v1beta1 or v1', { apiVersion: 'gateway.networking.k8s.io/v1alpha2', kind: 'ReferenceGrant', metadata: meta, spec: { from: [], to: [] } }, 'apiVersion', 'gateway.networking.k8s.io/v1beta1, gateway.networking.k8s.io/v1'],
  ['allowedListeners refused', gw({ allowedListeners: { namespaces: { from: 'All' } } }), 'spec.allowedListeners', 'not supported by Aviary yet'],
  ['Gateway-level TLS refused', gw({ tls: { frontend: { default: { validation: { caCertificateRefs: [{ name: 'ca' }] } } } } }), 'spec.tls', 'not supported by Aviary yet'],
  ['CORS origin without scheme', filter({ type: 'CORS', cors: { allowOrigins: ['example.com'] } }), 'spec.rules[0].filters[0].cors.allowOrigins[0]', 'scheme'],
  ['CORS bad method', filter({ type: 'CORS', cors: { allowMethods: ['FETCH'] } }), 'spec.rules[0].filters[0].cors.allowMethods[0]', 'method'],
  ['CORS wildcard origin with others', filter({ type: 'CORS', cors: { allowOrigins: ['*', 'https://a.example.com'] } }), 'spec.rules[0].filters[0].cors.allowOrigins', 'cannot contain "*" alongside'],
  ['CORS wildcard method with others', filter({ type: 'CORS', cors: { allowMethods: ['GET', '*'] } }), 'spec.rules[0].filters[0].cors.allowMethods', 'cannot contain "*" alongside'],
  ['CORS too many methods', filter({ type: 'CORS', cors: { allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'GET'] } }), 'spec.rules[0].filters[0].cors.allowMethods', 'at most 9'],
  ['CORS header twice', filter({ type: 'CORS', cors: { allowHeaders: ['X-A', 'x-a'] } }), 'spec.rules[0].filters[0].cors.allowHeaders[1]', 'listed twice'],
  ['CORS origin with a path', filter({ type: 'CORS', cors: { allowOrigins: ['https://a.example.com/x'] } }), 'spec.rules[0].filters[0].cors.allowOrigins[0]', 'invalid origin'],
  ['CORS maxAge zero', filter({ type: 'CORS', cors: { maxAge: 0 } }), 'spec.rules[0].filters[0].cors.maxAge', 'must be >= 1'],
  ['GatewayClass is cluster-scoped', { apiVersion: v1, kind: 'GatewayClass', metadata: meta, spec: { controllerName: 'aviary.dev/gateway-controller' } }, 'metadata.namespace', 'cluster-scoped'],
  ['GatewayClass controllerName', { apiVersion: v1, kind: 'GatewayClass', metadata: { name: 'a' }, spec: { controllerName: 'aviary' } }, 'spec.controllerName', 'domain-prefixed'],
  ['GatewayClass parametersRef', { apiVersion: v1, kind: 'GatewayClass', metadata: { name: 'a' }, spec: { controllerName: 'aviary.dev/gateway-controller', parametersRef: { group: 'g', kind: 'K', name: 'n' } } }, 'spec.parametersRef', 'not supported by Aviary yet'],
  ['no listeners', gw({ listeners: [] }), 'spec.listeners', 'at least one listener'],
  ['duplicate listener names', gw({ listeners: [http, { ...http, port: 81 }] }), 'spec.listeners[1].name', 'already used'],
  ['same port and hostname twice', gw({ listeners: [http, { ...http, name: 'other' }] }), 'spec.listeners[1].hostname', 'already used'],
  ['port out of range', listener({ port: 0 }), 'spec.listeners[0].port', ''],
  ['bad listener hostname', listener({ hostname: 'Foo_bar' }), 'spec.listeners[0].hostname', 'invalid hostname'],
  ['IP hostname', listener({ hostname: '10.0.0.1' }), 'spec.listeners[0].hostname', 'IP address'],
  ['UDP listener refused', listener({ protocol: 'UDP' }), 'spec.listeners[0].protocol', 'not supported by Aviary yet'],
  ['TCP listener with a hostname', listener({ protocol: 'TCP', hostname: 'a.example.com' }), 'spec.listeners[0].hostname', 'must not be set for protocol TCP'],
  ['TCP listener with tls', listener({ protocol: 'TCP', tls: { mode: 'Passthrough' } }), 'spec.listeners[0].tls', 'must not be set for protocol TCP'],
  ['TLS listener without tls', listener({ protocol: 'TLS', port: 443 }), 'spec.listeners[0].tls', 'required for protocol TLS'],
  ['TLS passthrough with a certificate', listener({ protocol: 'TLS', port: 443, tls: { mode: 'Passthrough', certificateRefs: [{ name: 'c' }] } }), 'spec.listeners[0].tls.certificateRefs', 'must not be set when tls.mode is Passthrough'],
  ['TLS terminate without a certificate', listener({ protocol: 'TLS', port: 443, tls: { mode: 'Terminate' } }), 'spec.listeners[0].tls.certificateRefs', 'must name a Secret'],
  ['TLS on HTTP', listener({ tls: { mode: 'Terminate' } }), 'spec.listeners[0].tls', 'must not be set'],
  ['HTTPS without tls', listener({ protocol: 'HTTPS', port: 443 }), 'spec.listeners[0].tls', 'required'],
  ['HTTPS passthrough', listener({ protocol: 'HTTPS', port: 443, tls: { mode: 'Passthrough', certificateRefs: [{ name: 'c' }] } }), 'spec.listeners[0].tls.mode', 'must be Terminate for protocol HTTPS'],
  ['HTTPS without certificate', listener({ protocol: 'HTTPS', port: 443, tls: { mode: 'Terminate' } }), 'spec.listeners[0].tls.certificateRefs', 'must name a Secret'],
  ['allowedRoutes Selector without selector', listener({ allowedRoutes: { namespaces: { from: 'Selector' } } }), 'spec.listeners[0].allowedRoutes.namespaces.selector', 'required when from is Selector'],
  ['allowedRoutes selector with Same', listener({ allowedRoutes: { namespaces: { from: 'Same', selector: { matchLabels: { a: 'b' } } } } }), 'spec.listeners[0].allowedRoutes.namespaces.selector', 'only used with from: Selector'],
  ['allowedRoutes selector bad label key', listener({ allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { 'a b': 'c' } } } } }), 'spec.listeners[0].allowedRoutes.namespaces.selector.matchLabels["a b"]', 'not a valid label key'],
  ['allowedRoutes selector bad operator', listener({ allowedRoutes: { namespaces: { from: 'Selector', selector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] } } } }), 'spec.listeners[0].allowedRoutes.namespaces.selector.matchExpressions[0].operator', 'not one of In, NotIn'],
  ['allowedRoutes selector In without values', listener({ allowedRoutes: { namespaces: { from: 'Selector', selector: { matchExpressions: [{ key: 'a', operator: 'In' }] } } } }), 'spec.listeners[0].allowedRoutes.namespaces.selector.matchExpressions[0].values', 'must not be empty'],
  ['allowedRoutes selector Exists with values', listener({ allowedRoutes: { namespaces: { from: 'Selector', selector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } } } }), 'spec.listeners[0].allowedRoutes.namespaces.selector.matchExpressions[0].values', 'must be empty'],
  ['static address', gw({ addresses: [{ value: '10.0.0.1' }] }), 'spec.addresses[0].value', 'a static address is not supported by Aviary yet'],
  ['address type Hostname', gw({ addresses: [{ type: 'Hostname' }] }), 'spec.addresses[0].type', 'address type "Hostname" is not supported by Aviary yet'],
  ['too many addresses', gw({ addresses: [...Array(17).keys()].map(() => ({ type: 'IPAddress' })) }), 'spec.addresses', 'at most 16 addresses (17 given)'],
  ['infrastructure: too many labels', gw({ infrastructure: { labels: Object.fromEntries([...Array(9).keys()].map((i) => [`l${i}`, 'v'])) } }), 'spec.infrastructure.labels', 'at most 8 labels (9 given)'],
  ['infrastructure: bad label key', gw({ infrastructure: { labels: { 'a b': 'v' } } }), 'spec.infrastructure.labels["a b"]', 'not a valid label key'],
  ['infrastructure: bad label value', gw({ infrastructure: { labels: { team: 'a b' } } }), 'spec.infrastructure.labels.team', 'not a valid label value'],
  ['infrastructure: bad annotation key', gw({ infrastructure: { annotations: { '/x': 'v' } } }), 'spec.infrastructure.annotations["/x"]', 'not a valid annotation key'],
  ['infrastructure: annotation too long', gw({ infrastructure: { annotations: { a: 'x'.repeat(4097) } } }), 'spec.infrastructure.annotations.a', 'at most 4096 characters'],
  ['infrastructure: parametersRef bad name', gw({ infrastructure: { parametersRef: { group: '', kind: 'ConfigMap', name: 'Bad_Name' } } }), 'spec.infrastructure.parametersRef.name', 'invalid name'],
  ['parentRef of another kind', hr({ parentRefs: [{ kind: 'Ingress', name: 'x' }] }), 'spec.parentRefs[0].kind', 'not supported by Aviary yet'],
  ['bad route hostname', hr({ hostnames: ['bad host'] }), 'spec.hostnames[0]', 'invalid hostname'],
  ['path without slash', rule({ matches: [{ path: { type: 'PathPrefix', value: 'foo' } }] }), 'spec.rules[0].matches[0].path.value', 'must start with "/"'],
  ['path with dot segment', rule({ matches: [{ path: { type: 'Exact', value: '/a/../b' } }] }), 'spec.rules[0].matches[0].path.value', 'must not contain'],
  ['bad path regex', rule({ matches: [{ path: { type: 'RegularExpression', value: '/(a' } }] }), 'spec.rules[0].matches[0].path.value', ''],
  ['unknown path type', rule({ matches: [{ path: { type: 'Prefix', value: '/' } }] }), 'spec.rules[0].matches[0].path.type', 'must be one of Exact, PathPrefix, RegularExpression'],
  ['bad header name', rule({ matches: [{ headers: [{ name: 'a b', value: 'x' }] }] }), 'spec.rules[0].matches[0].headers[0].name', 'invalid header name'],
  ['header matched twice', rule({ matches: [{ headers: [{ name: 'A', value: 'x' }, { name: 'a', value: 'y' }] }] }), 'spec.rules[0].matches[0].headers[1].name', 'matched twice'],
  ['bad method', rule({ matches: [{ method: 'FETCH' }] }), 'spec.rules[0].matches[0].method', 'must be one of'],
  ['filter field missing', filter({ type: 'RequestHeaderModifier' }), 'spec.rules[0].filters[0].requestHeaderModifier', 'required for filter type'],
  ['filter field of another type', filter({ type: 'RequestHeaderModifier', requestHeaderModifier: {}, urlRewrite: {} }), 'spec.rules[0].filters[0].urlRewrite', 'must not be set'],
  ['ExtensionRef refused', filter({ type: 'ExtensionRef', extensionRef: { group: 'g', kind: 'K', name: 'n' } }), 'spec.rules[0].filters[0].extensionRef', 'not supported by Aviary yet'],
  ['redirect status', rule({ backendRefs: [], filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 304 } }] }), 'spec.rules[0].filters[0].requestRedirect.statusCode', 'must be 301, 302, 303, 307 or 308'],
  ['redirect with backends', filter({ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }), 'spec.rules[0].backendRefs', 'must not have backendRefs'],
  ['redirect ReplacePrefixMatch needs prefix matches', rule({ backendRefs: [], matches: [{ path: { type: 'Exact', value: '/a' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/x' } } }] }), 'spec.rules[0].filters[0].requestRedirect.path', 'PathPrefix'],
  ['rewrite and redirect together', rule({ backendRefs: [], filters: [{ type: 'RequestRedirect', requestRedirect: {} }, { type: 'URLRewrite', urlRewrite: {} }] }), 'spec.rules[0].filters', 'cannot be used together'],
  ['ReplacePrefixMatch needs prefix matches', rule({ matches: [{ path: { type: 'Exact', value: '/a' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } }] }), 'spec.rules[0].filters[0].urlRewrite.path', 'PathPrefix'],
  ['ReplaceFullPath value missing', filter({ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath' } } }), 'spec.rules[0].filters[0].urlRewrite.path.replaceFullPath', 'required'],
  ['filter twice', rule({ filters: [{ type: 'URLRewrite', urlRewrite: {} }, { type: 'URLRewrite', urlRewrite: {} }] }), 'spec.rules[0].filters[1].type', 'at most once'],
  ['mirror percent and fraction', filter({ type: 'RequestMirror', requestMirror: { backendRef: { name: 'm', port: 80 }, percent: 5, fraction: { numerator: 1 } } }), 'spec.rules[0].filters[0].requestMirror', 'only one of percent and fraction'],
  ['backend without port', rule({ backendRefs: [{ name: 'svc' }] }), 'spec.rules[0].backendRefs[0].port', 'port is required'],
  ['backend weight too large', rule({ backendRefs: [{ name: 'svc', port: 80, weight: 1000001 }] }), 'spec.rules[0].backendRefs[0].weight', ''],
  ['per-backend filter other than a header modifier refused', rule({ backendRefs: [{ name: 'svc', port: 80, filters: [{ type: 'URLRewrite', urlRewrite: {} }] }] }), 'spec.rules[0].backendRefs[0].filters[0].type', 'not supported by Aviary yet'],
  ['per-backend header modifier checked', rule({ backendRefs: [{ name: 'svc', port: 80, filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'bad name', value: 'x' }] } }] }] }), 'spec.rules[0].backendRefs[0].filters[0].requestHeaderModifier.set[0].name', ''],
  ['backendRequest longer than request', rule({ timeouts: { request: '1s', backendRequest: '1500ms' } }), 'spec.rules[0].timeouts.backendRequest', 'cannot be longer than request timeout (1s)'],
  ['bad backendRequest timeout', rule({ timeouts: { backendRequest: 'soon' } }), 'spec.rules[0].timeouts.backendRequest', 'invalid duration'],
  ['bad request timeout', rule({ timeouts: { request: '10 seconds' } }), 'spec.rules[0].timeouts.request', 'invalid duration'],
  ['experimental retry field', rule({ retry: { attempts: 2 } }), 'spec.rules[0].retry', 'unknown field'],
  ['GRPCRoute method match empty', { apiVersion: v1, kind: 'GRPCRoute', metadata: meta, spec: { rules: [{ matches: [{ method: {} }] }] } }, 'spec.rules[0].matches[0].method', 'one or both'],
  ['GRPCRoute bad service name', { apiVersion: v1, kind: 'GRPCRoute', metadata: meta, spec: { rules: [{ matches: [{ method: { service: 'a/b' } }] }] } }, 'spec.rules[0].matches[0].method.service', 'invalid gRPC service name'],
];

describe('Gateway API validation names the field path', () => {
  it.each(cases)('%s', (_what, resource, path, message) => {
    const errors = validate(resource).errors;
    const hit = errors.find((e) => e.path === path && e.message.includes(message));
    expect(hit, JSON.stringify(errors)).toBeDefined();
  });

  it('accepts a Gateway with HTTP and HTTPS listeners, and a route with every implemented filter', () => {
    expect(validate(gw({ listeners: [http, { name: 'https', port: 443, protocol: 'HTTPS', hostname: '*.example.com', tls: { certificateRefs: [{ name: 'cert' }] } }] })).errors).toEqual([]);
    const route = rule({
      matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: 'GET', headers: [{ name: 'x-env', value: 'canary' }], queryParams: [{ name: 'v', type: 'RegularExpression', value: '[0-9]+' }] }],
      filters: [
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'a', value: '1' }], add: [{ name: 'b', value: '2' }], remove: ['c'] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'd', value: '4' }] } },
        { type: 'URLRewrite', urlRewrite: { hostname: 'example.org', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } },
        { type: 'RequestMirror', requestMirror: { backendRef: { name: 'mirror', port: 80 }, fraction: { numerator: 1, denominator: 10 } } },
        { type: 'CORS', cors: { allowOrigins: ['https://*.example.com', 'http://localhost:3000'], allowMethods: ['GET', 'POST'], allowHeaders: ['x-a'], exposeHeaders: ['x-b'], maxAge: 60, allowCredentials: true } },
      ],
      timeouts: { request: '5s', backendRequest: '5s' },
    });
    expect(validate(route).errors).toEqual([]);
    // Several mirrors (HTTPRouteRequestMirror, each its own policy); backendRequest alone, or under a disabled ("0s") request timeout.
    const mirror = (name: string) => ({ type: 'RequestMirror', requestMirror: { backendRef: { name, port: 80 } } });
    expect(validate(rule({ filters: [mirror('m1'), mirror('m2'), mirror('m3')] })).errors).toEqual([]);
    for (const timeouts of [{ backendRequest: '500ms' }, { backendRequest: '0s' }, { request: '0s', backendRequest: '10s' }]) expect(validate(rule({ timeouts })).errors).toEqual([]);
    // Every redirect code of the CRD's enum (Istio's redirectCode accepts the same five).
    for (const statusCode of [301, 302, 303, 307, 308]) expect(validate(rule({ backendRefs: [], filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode } }] })).errors).toEqual([]);
    // Wildcards with credentials are valid (the proxy echoes the request's origin, method and headers).
    const wildcards = { type: 'CORS', cors: { allowOrigins: ['*'], allowMethods: ['*'], allowHeaders: ['*'], allowCredentials: true } };
    expect(validate(filter(wildcards)).errors).toEqual([]);
    expect(validate(filter({ type: 'CORS', cors: { allowOrigins: ['https://*', 'http://*.example.com:8080'] } })).errors).toEqual([]);
    expect(validate(gw({ infrastructure: { labels: { team: 'web', 'example.com/tier': '' }, annotations: { 'example.com/owner': 'a b c' }, parametersRef: { group: '', kind: 'ConfigMap', name: 'gw-params' } } })).errors).toEqual([]);
    // An address without a value asks for an assigned one (GatewayAddressEmpty).
    expect(validate(gw({ addresses: [{ type: 'IPAddress' }] })).errors).toEqual([]);
    expect(validate(gw({ addresses: [{}] })).errors).toEqual([]);
    // A backend of another kind is valid (the model reports ResolvedRefs=False InvalidKind).
    expect(validate(rule({ backendRefs: [{ kind: 'ServiceImport', group: 'multicluster.x-k8s.io', name: 'svc', port: 80 }] })).errors).toEqual([]);
  });
});
