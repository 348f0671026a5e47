import type { RateLimitRule } from '@aviary/mesh-api';
import type { RateLimitPolicyEntry } from '@aviary/mesh-model';
import { duration, N, T, typed, wrap, type Msg } from './envoy';

/**
 * RateLimitPolicy (Aviary) → envoy.filters.http.local_ratelimit. The HCM carries the filter with
 * no bucket (a no-op); each route whose first matching rule applies gets a per-route
 * LocalRateLimit with the token bucket, enabled and enforced for 100 % of requests, and the
 * draft-03 `x-ratelimit-*` response headers.
 */

const statusNames: Readonly<Record<number, string>> = {
  400: 'BadRequest', 401: 'Unauthorized', 402: 'PaymentRequired', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  408: 'RequestTimeout', 409: 'Conflict', 410: 'Gone', 413: 'PayloadTooLarge', 418: 'ImATeapot', 420: 'EnhanceYourCalm',
  429: 'TooManyRequests', 500: 'InternalServerError', 502: 'BadGateway', 503: 'ServiceUnavailable', 504: 'GatewayTimeout',
};

const hundred = { numerator: 100, denominator: 'HUNDRED' };

export function rateLimitHttpFilter(): Msg {
  return { name: N.localRateLimit, typed_config: typed(T.LocalRateLimit, { stat_prefix: 'http_local_rate_limiter' }) };
}

function ruleMatches(rule: RateLimitRule, vhost: string, route: string | undefined): boolean {
  const m = rule.match;
  if (m?.vhost !== undefined && m.vhost !== '*' && m.vhost !== vhost) return false;
  if (m?.route !== undefined && m.route !== route) return false;
  return true;
}

function localRateLimit(policy: RateLimitPolicyEntry, rule: RateLimitRule): Msg {
  const headers = [
    ...Object.entries(rule.responseHeaders?.set ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...Object.entries(rule.responseHeaders?.add ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  const status = rule.statusCode !== undefined && rule.statusCode !== 429 ? { status: { code: statusNames[rule.statusCode] ?? rule.statusCode } } : {};
  return typed(T.LocalRateLimit, {
    stat_prefix: `ratelimit_${policy.namespace}_${policy.name}_${rule.name}`,
    ...status,
    token_bucket: {
      max_tokens: rule.tokenBucket.maxTokens,
      tokens_per_fill: wrap(rule.tokenBucket.tokensPerFill ?? 1),
      fill_interval: duration(rule.tokenBucket.fillInterval) ?? { seconds: 1 },
    },
    filter_enabled: { default_value: hundred, runtime_key: 'local_rate_limit_enabled' },
    filter_enforced: { default_value: hundred, runtime_key: 'local_rate_limit_enforced' },
    ...(headers.length > 0 && { response_headers_to_add: headers }),
    enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
  });
}

/** Per-route config of the first rule (policies in namespace/name order, rules in order) that matches. */
export function rateLimitFor(policies: readonly RateLimitPolicyEntry[], vhost: string, route: string | undefined): Msg | undefined {
  for (const p of policies) {
    for (const rule of p.spec.rules) if (ruleMatches(rule, vhost, route)) return localRateLimit(p, rule);
  }
  return undefined;
}

/** Adds the per-route rate limit to each route of a virtual host (routes are copied, not mutated). */
export function withRateLimits(policies: readonly RateLimitPolicyEntry[], vhostName: string, routes: readonly Msg[]): Msg[] {
  if (policies.length === 0) return [...routes];
  return routes.map((r) => {
    const cfg = rateLimitFor(policies, vhostName, typeof r.name === 'string' ? r.name : undefined);
    if (!cfg) return r;
    return { ...r, typed_per_filter_config: { ...((r.typed_per_filter_config as Msg | undefined) ?? {}), [N.localRateLimit]: cfg } };
  });
}
