import { compilePerFilterConfigs, type PerFilterConfig } from './filters';
import { compileRegex, headerEdits, headerMatchers, headerNames, queryParameterMatcher, regexMatcher, type HeaderEdit, type HeaderLookup, type HeaderPredicate } from './matchers';
import { arr, durationMs, fractionalPercent, invalid, num, obj, optObj, optStr, type Raw, str, wrappedBool, wrappedNum } from './raw';

export interface HeaderOps {
  readonly requestAdd: readonly HeaderEdit[];
  readonly requestRemove: readonly string[];
  readonly responseAdd: readonly HeaderEdit[];
  readonly responseRemove: readonly string[];
}

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
  readonly headers: HeaderOps;
}

export type RetryOn = '5xx' | 'gateway-error' | 'connect-failure' | 'reset' | 'retriable-4xx' | 'refused-stream' | 'retriable-status-codes';
const retryOnKnown = new Set<string>(['5xx', 'gateway-error', 'connect-failure', 'reset', 'retriable-4xx', 'refused-stream', 'retriable-status-codes']);

export interface RetryPolicy {
  readonly retryOn: ReadonlySet<RetryOn>;
  readonly numRetries: number;
  readonly perTryTimeoutMs: number | undefined;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  /** retry_host_predicate previous_hosts: prefer another endpoint on retry. */
  readonly avoidPreviousHosts: boolean;
}

export interface MirrorPolicy {
  readonly cluster: string;
  readonly fraction: number;
}

export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'cookie'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'source_ip'; readonly terminal: boolean }
  | { readonly kind: 'query'; readonly name: string; readonly terminal: boolean };

export type RouteAction =
  | {
      readonly kind: 'route';
      readonly clusters: readonly WeightedCluster[];
      readonly totalWeight: number;
      readonly prefixRewrite: string | undefined;
      readonly regexRewrite: { readonly pattern: RegExp; readonly substitution: string } | undefined;
      readonly hostRewrite: string | undefined;
      /** 0 disables the timeout (Envoy semantics); default 15 s. */
      readonly timeoutMs: number;
      readonly retry: RetryPolicy | undefined;
      readonly mirrors: readonly MirrorPolicy[];
      readonly hashPolicies: readonly HashPolicy[];
    }
  | {
      readonly kind: 'redirect';
      readonly status: number;
      readonly scheme: string | undefined;
      readonly host: string | undefined;
      readonly port: number | undefined;
      readonly path: string | undefined;
      readonly prefixRewrite: string | undefined;
      readonly stripQuery: boolean;
    }
  | { readonly kind: 'direct'; readonly status: number; readonly body: string | undefined };

export interface PathMatch {
  readonly kind: 'prefix' | 'path' | 'regex' | 'separated_prefix';
  readonly value: string;
  readonly regex: RegExp | undefined;
  readonly caseSensitive: boolean;
}

export interface Route {
  readonly name: string;
  readonly match: PathMatch;
  readonly headers: readonly HeaderPredicate[];
  readonly query: readonly ((q: URLSearchParams) => boolean)[];
  readonly grpcOnly: boolean;
  readonly action: RouteAction;
  readonly headerOps: HeaderOps;
  readonly filters: ReadonlyMap<string, PerFilterConfig>;
  /** `decorator.operation` (pilot's inbound routes name the service: `<host>:<port>/*`). */
  readonly operation?: string;
}

export interface VirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  readonly headerOps: HeaderOps;
  readonly filters: ReadonlyMap<string, PerFilterConfig>;
  readonly retry: RetryPolicy | undefined;
}

export interface RouteConfig {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
  readonly headerOps: HeaderOps;
  readonly filters: ReadonlyMap<string, PerFilterConfig>;
  /** Domain index: exact names, then wildcard lists ordered as Envoy searches them. */
  readonly exact: ReadonlyMap<string, VirtualHost>;
  readonly suffixes: readonly { readonly suffix: string; readonly vhost: VirtualHost }[];
  readonly prefixes: readonly { readonly prefix: string; readonly vhost: VirtualHost }[];
  readonly catchAll: VirtualHost | undefined;
}

function headerOps(o: Raw, path: string): HeaderOps {
  return {
    requestAdd: headerEdits(o.request_headers_to_add, `${path}.request_headers_to_add`),
    requestRemove: headerNames(o.request_headers_to_remove, `${path}.request_headers_to_remove`),
    responseAdd: headerEdits(o.response_headers_to_add, `${path}.response_headers_to_add`),
    responseRemove: headerNames(o.response_headers_to_remove, `${path}.response_headers_to_remove`),
  };
}

export function compileRetryPolicy(v: unknown, path: string): RetryPolicy | undefined {
  const o = optObj(v, path);
  if (o === undefined) return undefined;
  const retryOnRaw = optStr(o.retry_on, `${path}.retry_on`) ?? '';
  const retryOn = new Set<RetryOn>();
  for (const token of retryOnRaw.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    // Unknown conditions (gRPC ones such as cancelled, unavailable) are ignored as Envoy ignores unknown tokens.
    if (retryOnKnown.has(token)) retryOn.add(token as RetryOn);
  }
  const backoff = optObj(o.retry_back_off, `${path}.retry_back_off`);
  const baseIntervalMs = durationMs(backoff?.base_interval, `${path}.retry_back_off.base_interval`) ?? 25;
  const maxIntervalMs = durationMs(backoff?.max_interval, `${path}.retry_back_off.max_interval`) ?? baseIntervalMs * 10;
  if (maxIntervalMs < baseIntervalMs) invalid(`${path}.retry_back_off.max_interval`, 'must not be less than base_interval');
  const numRetries = wrappedNum(o.num_retries, `${path}.num_retries`) ?? 1;
  return {
    retryOn,
    numRetries,
    perTryTimeoutMs: durationMs(o.per_try_timeout, `${path}.per_try_timeout`),
    retriableStatusCodes: new Set(arr(o.retriable_status_codes, `${path}.retriable_status_codes`).map((c, i) => num(c, `${path}.retriable_status_codes[${i}]`))),
    baseIntervalMs,
    maxIntervalMs,
    avoidPreviousHosts: arr(o.retry_host_predicate, `${path}.retry_host_predicate`).some((p) => (obj(p, `${path}.retry_host_predicate`).name as string | undefined)?.includes('previous_hosts') === true),
  };
}

function weightedClusters(v: unknown, path: string): { clusters: WeightedCluster[]; totalWeight: number } {
  const o = obj(v, path);
  const list = arr(o.clusters, `${path}.clusters`);
  if (list.length === 0) invalid(`${path}.clusters`, 'at least one cluster is required');
  const clusters = list.map((c, i) => {
    const p = `${path}.clusters[${i}]`;
    const co = obj(c, p);
    const name = str(co.name, `${p}.name`);
    if (name.length === 0) invalid(`${p}.name`, 'must not be empty');
    const weight = wrappedNum(co.weight, `${p}.weight`) ?? 0;
    if (weight < 0) invalid(`${p}.weight`, 'must not be negative');
    return { name, weight, headers: headerOps(co, p) };
  });
  const sum = clusters.reduce((s, c) => s + c.weight, 0);
  const declared = wrappedNum(o.total_weight, `${path}.total_weight`);
  if (declared !== undefined && declared !== 0 && declared !== sum) invalid(`${path}.total_weight`, `is ${declared} but the cluster weights sum to ${sum}`);
  if (sum === 0) invalid(`${path}.clusters`, 'the sum of weights must be greater than 0');
  return { clusters, totalWeight: sum };
}

function hashPolicies(v: unknown, path: string): HashPolicy[] {
  return arr(v, path).flatMap((h, i): HashPolicy[] => {
    const p = `${path}[${i}]`;
    const o = obj(h, p);
    const terminal = o.terminal === true;
    if (o.header !== undefined) return [{ kind: 'header', name: str(obj(o.header, `${p}.header`).header_name, `${p}.header.header_name`).toLowerCase(), terminal }];
    if (o.cookie !== undefined) return [{ kind: 'cookie', name: str(obj(o.cookie, `${p}.cookie`).name, `${p}.cookie.name`), terminal }];
    if (o.connection_properties !== undefined) return [{ kind: 'source_ip', terminal }];
    if (o.query_parameter !== undefined) return [{ kind: 'query', name: str(obj(o.query_parameter, `${p}.query_parameter`).name, `${p}.query_parameter.name`), terminal }];
    return [];
  });
}

const redirectCodes: Readonly<Record<string, number>> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

function routeAction(o: Raw, path: string, vhostRetry: RetryPolicy | undefined): RouteAction {
  const kinds = ['route', 'redirect', 'direct_response', 'filter_action', 'non_forwarding_action'].filter((k) => o[k] !== undefined && o[k] !== null);
  if (kinds.length !== 1) invalid(path, `exactly one of route, redirect, direct_response is required (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
  if (o.redirect !== undefined) {
    const p = `${path}.redirect`;
    const r = obj(o.redirect, p);
    const codeRaw = r.response_code ?? 'MOVED_PERMANENTLY';
    const status = typeof codeRaw === 'number' ? [301, 302, 303, 307, 308][codeRaw] : redirectCodes[String(codeRaw)];
    if (status === undefined) invalid(`${p}.response_code`, `unknown redirect code ${String(codeRaw)}`);
    const pathRedirect = optStr(r.path_redirect, `${p}.path_redirect`);
    const prefixRewrite = optStr(r.prefix_rewrite, `${p}.prefix_rewrite`);
    if (pathRedirect !== undefined && prefixRewrite !== undefined) invalid(p, 'path_redirect and prefix_rewrite are exclusive');
    return {
      kind: 'redirect',
      status,
      scheme: r.https_redirect === true ? 'https' : optStr(r.scheme_redirect, `${p}.scheme_redirect`),
      host: optStr(r.host_redirect, `${p}.host_redirect`),
      port: r.port_redirect === undefined ? undefined : num(r.port_redirect, `${p}.port_redirect`),
      path: pathRedirect,
      prefixRewrite,
      stripQuery: r.strip_query === true,
    };
  }
  if (o.direct_response !== undefined) {
    const p = `${path}.direct_response`;
    const d = obj(o.direct_response, p);
    const status = num(d.status, `${p}.status`);
    if (status < 200 || status >= 600) invalid(`${p}.status`, 'must be within [200, 600)');
    const body = optObj(d.body, `${p}.body`);
    let text: string | undefined;
    if (body !== undefined) {
      if (body.inline_string !== undefined) text = str(body.inline_string, `${p}.body.inline_string`);
      else if (body.inline_bytes !== undefined) text = Buffer.from(str(body.inline_bytes, `${p}.body.inline_bytes`), 'base64').toString('utf8');
      else invalid(`${p}.body`, 'only inline_string and inline_bytes are supported');
    }
    return { kind: 'direct', status, body: text };
  }
  if (o.route === undefined) invalid(`${path}.${kinds[0] as string}`, 'is not supported');
  const p = `${path}.route`;
  const r = obj(o.route, p);
  let clusters: WeightedCluster[];
  let totalWeight = 1;
  const none: HeaderOps = { requestAdd: [], requestRemove: [], responseAdd: [], responseRemove: [] };
  if (r.cluster !== undefined) {
    const name = str(r.cluster, `${p}.cluster`);
    if (name.length === 0) invalid(`${p}.cluster`, 'must not be empty');
    clusters = [{ name, weight: 1, headers: none }];
  } else if (r.weighted_clusters !== undefined) {
    ({ clusters, totalWeight } = weightedClusters(r.weighted_clusters, `${p}.weighted_clusters`));
  } else if (r.cluster_header !== undefined) {
    return invalid(`${p}.cluster_header`, 'is not supported');
  } else {
    return invalid(p, 'one of cluster, weighted_clusters is required');
  }
  let regexRewrite: { pattern: RegExp; substitution: string } | undefined;
  if (r.regex_rewrite !== undefined) {
    const rr = obj(r.regex_rewrite, `${p}.regex_rewrite`);
    const re = regexMatcher(rr.pattern, `${p}.regex_rewrite.pattern`);
    // Substitution replaces every match (RE2 GlobalReplace); the pattern is not anchored.
    const pattern = new RegExp(re.source.slice(4, -2), 'g');
    const substitution = str(rr.substitution ?? '', `${p}.regex_rewrite.substitution`).replace(/\\(\d)/g, '$$$1');
    regexRewrite = { pattern, substitution };
  }
  const prefixRewrite = optStr(r.prefix_rewrite, `${p}.prefix_rewrite`);
  if (prefixRewrite !== undefined && regexRewrite !== undefined) invalid(p, 'prefix_rewrite and regex_rewrite are exclusive');
  const mirrors = arr(r.request_mirror_policies, `${p}.request_mirror_policies`).map((m, i) => {
    const mp = `${p}.request_mirror_policies[${i}]`;
    const mo = obj(m, mp);
    const rf = optObj(mo.runtime_fraction, `${mp}.runtime_fraction`);
    return { cluster: str(mo.cluster, `${mp}.cluster`), fraction: rf === undefined ? 1 : (fractionalPercent(rf.default_value, `${mp}.runtime_fraction.default_value`) ?? 0) };
  });
  return {
    kind: 'route',
    clusters,
    totalWeight,
    prefixRewrite,
    regexRewrite,
    hostRewrite: optStr(r.host_rewrite_literal, `${p}.host_rewrite_literal`),
    timeoutMs: durationMs(r.timeout, `${p}.timeout`) ?? 15_000,
    retry: compileRetryPolicy(r.retry_policy, `${p}.retry_policy`) ?? vhostRetry,
    mirrors,
    hashPolicies: hashPolicies(r.hash_policy, `${p}.hash_policy`),
  };
}

function pathMatch(m: Raw, path: string): PathMatch {
  const caseSensitive = wrappedBool(m.case_sensitive, `${path}.case_sensitive`) ?? true;
  const kinds = ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'connect_matcher', 'path_match_policy'].filter((k) => m[k] !== undefined && m[k] !== null);
  if (kinds.length !== 1) invalid(path, `exactly one of prefix, path, safe_regex, path_separated_prefix is required (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
  const kind = kinds[0] as string;
  const norm = (s: string): string => (caseSensitive ? s : s.toLowerCase());
  switch (kind) {
    case 'prefix':
      return { kind: 'prefix', value: norm(str(m.prefix, `${path}.prefix`)), regex: undefined, caseSensitive };
    case 'path':
      return { kind: 'path', value: norm(str(m.path, `${path}.path`)), regex: undefined, caseSensitive };
    case 'path_separated_prefix': {
      const value = str(m.path_separated_prefix, `${path}.path_separated_prefix`);
      if (value.endsWith('/') || /[?#]/.test(value)) invalid(`${path}.path_separated_prefix`, 'must not end with / or contain ? or #');
      return { kind: 'separated_prefix', value: norm(value), regex: undefined, caseSensitive };
    }
    case 'safe_regex':
      return { kind: 'regex', value: '', regex: regexMatcher(m.safe_regex, `${path}.safe_regex`, caseSensitive ? '' : 'i'), caseSensitive };
    default:
      return invalid(`${path}.${kind}`, 'is not supported');
  }
}

function compileRoute(v: unknown, path: string, vhostRetry: RetryPolicy | undefined): Route {
  const o = obj(v, path);
  const m = obj(o.match, `${path}.match`);
  if (m.runtime_fraction !== undefined) invalid(`${path}.match.runtime_fraction`, 'is not supported');
  if (m.tls_context !== undefined || m.dynamic_metadata !== undefined) invalid(`${path}.match`, 'tls_context and dynamic_metadata matches are not supported');
  return {
    name: optStr(o.name, `${path}.name`) ?? '',
    match: pathMatch(m, `${path}.match`),
    headers: headerMatchers(m.headers, `${path}.match.headers`),
    query: arr(m.query_parameters, `${path}.match.query_parameters`).map((q, i) => queryParameterMatcher(q, `${path}.match.query_parameters[${i}]`)),
    grpcOnly: m.grpc !== undefined && m.grpc !== null,
    action: routeAction(o, path, vhostRetry),
    headerOps: headerOps(o, path),
    filters: compilePerFilterConfigs(o.typed_per_filter_config, `${path}.typed_per_filter_config`),
    ...decoratorOperation(o.decorator, `${path}.decorator`),
  };
}

function decoratorOperation(v: unknown, path: string): { operation?: string } {
  if (v === undefined || v === null) return {};
  const op = optStr(obj(v, path).operation, `${path}.operation`);
  return op === undefined || op === '' ? {} : { operation: op };
}

function validateDomain(d: string, path: string): void {
  if (d.length === 0) invalid(path, 'must not be empty');
  const stars = d.split('*').length - 1;
  if (stars > 1 || (stars === 1 && d !== '*' && !d.startsWith('*') && !d.endsWith('*'))) invalid(path, `invalid wildcard domain ${d}: only a leading or trailing * is allowed`);
}

/** Compiles and validates a `config.route.v3.RouteConfiguration`. */
export function compileRouteConfiguration(v: unknown, path = 'RouteConfiguration'): RouteConfig {
  const o = obj(v, path);
  const name = str(o.name ?? '', `${path}.name`);
  const exact = new Map<string, VirtualHost>();
  const suffixes: { suffix: string; vhost: VirtualHost }[] = [];
  const prefixes: { prefix: string; vhost: VirtualHost }[] = [];
  let catchAll: VirtualHost | undefined;
  const seen = new Set<string>();
  const virtualHosts = arr(o.virtual_hosts, `${path}.virtual_hosts`).map((vh, i) => {
    const p = `${path}.virtual_hosts[${i}]`;
    const vo = obj(vh, p);
    const retry = compileRetryPolicy(vo.retry_policy, `${p}.retry_policy`);
    const domains = arr(vo.domains, `${p}.domains`).map((d, j) => str(d, `${p}.domains[${j}]`).toLowerCase());
    if (domains.length === 0) invalid(`${p}.domains`, 'at least one domain is required');
    const vhost: VirtualHost = {
      name: str(vo.name ?? '', `${p}.name`),
      domains,
      routes: arr(vo.routes, `${p}.routes`).map((r, j) => compileRoute(r, `${p}.routes[${j}]`, retry)),
      headerOps: headerOps(vo, p),
      filters: compilePerFilterConfigs(vo.typed_per_filter_config, `${p}.typed_per_filter_config`),
      retry,
    };
    domains.forEach((d, j) => {
      validateDomain(d, `${p}.domains[${j}]`);
      if (seen.has(d)) invalid(`${p}.domains[${j}]`, `duplicate domain ${d} in route configuration ${name}`);
      seen.add(d);
      if (d === '*') catchAll = vhost;
      else if (d.startsWith('*')) suffixes.push({ suffix: d.slice(1), vhost });
      else if (d.endsWith('*')) prefixes.push({ prefix: d.slice(0, -1), vhost });
      else exact.set(d, vhost);
    });
    return vhost;
  });
  // Envoy: longest wildcard first.
  suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return { name, virtualHosts, headerOps: headerOps(o, path), filters: compilePerFilterConfigs(o.typed_per_filter_config, `${path}.typed_per_filter_config`), exact, suffixes, prefixes, catchAll };
}

function lookupHost(rc: RouteConfig, host: string): VirtualHost | undefined {
  const e = rc.exact.get(host);
  if (e !== undefined) return e;
  // A wildcard never matches the empty string.
  for (const s of rc.suffixes) if (host.length > s.suffix.length && host.endsWith(s.suffix)) return s.vhost;
  for (const p of rc.prefixes) if (host.length > p.prefix.length && host.startsWith(p.prefix)) return p.vhost;
  return undefined;
}

/**
 * Virtual host selection by Host/:authority as Envoy does it: exact, then suffix wildcards
 * (longest first), then prefix wildcards (longest first), then `*`. Case-insensitive. A host
 * with a port that matches nothing is retried without its port.
 */
export function selectVirtualHost(rc: RouteConfig, authority: string): VirtualHost | undefined {
  const host = authority.toLowerCase();
  const hit = lookupHost(rc, host);
  if (hit !== undefined) return hit;
  const colon = host.lastIndexOf(':');
  if (colon > 0 && !host.endsWith(']')) {
    const bare = lookupHost(rc, host.slice(0, colon));
    if (bare !== undefined) return bare;
  }
  return rc.catchAll;
}

/** What route matching reads from a request. */
export interface MatchRequest {
  /** Path including the query string, as in `:path`. */
  readonly path: string;
  readonly header: HeaderLookup;
}

function splitPath(p: string): { pathOnly: string; query: string } {
  const q = p.indexOf('?');
  const h = p.indexOf('#');
  const end = h >= 0 ? h : p.length;
  return q >= 0 && q < end ? { pathOnly: p.slice(0, q), query: p.slice(q + 1, end) } : { pathOnly: p.slice(0, end), query: '' };
}

function pathMatches(m: PathMatch, rawPath: string): boolean {
  const p = m.caseSensitive ? rawPath : rawPath.toLowerCase();
  switch (m.kind) {
    case 'prefix':
      return p.startsWith(m.value);
    case 'path':
      return p === m.value;
    case 'separated_prefix':
      return p === m.value || p.startsWith(`${m.value}/`);
    case 'regex':
      return (m.regex as RegExp).test(rawPath);
  }
}

/** The first route of the virtual host whose match accepts the request (Envoy: first match wins). */
export function matchRoute(vhost: VirtualHost, req: MatchRequest): Route | undefined {
  const { pathOnly, query } = splitPath(req.path);
  let params: URLSearchParams | undefined;
  for (const r of vhost.routes) {
    if (!pathMatches(r.match, pathOnly)) continue;
    if (r.grpcOnly && !(req.header('content-type') ?? '').startsWith('application/grpc')) continue;
    if (!r.headers.every((h) => h(req.header))) continue;
    if (r.query.length > 0) {
      params ??= new URLSearchParams(query);
      const q = params;
      if (!r.query.every((m) => m(q))) continue;
    }
    return r;
  }
  return undefined;
}

/** Picks a weighted cluster with `rand` in [0, 1) (inject a seeded RNG in tests). */
export function pickWeightedCluster(action: Extract<RouteAction, { kind: 'route' }>, rand: number): WeightedCluster {
  if (action.clusters.length === 1) return action.clusters[0] as WeightedCluster;
  let point = Math.floor(rand * action.totalWeight);
  for (const c of action.clusters) {
    if (point < c.weight) return c;
    point -= c.weight;
  }
  return action.clusters[action.clusters.length - 1] as WeightedCluster;
}

/**
 * The upstream path after prefix_rewrite / regex_rewrite. `matched` is the route's match, so a
 * prefix rewrite replaces exactly the matched prefix (Envoy semantics); the query string is kept.
 */
export function rewritePath(route: Route, action: Extract<RouteAction, { kind: 'route' }>, fullPath: string): string {
  const { pathOnly, query } = splitPath(fullPath);
  const suffix = query.length > 0 ? `?${query}` : '';
  if (action.prefixRewrite !== undefined && (route.match.kind === 'prefix' || route.match.kind === 'path' || route.match.kind === 'separated_prefix')) {
    return action.prefixRewrite + pathOnly.slice(route.match.value.length) + suffix;
  }
  if (action.regexRewrite !== undefined) {
    const { pattern, substitution } = action.regexRewrite;
    pattern.lastIndex = 0;
    return pathOnly.replace(pattern, substitution) + suffix;
  }
  return fullPath;
}

/** The Location header of a redirect route. */
export function redirectLocation(route: Route, action: Extract<RouteAction, { kind: 'redirect' }>, req: { scheme: string; authority: string; path: string }): string {
  const { pathOnly, query } = splitPath(req.path);
  const scheme = action.scheme ?? req.scheme;
  let host = req.authority;
  let port: string | undefined;
  const colon = host.lastIndexOf(':');
  if (colon > 0 && !host.endsWith(']')) {
    port = host.slice(colon + 1);
    host = host.slice(0, colon);
  }
  if (action.host !== undefined) host = action.host;
  if (action.port !== undefined) port = String(action.port);
  else if (action.scheme !== undefined && action.scheme !== req.scheme) port = undefined;
  if ((scheme === 'https' && port === '443') || (scheme === 'http' && port === '80')) port = undefined;
  let path = pathOnly;
  if (action.path !== undefined) path = action.path;
  else if (action.prefixRewrite !== undefined && route.match.kind !== 'regex') path = action.prefixRewrite + pathOnly.slice(route.match.value.length);
  const q = action.stripQuery || query.length === 0 ? '' : `?${query}`;
  return `${scheme}://${host}${port === undefined ? '' : `:${port}`}${path}${q}`;
}

export { compileRegex };
