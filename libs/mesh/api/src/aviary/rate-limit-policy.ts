import Type, { type Static } from 'typebox';
import { Closed, Duration, opt, Resource, StringMap, UInt32, WorkloadSelector } from '../common';
import { aviaryNetworkingVersions } from '../networking/versions';

/**
 * RateLimitPolicy (networking.aviary.dev/v1alpha1) — Aviary's own kind for *local* rate limiting:
 * each proxy enforces a token bucket per rule, with no shared rate-limit service (Envoy's
 * `envoy.filters.http.local_ratelimit`).
 *
 * ```yaml
 * apiVersion: networking.aviary.dev/v1alpha1
 * kind: RateLimitPolicy
 * metadata: { name: productpage, namespace: bookinfo }
 * spec:
 *   workloadSelector: { labels: { app: productpage } }
 *   rules:
 *   - name: per-proxy
 *     match: { vhost: "productpage.bookinfo.svc.cluster.local:9080", route: reviews-v2 }
 *     tokenBucket: { maxTokens: 100, tokensPerFill: 10, fillInterval: 1s }
 *     responseHeaders: { set: { x-rate-limited: "true" } }
 * ```
 *
 * Fields:
 * - `workloadSelector` — proxies whose labels match apply the policy (a sidecar's inbound side).
 *   Exactly one of `workloadSelector` and `targetRefs`.
 * - `targetRefs` — hosts the policy protects, each `{kind, name, namespace?}` with `kind` one of
 *   `ServiceEntry`, `Service` or `Gateway`; `namespace` defaults to the policy's own.
 * - `rules[]` — evaluated in order; the first whose `match` applies takes the request.
 *   - `name` — unique in the policy; used as the stat prefix.
 *   - `match.vhost` — virtual host name (`host:port`), `*` or absent for every vhost.
 *   - `match.route` — HTTPRoute `name` of a VirtualService route; absent for every route.
 *   - `tokenBucket.maxTokens` — bucket size (≥ 1): the largest burst admitted.
 *   - `tokenBucket.tokensPerFill` — tokens added each interval (1 ≤ n ≤ maxTokens; default 1).
 *   - `tokenBucket.fillInterval` — refill period, a duration ≥ 50ms (Envoy's lower bound).
 *   - `responseHeaders.set|add` — headers added to a rate-limited (429) response.
 *   - `statusCode` — status of a limited response (400–599; default 429).
 */
export const TokenBucket = Closed({
  maxTokens: UInt32,
  tokensPerFill: opt(UInt32),
  fillInterval: Duration,
});
export type TokenBucket = Static<typeof TokenBucket>;

export const RateLimitTargetRef = Closed({
  kind: Type.Enum(['ServiceEntry', 'Service', 'Gateway']),
  name: Type.String(),
  namespace: opt(Type.String()),
});

export const RateLimitRule = Closed({
  name: Type.String(),
  match: opt(Closed({ vhost: opt(Type.String()), route: opt(Type.String()) })),
  tokenBucket: TokenBucket,
  responseHeaders: opt(Closed({ set: opt(StringMap), add: opt(StringMap) })),
  statusCode: opt(UInt32),
});
export type RateLimitRule = Static<typeof RateLimitRule>;

export const RateLimitPolicySpec = Closed({
  workloadSelector: opt(WorkloadSelector),
  targetRefs: opt(Type.Array(RateLimitTargetRef)),
  rules: Type.Array(RateLimitRule),
});
export type RateLimitPolicySpec = Static<typeof RateLimitPolicySpec>;

export const RateLimitPolicySchema = Resource(
  'RateLimitPolicy',
  aviaryNetworkingVersions,
  RateLimitPolicySpec,
  'Local (per-proxy) token-bucket rate limiting (networking.aviary.dev RateLimitPolicy).',
);
export type RateLimitPolicy = Static<typeof RateLimitPolicySchema>;
