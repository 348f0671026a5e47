import { ExtensionTypeUrl, typeNameOf } from '@aviary/xds-api';
import { compileRbac, type CompiledRbac } from './rbac';
import { anyOf, durationMs, fractionalPercent, invalid, num, obj, optObj, type Raw, str, wrappedNum } from './raw';
import { headerEdits, headerMatchers, type HeaderEdit, type HeaderPredicate } from './matchers';

/** HTTP filter names and their config type names (Envoy's well-known names). */
export const FilterType = {
  router: typeNameOf(ExtensionTypeUrl.Router),
  fault: typeNameOf(ExtensionTypeUrl.HTTPFault),
  rbac: typeNameOf(ExtensionTypeUrl.RBAC),
  rbacPerRoute: typeNameOf(ExtensionTypeUrl.RBACPerRoute),
  localRateLimit: typeNameOf(ExtensionTypeUrl.LocalRateLimit),
  filterConfig: 'envoy.config.route.v3.FilterConfig',
} as const;

export interface FaultConfig {
  readonly delayMs: number | undefined;
  readonly delayProbability: number;
  readonly abortStatus: number | undefined;
  readonly abortGrpcStatus: number | undefined;
  readonly abortProbability: number;
  /** The fault applies only to requests matching all of these. */
  readonly headers: readonly HeaderPredicate[];
}

export function compileFault(msg: Raw, path: string): FaultConfig {
  const delay = optObj(msg.delay, `${path}.delay`);
  const abort = optObj(msg.abort, `${path}.abort`);
  let abortStatus: number | undefined;
  let abortGrpcStatus: number | undefined;
  if (abort !== undefined) {
    if (abort.http_status !== undefined) {
      abortStatus = num(abort.http_status, `${path}.abort.http_status`);
      if (abortStatus < 200 || abortStatus >= 600) invalid(`${path}.abort.http_status`, 'must be within [200, 600)');
    } else if (abort.grpc_status !== undefined) {
      abortGrpcStatus = num(abort.grpc_status, `${path}.abort.grpc_status`);
    } else if (abort.header_abort === undefined) {
      invalid(`${path}.abort`, 'one of http_status, grpc_status, header_abort is required');
    }
  }
  const delayMs = delay === undefined ? undefined : durationMs(delay.fixed_delay, `${path}.delay.fixed_delay`);
  if (delay !== undefined && delayMs === undefined && delay.header_delay === undefined) invalid(`${path}.delay`, 'fixed_delay is required');
  return {
    delayMs,
    delayProbability: delay === undefined ? 0 : (fractionalPercent(delay.percentage, `${path}.delay.percentage`) ?? 1),
    abortStatus,
    abortGrpcStatus,
    abortProbability: abort === undefined ? 0 : (fractionalPercent(abort.percentage, `${path}.abort.percentage`) ?? 1),
    headers: headerMatchers(msg.headers, `${path}.headers`),
  };
}

export interface RateLimitConfig {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  readonly enabled: number;
  readonly enforced: number;
  readonly responseHeaders: readonly HeaderEdit[];
  readonly status: number;
  /** Emit x-ratelimit-* on every response (DRAFT_VERSION_03), not only on 429. */
  readonly draftHeaders: boolean;
}

/**
 * `LocalRateLimit`. As in Envoy, `filter_enabled`/`filter_enforced` default to 0 %: a filter
 * without them is a no-op (Istio always sets both to 100 %). A config without `token_bucket` is
 * a filter-level placeholder whose buckets come from per-route configs.
 */
export function compileRateLimit(msg: Raw, path: string): RateLimitConfig | undefined {
  const tb = optObj(msg.token_bucket, `${path}.token_bucket`);
  if (tb === undefined) return undefined;
  const maxTokens = num(tb.max_tokens ?? 0, `${path}.token_bucket.max_tokens`);
  if (maxTokens < 1) invalid(`${path}.token_bucket.max_tokens`, 'must be at least 1');
  const tokensPerFill = wrappedNum(tb.tokens_per_fill, `${path}.token_bucket.tokens_per_fill`) ?? 1;
  const fillIntervalMs = durationMs(tb.fill_interval, `${path}.token_bucket.fill_interval`);
  if (fillIntervalMs === undefined || fillIntervalMs < 50) invalid(`${path}.token_bucket.fill_interval`, 'is required and must be at least 50ms');
  const runtimePercent = (v: unknown, p: string): number => {
    const o = optObj(v, p);
    if (o === undefined) return 0;
    return fractionalPercent(o.default_value, `${p}.default_value`) ?? 0;
  };
  const statusObj = optObj(msg.status, `${path}.status`);
  const statusCode = statusObj?.code;
  const status = statusCode === undefined ? 429 : typeof statusCode === 'number' ? statusCode : statusCodeByName(String(statusCode), `${path}.status.code`);
  return {
    maxTokens,
    tokensPerFill,
    fillIntervalMs,
    enabled: runtimePercent(msg.filter_enabled, `${path}.filter_enabled`),
    enforced: runtimePercent(msg.filter_enforced, `${path}.filter_enforced`),
    responseHeaders: headerEdits(msg.response_headers_to_add, `${path}.response_headers_to_add`),
    status,
    draftHeaders: msg.enable_x_ratelimit_headers === 'DRAFT_VERSION_03' || msg.enable_x_ratelimit_headers === 1,
  };
}

function statusCodeByName(name: string, path: string): number {
  const known: Record<string, number> = { TooManyRequests: 429, ServiceUnavailable: 503, Forbidden: 403, BadRequest: 400 };
  const code = known[name];
  if (code === undefined) invalid(path, `unsupported status ${name}`);
  return code;
}

/** One compiled HTTP filter of an HCM chain (router excluded: it is always last). */
export type HttpFilter =
  | { readonly kind: 'fault'; readonly name: string; readonly config: FaultConfig | undefined }
  | { readonly kind: 'rbac'; readonly name: string; readonly config: CompiledRbac | undefined; readonly shadow: CompiledRbac | undefined }
  | { readonly kind: 'local_ratelimit'; readonly name: string; readonly config: RateLimitConfig | undefined };

/** A per-route override of a filter (typed_per_filter_config), compiled by the filter's type. */
export type PerFilterConfig =
  | { readonly kind: 'fault'; readonly config: FaultConfig }
  | { readonly kind: 'rbac'; readonly config: CompiledRbac | undefined }
  | { readonly kind: 'local_ratelimit'; readonly config: RateLimitConfig | undefined }
  | { readonly kind: 'disabled' }
  | { readonly kind: 'unknown'; readonly type: string };

export function compileHttpFilter(v: unknown, path: string): HttpFilter | 'router' | undefined {
  const o = obj(v, path);
  const name = str(o.name, `${path}.name`);
  const optional = o.is_optional === true;
  if (o.typed_config === undefined) {
    if (name === 'envoy.filters.http.router') return 'router';
    if (optional) return undefined;
    invalid(`${path}.typed_config`, `filter ${name} needs a typed_config`);
  }
  const { type, msg } = anyOf(o.typed_config, `${path}.typed_config`);
  const p = `${path}.typed_config`;
  switch (type) {
    case FilterType.router:
      return 'router';
    case FilterType.fault:
      return { kind: 'fault', name, config: compileFault(msg, p) };
    case FilterType.rbac:
      return {
        kind: 'rbac',
        name,
        config: msg.rules === undefined ? undefined : compileRbac(msg.rules, `${p}.rules`),
        shadow: msg.shadow_rules === undefined ? undefined : compileRbac(msg.shadow_rules, `${p}.shadow_rules`),
      };
    case FilterType.localRateLimit:
      return { kind: 'local_ratelimit', name, config: compileRateLimit(msg, p) };
    default:
      if (optional) return undefined;
      // Envoy's own plumbing filters that change nothing a request observes here.
      if (/\.(cors|grpc_stats|grpc_web|health_check)\./.test(type) || type.startsWith('istio.') || type.includes('.wasm.')) return undefined;
      return invalid(`${p}`, `unsupported HTTP filter ${type} (${name}); mark it is_optional to skip it`);
  }
}

export function compilePerFilterConfig(v: unknown, path: string): PerFilterConfig {
  let { type, msg } = anyOf(v, path);
  let p = path;
  if (type === FilterType.filterConfig) {
    if (msg.disabled === true) return { kind: 'disabled' };
    if (msg.config === undefined) return { kind: 'disabled' };
    p = `${path}.config`;
    ({ type, msg } = anyOf(msg.config, p));
  }
  switch (type) {
    case FilterType.fault:
      return { kind: 'fault', config: compileFault(msg, p) };
    case FilterType.rbacPerRoute: {
      const rbac = optObj(msg.rbac, `${p}.rbac`);
      return { kind: 'rbac', config: rbac?.rules === undefined ? undefined : compileRbac(rbac.rules, `${p}.rbac.rules`) };
    }
    case FilterType.localRateLimit:
      return { kind: 'local_ratelimit', config: compileRateLimit(msg, p) };
    default:
      return { kind: 'unknown', type };
  }
}

export function compilePerFilterConfigs(v: unknown, path: string): ReadonlyMap<string, PerFilterConfig> {
  const out = new Map<string, PerFilterConfig>();
  const o = optObj(v, path);
  if (o === undefined) return out;
  for (const [name, cfg] of Object.entries(o)) out.set(name, compilePerFilterConfig(cfg, `${path}[${name}]`));
  return out;
}
