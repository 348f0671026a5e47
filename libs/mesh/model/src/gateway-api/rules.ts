import { parseDuration, type GRPCRouteRule, type HTTPMatchRequest, type HTTPRoute, type HTTPRouteFilter, type HTTPRouteMatch, type HTTPRouteRule, type HTTPRouteDestination, type StringMatch } from '@aviary/mesh-api';

/**
 * Gateway API route rules → Istio VirtualService HTTP routes (the one routing model both front
 * ends share). Pure. One Istio route per Gateway API match, so that routes of every HTTPRoute
 * bound to a hostname can be ordered by the Gateway API's precedence (`precedenceKey`).
 */

/** A backend as resolved by the converter: the service host and port, or why it cannot be used. */
export interface ResolvedBackend {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** The backendRef's own filters (validation admits only RequestHeaderModifier and ResponseHeaderModifier there). */
  readonly filters?: readonly unknown[];
}

/** One generated route and the key that orders it among the routes of its hostname. */
export interface OrderedRoute {
  readonly route: HTTPRoute;
  /** Sorts ascending: exact paths, then longer prefixes, then method, headers, query params, then the older route, then route name and rule order. */
  readonly order: readonly (number | string)[];
}

export interface RuleContext {
  /** `namespace/name` of the route, for tie-breaking and route names. */
  readonly routeKey: string;
  /** The route's creationTimestamp ('' when unknown): the older route wins a tie. */
  readonly createdAt: string;
  readonly ruleIndex: number;
  readonly backends: readonly ResolvedBackend[];
  /** Backends named by the rule that could not be resolved (counted in the weights as 500s). */
  readonly invalidWeight: number;
  /** The rule's RequestMirror filters whose backend resolves, in filter order. */
  readonly mirrors?: readonly { readonly host: string; readonly port: number; readonly percent: number }[];
  /** The Gateway listener the routes serve (absent for mesh parents): a redirect's port defaults from it. */
  readonly listener?: { readonly port: number; readonly protocol: string };
}

const WELL_KNOWN_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * The port a RequestRedirect sends to when it names none (Gateway API): the well-known port of
 * the redirect's scheme when it sets one, else the listener's port. Envoy leaves a port out of
 * Location only when told none: with a hostname it then drops the request's port, without one it
 * keeps the request's. So the port is explicit whenever the request's port (the listener's) is not
 * already the answer: a non-default listener port, or a scheme change away from it.
 */
function redirectPort(rd: { scheme?: string; port?: number }, listener: RuleContext['listener']): number | undefined {
  if (rd.port !== undefined) return rd.port;
  if (listener === undefined) return undefined;
  const listenerScheme = listener.protocol === 'HTTPS' ? 'https' : 'http';
  const listenerDefault = listener.port === WELL_KNOWN_PORTS[listenerScheme];
  if (rd.scheme === undefined) return listenerDefault ? undefined : listener.port;
  return listenerDefault ? undefined : WELL_KNOWN_PORTS[rd.scheme.toLowerCase()];
}

/** A CORS allowed origin: `*`, exact, or with a `*` in place of leading host labels. */
function originMatch(origin: string): StringMatch {
  if (origin === '*') return { regex: '.*' };
  if (!origin.includes('*')) return { exact: origin };
  return { regex: origin.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') };
}

function stringMatch(type: string | undefined, value: string): StringMatch {
  return type === 'RegularExpression' ? { regex: value } : { exact: value };
}

interface PathPiece {
  readonly uri: StringMatch;
  /** For a ReplacePrefixMatch rewrite: the replacement for this piece's matched prefix. */
  readonly prefixRewrite?: string;
}

/**
 * The Istio URI matches of one Gateway API path match. PathPrefix matches whole path elements
 * (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`): `/foo` becomes exact `/foo` plus prefix
 * `/foo/`. With a ReplacePrefixMatch rewrite each piece carries its own replacement.
 */
function pathPieces(m: HTTPRouteMatch, replacePrefix: string | undefined): PathPiece[] {
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  if (type === 'Exact') return [{ uri: { exact: value } }];
  if (type === 'RegularExpression') return [{ uri: { regex: value } }];
  const trimmed = value.replace(/\/+$/, '');
  const rewriteTo = (withSlash: boolean) => {
    if (replacePrefix === undefined) return undefined;
    const base = replacePrefix.replace(/\/+$/, '');
    return withSlash ? `${base}/` : base === '' ? '/' : base;
  };
  if (trimmed === '') {
    const r = rewriteTo(true);
    return [{ uri: { prefix: '/' }, ...(r === undefined ? {} : { prefixRewrite: r }) }];
  }
  const exact = rewriteTo(false);
  const prefix = rewriteTo(true);
  return [
    { uri: { exact: trimmed }, ...(exact === undefined ? {} : { prefixRewrite: exact }) },
    { uri: { prefix: `${trimmed}/` }, ...(prefix === undefined ? {} : { prefixRewrite: prefix }) },
  ];
}

function headerOps(f: { set?: { name: string; value: string }[]; add?: { name: string; value: string }[]; remove?: string[] }) {
  const map = (list: { name: string; value: string }[] | undefined) => (list === undefined ? undefined : Object.fromEntries(list.map((h) => [h.name.toLowerCase(), h.value])));
  const set = map(f.set);
  const add = map(f.add);
  return { ...(set && { set }), ...(add && { add }), ...(f.remove && { remove: f.remove.map((h) => h.toLowerCase()) }) };
}

/** The Istio header operations of RequestHeaderModifier and ResponseHeaderModifier filters (of a rule or a backendRef). */
function headerFilters(filters: readonly unknown[]): { request?: ReturnType<typeof headerOps>; response?: ReturnType<typeof headerOps> } {
  const headers: { request?: ReturnType<typeof headerOps>; response?: ReturnType<typeof headerOps> } = {};
  for (const f of filters as readonly HTTPRouteFilter[]) {
    if (f.type === 'RequestHeaderModifier' && f.requestHeaderModifier) headers.request = headerOps(f.requestHeaderModifier);
    if (f.type === 'ResponseHeaderModifier' && f.responseHeaderModifier) headers.response = headerOps(f.responseHeaderModifier);
  }
  return headers;
}

/** Whether a duration is zero ("0s", "0ms"): the Gateway API's way to disable a timeout. */
function isZero(d: string): boolean {
  return parseDuration(d) === 0;
}

/**
 * The Istio timeout fields of a rule's `timeouts`, as Istio. `request` bounds the whole exchange
 * (the route timeout). `backendRequest` bounds each request to a backend: the retries'
 * `perTryTimeout`, with the translator's default retry count (Envoy enforces a per-try timeout only
 * inside a retry policy); with no `request` timeout (absent or "0s") it bounds the route as well, so proxies
 * that ignore per-try timeouts (proxyless gRPC) enforce it too. Zero disables either.
 */
function timeoutFields(t: { request?: string; backendRequest?: string } | undefined): Pick<HTTPRoute, 'timeout' | 'retries'> {
  const request = t?.request;
  const backend = t?.backendRequest === undefined || isZero(t.backendRequest) ? undefined : t.backendRequest;
  const out: Pick<HTTPRoute, 'timeout' | 'retries'> = {};
  if (request !== undefined) out.timeout = request;
  if (backend !== undefined) {
    out.retries = { perTryTimeout: backend };
    if (request === undefined || isZero(request)) out.timeout = backend;
  }
  return out;
}

/** The Istio route fields of a rule's filters and backends (everything but the match). */
function actionOf(filters: readonly unknown[], ctx: RuleContext, timeouts: { request?: string; backendRequest?: string } | undefined): Partial<HTTPRoute> {
  const out: Partial<HTTPRoute> & Record<string, unknown> = {};
  let redirect = false;
  const headers = headerFilters(filters);
  for (const f of filters as readonly HTTPRouteFilter[]) {
    if (f.type === 'RequestRedirect' && f.requestRedirect) {
      const rd = f.requestRedirect;
      redirect = true;
      const port = redirectPort(rd, ctx.listener);
      out.redirect = {
        ...(rd.scheme !== undefined && { scheme: rd.scheme }),
        ...(rd.hostname !== undefined && { authority: rd.hostname }),
        ...(port !== undefined && { port }),
        ...(rd.path?.type === 'ReplaceFullPath' && rd.path.replaceFullPath !== undefined && { uri: rd.path.replaceFullPath }),
        redirectCode: rd.statusCode ?? 302,
      };
    }
    if (f.type === 'CORS' && f.cors) {
      const c = f.cors;
      out.corsPolicy = {
        ...(c.allowOrigins && { allowOrigins: c.allowOrigins.map(originMatch) }),
        ...(c.allowMethods && { allowMethods: c.allowMethods }),
        ...(c.allowHeaders && { allowHeaders: c.allowHeaders }),
        ...(c.exposeHeaders && { exposeHeaders: c.exposeHeaders }),
        ...(c.allowCredentials !== undefined && { allowCredentials: c.allowCredentials }),
        maxAge: `${c.maxAge ?? 5}s`,
        // A preflight no allowed origin matches is answered by the proxy without CORS headers, not
        // forwarded to the backend (the filter's semantics: the route's CORS policy decides preflights).
        unmatchedPreflights: 'IGNORE',
      };
    }
    if (f.type === 'URLRewrite' && f.urlRewrite) {
      const rw = f.urlRewrite;
      out.rewrite = {
        ...(rw.hostname !== undefined && { authority: rw.hostname }),
        ...(rw.path?.type === 'ReplaceFullPath' && rw.path.replaceFullPath !== undefined && { uriRegexRewrite: { match: '^.*$', rewrite: rw.path.replaceFullPath } }),
      };
    }
  }
  if (headers.request || headers.response) out.headers = headers;
  const mirrors = ctx.mirrors ?? [];
  if (mirrors.length === 1) {
    const m = mirrors[0]!;
    out.mirror = { host: m.host, port: { number: m.port } };
    if (m.percent !== 100) out.mirrorPercentage = { value: m.percent };
  } else if (mirrors.length > 1) {
    // Several RequestMirror filters: one mirror policy each (Envoy's request_mirror_policies).
    out.mirrors = mirrors.map((m) => ({ destination: { host: m.host, port: { number: m.port } }, ...(m.percent !== 100 && { percentage: { value: m.percent } }) }));
  }
  if (redirect) return out;
  const total = ctx.backends.reduce((s, b) => s + b.weight, 0);
  if (total === 0) {
    // No usable backend: the Gateway API answers 500.
    out.directResponse = { status: 500 };
    delete out.mirror;
    delete out.mirrorPercentage;
    delete out.mirrors;
    return out;
  }
  // Weight-0 backends stay, with weight 0 (no traffic): their clusters then stay on the proxy while
  // a canary moves the weights, so a step never names a cluster the proxy is still adding or has
  // just removed (Envoy answers those requests 503, cluster_not_found).
  const route: HTTPRouteDestination[] = ctx.backends.map((b) => {
    // A backendRef's header filters apply to the requests sent to it and their responses only: the destination's headers.
    const headers = headerFilters(b.filters ?? []);
    return { destination: { host: b.host, port: { number: b.port } }, weight: b.weight, ...((headers.request || headers.response) && { headers }) };
  });
  if (ctx.invalidWeight > 0) {
    // The share of backends that cannot be resolved gets 500s: Envoy answers for a cluster that does not exist.
    route.push({ destination: { host: 'invalid-backend.aviary.internal', port: { number: 1 } }, weight: ctx.invalidWeight });
  }
  out.route = route;
  Object.assign(out, timeoutFields(timeouts));
  return out;
}

function orderOf(uri: StringMatch, m: { method?: string; headers?: readonly unknown[]; queryParams?: readonly unknown[] }, ctx: RuleContext, matchIndex: number): (number | string)[] {
  const kind = uri.exact !== undefined ? 0 : uri.prefix !== undefined ? 1 : 2;
  const length = (uri.exact ?? uri.prefix ?? uri.regex ?? '').length;
  // Ascending sort: negate the "more is first" counts.
  return [kind, -length, m.method === undefined ? 1 : 0, -(m.headers?.length ?? 0), -(m.queryParams?.length ?? 0), ctx.createdAt, ctx.routeKey, ctx.ruleIndex, matchIndex];
}

/** The Istio routes of one HTTPRoute rule, each with its precedence key. */
export function httpRuleRoutes(rule: HTTPRouteRule, ctx: RuleContext): OrderedRoute[] {
  const filters = rule.filters ?? [];
  const action = actionOf(filters, ctx, rule.timeouts);
  const modifier = filters.find((f) => f.type === 'URLRewrite')?.urlRewrite?.path ?? filters.find((f) => f.type === 'RequestRedirect')?.requestRedirect?.path;
  const replacePrefix = modifier?.type === 'ReplacePrefixMatch' ? (modifier.replacePrefixMatch ?? '/') : undefined;
  const matches = rule.matches !== undefined && rule.matches.length > 0 ? rule.matches : [{}];
  const out: OrderedRoute[] = [];
  matches.forEach((m, i) => {
    const rest: HTTPMatchRequest = {
      ...(m.method !== undefined && { method: { exact: m.method } }),
      ...(m.headers && m.headers.length > 0 && { headers: Object.fromEntries(m.headers.map((h) => [h.name.toLowerCase(), stringMatch(h.type, h.value)])) }),
      ...(m.queryParams && m.queryParams.length > 0 && { queryParams: Object.fromEntries(m.queryParams.map((q) => [q.name, stringMatch(q.type, q.value)])) }),
    };
    for (const [j, piece] of pathPieces(m, replacePrefix).entries()) {
      const name = `${ctx.routeKey.replace('/', '.')}.${rule.name ?? ctx.ruleIndex}.${i}${j === 0 ? '' : `.${j}`}`;
      const route: HTTPRoute = { name, match: [{ uri: piece.uri, ...rest }], ...action } as HTTPRoute;
      if (piece.prefixRewrite !== undefined && action.rewrite !== undefined) route.rewrite = { ...action.rewrite, uri: piece.prefixRewrite };
      if (piece.prefixRewrite !== undefined && action.redirect !== undefined) route.redirect = { ...action.redirect, prefixRewrite: piece.prefixRewrite };
      out.push({ route, order: [...orderOf(piece.uri, m, ctx, i), j] });
    }
  });
  return out;
}

/** gRPC paths are `/<service>/<method>`. */
function grpcPath(m: NonNullable<GRPCRouteRule['matches']>[number]['method']): StringMatch {
  if (m === undefined) return { prefix: '/' };
  const regex = (m.type ?? 'Exact') === 'RegularExpression';
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (!regex && m.service !== undefined && m.method !== undefined) return { exact: `/${m.service}/${m.method}` };
  if (!regex && m.service !== undefined) return { prefix: `/${m.service}/` };
  const service = m.service === undefined ? '[^/]+' : regex ? m.service : esc(m.service);
  const method = m.method === undefined ? '[^/]+' : regex ? m.method : esc(m.method);
  return { regex: `/${service}/${method}` };
}

/** The Istio routes of one GRPCRoute rule. */
export function grpcRuleRoutes(rule: GRPCRouteRule, ctx: RuleContext): OrderedRoute[] {
  const action = actionOf(rule.filters ?? [], ctx, undefined);
  const matches = rule.matches !== undefined && rule.matches.length > 0 ? rule.matches : [{}];
  return matches.map((m, i) => {
    const uri = grpcPath(m.method);
    const match: HTTPMatchRequest = {
      uri,
      ...(m.headers && m.headers.length > 0 && { headers: Object.fromEntries(m.headers.map((h) => [h.name.toLowerCase(), stringMatch(h.type, h.value)])) }),
    };
    const route = { name: `${ctx.routeKey.replace('/', '.')}.${rule.name ?? ctx.ruleIndex}.${i}`, match: [match], ...action } as HTTPRoute;
    return { route, order: orderOf(uri, { headers: m.headers }, ctx, i) };
  });
}

/** Sorts routes by their precedence keys. */
export function byPrecedence(a: OrderedRoute, b: OrderedRoute): number {
  for (let i = 0; i < Math.max(a.order.length, b.order.length); i++) {
    const x = a.order[i];
    const y = b.order[i];
    if (x === y) continue;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}
