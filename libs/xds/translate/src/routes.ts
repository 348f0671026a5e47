import { parseDuration, type HTTPMatchRequest, type HTTPRoute, type HTTPRouteDestination, type Headers } from '@aviary/mesh-api';
import { labelsMatch, resolveHost, type BoundVirtualService, type Service } from '@aviary/mesh-model';
import { clusterName, effectivePolicy, type Ctx } from './context';
import { duration, durationMs, fractionalPercent, N, prune, regexMatcher, stringMatcher, T, typed, wrap, type Msg } from './envoy';

/** Where the routes are generated: a sidecar/proxyless vhost for a port, or a gateway listener. */
export interface RouteScope {
  /** The listener port the route serves (VirtualService `match.port` filters on it). */
  readonly port: number;
  /** `mesh`, or the `ns/name` of the gateway being translated. */
  readonly gateway: string;
}

/** Clusters referenced by translated routes: `outbound|port|subset|host`. */
export type ClusterRefs = Set<string>;

const grpcStatus: Readonly<Record<string, number>> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

const redirectCodes: Readonly<Record<number, string>> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

/**
 * Retry on another host, as Istio: `host_selection_retry_max_attempts` only counts host
 * re-selections that a `retry_host_predicate` rejects, so the two go together (alone it is a
 * no-op).
 */
function otherHostOnRetry(): Msg {
  return { retry_host_predicate: [{ name: N.previousHosts, typed_config: typed(T.PreviousHostsPredicate) }], host_selection_retry_max_attempts: 5 };
}

const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
/** Istio's default retriable status: a 503 (e.g. the server-side sidecar finding its app gone during a rollout) is tried on another host. */
const DEFAULT_RETRIABLE_CODES = [503];

/** Istio's default retry policy for sidecars and routers. */
export function defaultRetryPolicy(): Msg {
  return { retry_on: DEFAULT_RETRY_ON, num_retries: wrap(2), retriable_status_codes: DEFAULT_RETRIABLE_CODES, ...otherHostOnRetry() };
}

/** The route a host without VirtualService gets: everything to the default cluster. */
export function defaultRoute(ctx: Ctx, service: Service, port: number, refs: ClusterRefs): Msg {
  const cluster = clusterName('outbound', port, '', service.hostname);
  refs.add(cluster);
  const proxyless = ctx.proxy.kind === 'proxyless';
  return prune({
    name: 'default',
    match: { prefix: '/' },
    route: {
      cluster,
      ...(!proxyless && { timeout: durationMs(0), retry_policy: defaultRetryPolicy() }),
      ...hashPolicy(ctx, service.hostname, port),
    },
  });
}

function headerMatchers(headers: Record<string, { exact?: string; prefix?: string; regex?: string }> | undefined, invert: boolean): Msg[] {
  if (!headers) return [];
  return Object.keys(headers)
    .sort()
    .map((name) => {
      const m = stringMatcher(headers[name]);
      return { name, ...(m ? { string_match: m } : { present_match: true }), ...(invert && { invert_match: true }) };
    });
}

/** RouteMatch for one HTTPMatchRequest (or match-all). */
function routeMatch(m: HTTPMatchRequest | undefined): Msg {
  const out: Msg = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.prefix !== undefined) out.prefix = uri.prefix;
  else if (uri?.regex !== undefined) out.safe_regex = regexMatcher(uri.regex);
  else out.prefix = '/';
  if (m?.ignoreUriCase) out.case_sensitive = wrap(false);
  const headers = [
    ...headerMatchers(m?.headers, false),
    ...headerMatchers(m?.withoutHeaders, true),
    ...headerMatchers(m?.method && { ':method': m.method }, false),
    ...headerMatchers(m?.authority && { ':authority': m.authority }, false),
    ...headerMatchers(m?.scheme && { ':scheme': m.scheme }, false),
  ];
  if (headers.length > 0) out.headers = headers;
  if (m?.queryParams) {
    out.query_parameters = Object.keys(m.queryParams)
      .sort()
      .map((name) => {
        const sm = stringMatcher(m.queryParams![name]);
        return { name, ...(sm ? { string_match: sm } : { present_match: true }) };
      });
  }
  return out;
}

/**
 * Whether a match condition applies to this proxy and listener (Istio filters these at generation
 * time): `port`, `gateways`, `sourceLabels` and `sourceNamespace`, the same for HTTP, TLS and TCP matches.
 */
export function matchApplies(ctx: Ctx, scope: RouteScope, m: Pick<HTTPMatchRequest, 'port' | 'gateways' | 'sourceLabels' | 'sourceNamespace'>): boolean {
  // Port 0 is proto3's unset value: no port condition (as Istio reads it).
  if (m.port !== undefined && m.port !== 0 && m.port !== scope.port) return false;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.some((g) => g === scope.gateway || (scope.gateway !== 'mesh' && scope.gateway.endsWith(`/${g}`)))) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, ctx.proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== ctx.proxy.namespace) return false;
  return true;
}

function headerValues(ops: Headers['request'], defaultAction?: string): { add: Msg[]; remove: string[] } {
  const add: Msg[] = [];
  for (const [key, value] of Object.entries(ops?.set ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) add.push({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  for (const [key, value] of Object.entries(ops?.add ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) add.push({ header: { key, value }, append_action: defaultAction ?? 'APPEND_IF_EXISTS_OR_ADD' });
  return { add, remove: [...(ops?.remove ?? [])] };
}

function headerOps(h: Headers | undefined): Msg {
  if (!h) return {};
  const req = headerValues(h.request);
  const res = headerValues(h.response);
  return {
    request_headers_to_add: req.add,
    request_headers_to_remove: req.remove,
    response_headers_to_add: res.add,
    response_headers_to_remove: res.remove,
  };
}

export interface Dest {
  readonly cluster: string;
  readonly host: string;
  readonly port: number;
}

export function resolveDestination(ctx: Ctx, vs: BoundVirtualService, d: { host: string; subset?: string; port?: { number?: number } }, scope: RouteScope, refs: ClusterRefs): Dest | undefined {
  const host = resolveHost(d.host, vs.entry.namespace, ctx.snapshot.options.domainSuffix);
  const service = ctx.snapshot.services.get(host);
  let port = d.port?.number;
  if (port === undefined) {
    if (service && service.ports.length === 1) port = service.ports[0]!.number;
    else if (service?.ports.some((p) => p.number === scope.port)) port = scope.port;
    else if (!service) port = scope.port;
  }
  if (port === undefined) {
    ctx.problem(`${vs.entry.key}: destination ${host} has several ports; set destination.port`);
    return undefined;
  }
  if (!service) ctx.problem(`${vs.entry.key}: destination host ${host} is not a known service`);
  else if (!ctx.isVisible(host)) ctx.problem(`${vs.entry.key}: destination host ${host} is not visible to this proxy`);
  if (d.subset && service) {
    const dr = ctx.destinationRule(service);
    if (!dr?.spec.subsets?.some((s) => s.name === d.subset)) ctx.problem(`${vs.entry.key}: subset ${d.subset} of ${host} is not defined by a DestinationRule`);
  }
  const cluster = clusterName('outbound', port, d.subset ?? '', host);
  refs.add(cluster);
  return { cluster, host, port };
}

/** hash_policy for a destination whose DestinationRule asks for consistent hashing. */
function hashPolicy(ctx: Ctx, host: string, port: number, subset?: string): Msg {
  const service = ctx.snapshot.services.get(host);
  if (!service) return {};
  const ch = effectivePolicy(ctx.destinationRule(service), port, subset).loadBalancer?.consistentHash;
  if (!ch) return {};
  if (ch.httpHeaderName) return { hash_policy: [{ header: { header_name: ch.httpHeaderName } }] };
  if (ch.httpCookie) {
    const ttl = duration(ch.httpCookie.ttl);
    return { hash_policy: [{ cookie: { name: ch.httpCookie.name, ...(ttl && { ttl }), ...(ch.httpCookie.path && { path: ch.httpCookie.path }) } }] };
  }
  if (ch.useSourceIp) return { hash_policy: [{ connection_properties: { source_ip: true } }] };
  if (ch.httpQueryParameterName) return { hash_policy: [{ query_parameter: { name: ch.httpQueryParameterName } }] };
  return {};
}

function retryPolicy(ctx: Ctx, r: HTTPRoute): Msg | undefined {
  const proxyless = ctx.proxy.kind === 'proxyless';
  if (!r.retries) return proxyless ? undefined : defaultRetryPolicy();
  if (r.retries.attempts !== undefined && r.retries.attempts <= 0) return undefined;
  const tokens = (r.retries.retryOn ?? (proxyless ? 'unavailable' : DEFAULT_RETRY_ON)).split(',').map((t) => t.trim()).filter(Boolean);
  // As Istio: status codes named in retryOn, else the default 503 when retryOn is not given.
  const named = tokens.filter((t) => /^\d+$/.test(t)).map(Number);
  const codes = named.length > 0 || r.retries.retryOn !== undefined || proxyless ? named : DEFAULT_RETRIABLE_CODES;
  const on = tokens.filter((t) => !/^\d+$/.test(t));
  if (codes.length > 0 && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
  const perTry = duration(r.retries.perTryTimeout);
  const backoff = duration(r.retries.backoff);
  return {
    retry_on: on.join(','),
    num_retries: wrap(r.retries.attempts ?? 2),
    ...(perTry && { per_try_timeout: perTry }),
    ...(codes.length > 0 && { retriable_status_codes: codes }),
    ...(backoff && { retry_back_off: { base_interval: backoff } }),
    ...(!proxyless && otherHostOnRetry()),
  };
}

/**
 * VirtualService `corsPolicy` as the CORS filter's per-route CorsPolicy, as Istio: `allowOrigins`
 * matchers (and the deprecated exact `allowOrigin`), lists joined with `,`, `maxAge` in whole
 * seconds, `unmatchedPreflights: IGNORE` stops forwarding preflights no origin matches.
 */
function corsPolicy(c: NonNullable<HTTPRoute['corsPolicy']>): Msg {
  const origins = [...(c.allowOrigins ?? []).flatMap((o) => stringMatcher(o) ?? []), ...(c.allowOrigin ?? []).map((o) => (o === '*' ? { safe_regex: regexMatcher('.*') } : { exact: o }))];
  const join = (list: string[] | undefined) => (list && list.length > 0 ? list.join(',') : undefined);
  const maxAgeMs = c.maxAge === undefined ? undefined : parseDuration(c.maxAge);
  return typed(
    T.CorsPolicy,
    prune({
      allow_origin_string_match: origins,
      allow_methods: join(c.allowMethods),
      allow_headers: join(c.allowHeaders),
      expose_headers: join(c.exposeHeaders),
      max_age: maxAgeMs === undefined ? undefined : String(Math.floor(maxAgeMs / 1000)),
      allow_credentials: c.allowCredentials === undefined ? undefined : wrap(c.allowCredentials),
      forward_not_matching_preflights: c.unmatchedPreflights === 'IGNORE' ? wrap(false) : c.unmatchedPreflights === 'FORWARD' ? wrap(true) : undefined,
    }),
  );
}

/** HTTPFault for typed_per_filter_config (percentages per million, as Istio). */
function fault(r: HTTPRoute): Msg | undefined {
  const f = r.fault;
  if (!f || (!f.delay && !f.abort)) return undefined;
  const out: Msg = {};
  if (f.delay) {
    const fixed = duration(f.delay.fixedDelay ?? f.delay.exponentialDelay);
    const pct = f.delay.percentage?.value ?? f.delay.percent ?? 100;
    if (fixed) out.delay = { fixed_delay: fixed, percentage: fractionalPercent(pct) };
  }
  if (f.abort) {
    const pct = fractionalPercent(f.abort.percentage?.value ?? 100);
    if (f.abort.httpStatus !== undefined) out.abort = { http_status: f.abort.httpStatus, percentage: pct };
    else if (f.abort.grpcStatus !== undefined) out.abort = { grpc_status: grpcStatus[f.abort.grpcStatus] ?? (Number(f.abort.grpcStatus) || 2), percentage: pct };
  }
  return Object.keys(out).length === 0 ? undefined : typed(T.HTTPFault, out);
}

function mirrors(ctx: Ctx, vs: BoundVirtualService, r: HTTPRoute, scope: RouteScope, refs: ClusterRefs): Msg[] {
  const list: { destination: HTTPRouteDestination['destination']; percent: number }[] = [];
  if (r.mirror) list.push({ destination: r.mirror, percent: r.mirrorPercentage?.value ?? r.mirrorPercent ?? 100 });
  for (const m of r.mirrors ?? []) list.push({ destination: m.destination, percent: m.percentage?.value ?? 100 });
  return list.flatMap((m) => {
    const d = resolveDestination(ctx, vs, m.destination, scope, refs);
    return d ? [{ cluster: d.cluster, runtime_fraction: { default_value: fractionalPercent(m.percent) } }] : [];
  });
}

/** Whether a route's destination gets traffic: the only one whatever its weight, else one of weight > 0. */
export function getsTraffic(route: readonly { readonly weight?: number }[], d: { readonly weight?: number }): boolean {
  return route.length === 1 || (d.weight ?? 0) > 0;
}

/**
 * The destinations of an HTTP, TCP or TLS route that get traffic (`getsTraffic`), each with what
 * it resolves to. Every destination is resolved, weight 0 included, so each keeps its cluster on
 * the proxy (as Istio's gateways get a cluster for every destination): a weight change then only
 * rewrites the route. Dropping a weight-0 destination's cluster instead would make each canary
 * step add or remove one, and Envoy answers 503 (NC, cluster_not_found) for the share routed to
 * a cluster it is still warming (CDS, then its EDS) or has already removed when the route arrives.
 */
export function trafficDestinations<D extends { readonly destination: Parameters<typeof resolveDestination>[2]; readonly weight?: number }>(
  ctx: Ctx,
  vs: BoundVirtualService,
  route: readonly D[],
  scope: RouteScope,
  refs: ClusterRefs,
): { d: D; x: Dest }[] {
  return route.flatMap((d) => {
    const x = resolveDestination(ctx, vs, d.destination, scope, refs);
    return x && getsTraffic(route, d) ? [{ d, x }] : [];
  });
}

function routeAction(ctx: Ctx, vs: BoundVirtualService, r: HTTPRoute, scope: RouteScope, refs: ClusterRefs, firstMatch: HTTPMatchRequest | undefined): Msg | undefined {
  const resolved = trafficDestinations(ctx, vs, r.route ?? [], scope, refs);
  if (resolved.length === 0) {
    ctx.problem(`${vs.entry.key}: route ${r.name ?? '(unnamed)'} has no usable destination`);
    return undefined;
  }
  const proxyless = ctx.proxy.kind === 'proxyless';
  const action: Msg = {};
  if (resolved.length === 1 && resolved[0]!.d.headers === undefined) {
    action.cluster = resolved[0]!.x.cluster;
  } else {
    // A destination's own header operations live on its weighted cluster, so one destination with headers gets one too.
    action.weighted_clusters = {
      clusters: resolved.map(({ d, x }) => ({ name: x.cluster, weight: wrap(resolved.length === 1 ? 100 : (d.weight ?? 0)), ...headerOps(d.headers) })),
    };
  }
  const timeout = duration(r.timeout);
  if (timeout) {
    action.timeout = timeout;
    action.max_stream_duration = { max_stream_duration: timeout, grpc_timeout_header_max: timeout };
  } else if (!proxyless) {
    action.timeout = durationMs(0);
  }
  const retry = retryPolicy(ctx, r);
  if (retry) action.retry_policy = retry;
  const mirror = mirrors(ctx, vs, r, scope, refs);
  if (mirror.length > 0) action.request_mirror_policies = mirror;
  if (r.rewrite) {
    if (r.rewrite.uriRegexRewrite?.match !== undefined) {
      action.regex_rewrite = { pattern: regexMatcher(r.rewrite.uriRegexRewrite.match), substitution: r.rewrite.uriRegexRewrite.rewrite ?? '' };
    } else if (r.rewrite.uri !== undefined) {
      if (firstMatch?.uri?.exact !== undefined || firstMatch?.uri?.regex !== undefined) {
        action.regex_rewrite = { pattern: regexMatcher('.*'), substitution: r.rewrite.uri };
      } else {
        action.prefix_rewrite = r.rewrite.uri;
      }
    }
    if (r.rewrite.authority !== undefined) action.host_rewrite_literal = r.rewrite.authority;
  }
  const first = resolved[0]!;
  Object.assign(action, hashPolicy(ctx, first.x.host, first.x.port, first.d.destination.subset));
  return action;
}

function redirect(r: HTTPRoute): Msg {
  const rd = r.redirect!;
  return {
    ...(rd.uri !== undefined && { path_redirect: rd.uri }),
    ...(rd.prefixRewrite !== undefined && { prefix_rewrite: rd.prefixRewrite }),
    ...(rd.authority !== undefined && { host_redirect: rd.authority }),
    ...(rd.port !== undefined && { port_redirect: rd.port }),
    ...(rd.scheme !== undefined && { scheme_redirect: rd.scheme }),
    response_code: redirectCodes[rd.redirectCode ?? 301] ?? 'MOVED_PERMANENTLY',
  };
}

function directResponse(r: HTTPRoute): Msg {
  const dr = r.directResponse!;
  const body = dr.body?.string !== undefined ? { inline_string: dr.body.string } : dr.body?.bytes !== undefined ? { inline_bytes: dr.body.bytes } : undefined;
  return { status: dr.status, ...(body && { body }) };
}

/**
 * Envoy routes for one VirtualService (in order): one route per applicable match condition, as
 * Istio generates them. Routes whose matches all filter out (port, gateway, source) are skipped.
 */
export function virtualServiceRoutes(ctx: Ctx, vs: BoundVirtualService, scope: RouteScope, refs: ClusterRefs): Msg[] {
  const out: Msg[] = [];
  for (const r of vs.entry.spec.http ?? []) {
    const matches = r.match && r.match.length > 0 ? r.match.filter((m) => matchApplies(ctx, scope, m)) : [undefined];
    if (matches.length === 0) continue;
    let action: Msg;
    if ((r.redirect || r.directResponse) && ctx.proxy.kind === 'proxyless') {
      ctx.problem(`${vs.entry.key}: route ${r.name ?? '(unnamed)'}: gRPC clients accept only forwarding routes; redirect/directResponse skipped`);
      continue;
    }
    if (r.redirect) action = { redirect: redirect(r) };
    else if (r.directResponse) action = { direct_response: directResponse(r) };
    else {
      const ra = routeAction(ctx, vs, r, scope, refs, matches[0]);
      if (!ra) continue;
      action = { route: ra };
    }
    const perFilter: Msg = {};
    const f = fault(r);
    if (f) perFilter[N.fault] = f;
    if (r.corsPolicy) {
      if (ctx.proxy.kind === 'proxyless') ctx.problem(`${vs.entry.key}: route ${r.name ?? '(unnamed)'}: gRPC clients have no CORS filter; corsPolicy applies to sidecars and gateways only`);
      else perFilter[N.cors] = corsPolicy(r.corsPolicy);
    }
    for (const m of matches) {
      out.push(
        prune({
          ...(r.name !== undefined && { name: r.name }),
          match: routeMatch(m),
          ...action,
          ...headerOps(r.headers),
          ...(m?.statPrefix !== undefined && ctx.proxy.kind !== 'proxyless' && { stat_prefix: m.statPrefix }),
          ...(Object.keys(perFilter).length > 0 && { typed_per_filter_config: perFilter }),
        }),
      );
    }
  }
  if (out.length === 0 && (vs.entry.spec.http ?? []).length > 0) ctx.problem(`${vs.entry.key}: no HTTP route applies on port ${scope.port} for ${scope.gateway}`);
  return out;
}
