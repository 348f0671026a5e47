import type { HttpConnectionManager } from './listener';
import type { HeaderLookup } from './matchers';
import { evaluateRbac } from './rbac';
import type { FaultConfig, PerFilterConfig, RateLimitConfig } from './filters';
import type { Rng, TokenBucket } from './resilience';
import { matchRoute, pickWeightedCluster, redirectLocation, rewritePath, selectVirtualHost, type HeaderOps, type Route, type RouteAction, type RouteConfig, type VirtualHost, type WeightedCluster } from './routes';

/** What the HTTP decision needs to know of a request. */
export interface HttpRequestFacts {
  readonly method: string;
  readonly scheme: string;
  readonly authority: string;
  /** `:path`, query included. */
  readonly path: string;
  readonly header: HeaderLookup;
  /** Peer SPIFFE id when the connection is mTLS. */
  readonly principal: string | undefined;
  readonly sourceIp: string;
  readonly destinationPort: number;
}

export interface Response {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type RouterAction = Extract<RouteAction, { kind: 'route' }>;

export type Decision =
  | { readonly kind: 'respond'; readonly response: Response; readonly flag: string; readonly delayMs: number; readonly route: Route | undefined; readonly responseOps: readonly HeaderOps[] }
  | {
      readonly kind: 'forward';
      readonly route: Route;
      readonly vhost: VirtualHost;
      readonly action: RouterAction;
      readonly cluster: WeightedCluster;
      readonly upstreamPath: string;
      /** The authority to send upstream (host_rewrite_literal applied). */
      readonly upstreamAuthority: string;
      /** Applied in order: weighted cluster, route, virtual host, route configuration. */
      readonly requestOps: readonly HeaderOps[];
      readonly responseOps: readonly HeaderOps[];
      readonly delayMs: number;
      readonly flag: string;
      /** x-ratelimit-* headers to add to the response (draft headers mode). */
      readonly extraResponseHeaders: Readonly<Record<string, string>>;
    };

/** Mutable state the decision may touch: token buckets, keyed by their config's identity. */
export interface DecisionState {
  readonly rng: Rng;
  bucket(key: string, config: RateLimitConfig): TokenBucket;
}

function effective(name: string, route: Route | undefined, vhost: VirtualHost | undefined, rc: RouteConfig | undefined): PerFilterConfig | undefined {
  return route?.filters.get(name) ?? vhost?.filters.get(name) ?? rc?.filters.get(name);
}

function respond(status: number, body: string, flag: string, extra: Record<string, string> = {}, delayMs = 0, route?: Route, responseOps: readonly HeaderOps[] = []): Decision {
  return { kind: 'respond', response: { status, headers: { 'content-type': 'text/plain', ...extra }, body }, flag, delayMs, route, responseOps };
}

function faultApplies(f: FaultConfig, req: HttpRequestFacts): boolean {
  return f.headers.every((h) => h(req.header));
}

function rateLimitHeaders(cfg: RateLimitConfig, b: TokenBucket): Record<string, string> {
  return { 'x-ratelimit-limit': String(cfg.maxTokens), 'x-ratelimit-remaining': String(Math.floor(b.remaining)), 'x-ratelimit-reset': String(b.resetSeconds) };
}

/**
 * Runs an HTTP connection manager's filters and route table over one request and says what to
 * do: answer locally (direct response, redirect, RBAC denial, rate limit, fault abort, no route)
 * or forward to a cluster. Pure apart from the token buckets and the injected RNG.
 */
export function decide(hcm: HttpConnectionManager, rc: RouteConfig | undefined, req: HttpRequestFacts, state: DecisionState): Decision {
  const vhost = rc === undefined ? undefined : selectVirtualHost(rc, req.authority);
  const route = vhost === undefined ? undefined : matchRoute(vhost, req);
  const responseOps: HeaderOps[] = route === undefined || vhost === undefined || rc === undefined ? [] : [route.headerOps, vhost.headerOps, rc.headerOps];
  let delayMs = 0;
  let flag = '-';
  const extraResponseHeaders: Record<string, string> = {};
  const pathOnly = req.path.split('?')[0] ?? req.path;
  for (const f of hcm.filters) {
    const override = effective(f.name, route, vhost, rc);
    if (override?.kind === 'disabled') continue;
    if (f.kind === 'rbac') {
      const rules = override?.kind === 'rbac' ? override.config : f.config;
      if (rules === undefined) continue;
      const v = evaluateRbac(rules, { header: req.header, path: pathOnly, principal: req.principal, sourceIp: req.sourceIp, destinationPort: req.destinationPort });
      if (!v.allowed) return respond(403, 'RBAC: access denied', 'RBAC', {}, delayMs, route, responseOps);
    } else if (f.kind === 'fault') {
      const cfg = override?.kind === 'fault' ? override.config : f.config;
      if (cfg === undefined || !faultApplies(cfg, req)) continue;
      if (cfg.delayMs !== undefined && state.rng() < cfg.delayProbability) {
        delayMs += cfg.delayMs;
        flag = 'DI';
      }
      if ((cfg.abortStatus !== undefined || cfg.abortGrpcStatus !== undefined) && state.rng() < cfg.abortProbability) {
        if (cfg.abortGrpcStatus !== undefined) {
          return respond(200, '', 'FI', { 'content-type': 'application/grpc', 'grpc-status': String(cfg.abortGrpcStatus), 'grpc-message': 'fault filter abort' }, delayMs, route, responseOps);
        }
        return respond(cfg.abortStatus as number, 'fault filter abort', 'FI', {}, delayMs, route, responseOps);
      }
    } else {
      const cfg = override?.kind === 'local_ratelimit' ? override.config : f.config;
      if (cfg === undefined || state.rng() >= cfg.enabled) continue;
      const scope = override?.kind === 'local_ratelimit' && route !== undefined ? `route:${rc?.name}/${vhost?.name}/${route.name || vhost?.routes.indexOf(route)}` : `filter:${hcm.statPrefix}/${f.name}`;
      const bucket = state.bucket(`${scope}|${cfg.maxTokens}/${cfg.tokensPerFill}/${cfg.fillIntervalMs}`, cfg);
      const ok = bucket.tryTake();
      if (!ok && state.rng() < cfg.enforced) {
        const extra: Record<string, string> = { ...rateLimitHeaders(cfg, bucket), 'x-envoy-ratelimited': 'true' };
        for (const h of cfg.responseHeaders) extra[h.key] = h.value;
        return respond(cfg.status, 'local_rate_limited', 'RL', extra, delayMs, route, responseOps);
      }
      if (cfg.draftHeaders) Object.assign(extraResponseHeaders, rateLimitHeaders(cfg, bucket));
    }
  }
  if (rc === undefined) return respond(404, '', 'NR', {}, delayMs);
  if (route === undefined || vhost === undefined) return respond(404, '', 'NR', {}, delayMs);
  const action = route.action;
  if (action.kind === 'direct') return respond(action.status, action.body ?? '', flag === 'DI' ? 'DI' : '-', {}, delayMs, route, responseOps);
  if (action.kind === 'redirect') {
    const location = redirectLocation(route, action, req);
    return respond(action.status, '', '-', { location }, delayMs, route, responseOps);
  }
  const cluster = pickWeightedCluster(action, state.rng());
  return {
    kind: 'forward',
    route,
    vhost,
    action,
    cluster,
    upstreamPath: rewritePath(route, action, req.path),
    upstreamAuthority: action.hostRewrite ?? req.authority,
    requestOps: [cluster.headers, route.headerOps, vhost.headerOps, rc.headerOps],
    responseOps: [cluster.headers, ...responseOps],
    delayMs,
    flag,
    extraResponseHeaders,
  };
}
