import type { ApplicablePolicies, AuthorizationPolicyEntry, RequestAuthenticationEntry } from '@aviary/mesh-model';
import { outboundClusters, type OutboundCluster } from '../clusters';
import type { Ctx } from '../context';
import { N, T, typed, type Msg } from '../envoy';
import { policyName, rulePolicy, type RbacAction } from '../rbac';
import { extAuthzFilter, resolveProvider } from './ext-authz';
import { jwtAuthnFilter } from './jwt';
import { AN, AT, EXT_AUTHZ_POLICY_PREFIX, EXT_AUTHZ_SHADOW_PREFIX } from './names';

/**
 * The security filters of one HTTP connection manager or TCP filter chain, in Istio's order:
 * jwt_authn (HTTP only), then RBAC for AUDIT (action LOG: sets `access_log_hint`), CUSTOM (a
 * shadow RBAC that marks matching requests, then ext_authz for those), DENY, ALLOW. A request
 * must pass every one. ALLOW policies that exist but match nothing deny everything.
 */

/** The policies and request authentications in force for one listener (workload or target scoped). */
export interface SecurityScope {
  readonly policies: ApplicablePolicies;
  readonly requestAuthentications: readonly RequestAuthenticationEntry[];
}

export interface SecurityFilters {
  readonly filters: readonly Msg[];
  /** Outbound clusters the filters call (ext_authz providers); the proxy must have them. */
  readonly clusters: readonly OutboundCluster[];
}

interface Context {
  readonly ctx: Ctx;
  readonly tcp: boolean;
  /** Where, for problem messages. */
  readonly where: string;
}

function policies(c: Context, entries: readonly AuthorizationPolicyEntry[], allow: boolean, prefix = ''): Record<string, Msg> {
  const out: Record<string, Msg> = {};
  for (const p of entries) {
    (p.spec.rules ?? []).forEach((rule, i) => {
      const built = rulePolicy(rule, p, c.tcp, allow);
      if ('dropped' in built) {
        const why = c.tcp ? 'needs HTTP' : 'is not supported';
        c.ctx.problem(`${p.key} rule ${i}: ${built.dropped} ${why}; on ${c.where} the ALLOW rule matches nothing`);
        return;
      }
      out[prefix + policyName(p, i)] = built.policy;
    });
  }
  return Object.fromEntries(Object.keys(out).sort().map((n) => [n, out[n]!]));
}

function rules(action: RbacAction, byName: Record<string, Msg>): Msg {
  return { action, ...(Object.keys(byName).length > 0 && { policies: byName }) };
}

function rbac(c: Context, name: string, config: Msg): Msg {
  return c.tcp
    ? { name: AN.networkRbac, typed_config: typed(AT.NetworkRBAC, { stat_prefix: 'tcp.', ...config }) }
    : { name, typed_config: typed(T.RBAC, config) };
}

function customFilters(c: Context, custom: readonly AuthorizationPolicyEntry[]): SecurityFilters {
  if (custom.length === 0) return { filters: [], clusters: [] };
  const names = [...new Set(custom.map((p) => p.spec.provider?.name ?? ''))].sort();
  let failure: string | undefined;
  let provider: ReturnType<typeof resolveProvider> | undefined;
  if (names.length > 1) failure = `CUSTOM policies name several providers (${names.join(', ')}); Istio allows one per workload`;
  else if (c.tcp) failure = 'CUSTOM (ext_authz) is enforced on HTTP only';
  else {
    provider = resolveProvider(c.ctx, names[0]!);
    if ('error' in provider) failure = provider.error;
  }
  if (failure !== undefined || provider === undefined || 'error' in provider) {
    // Fail closed: requests the CUSTOM rules match are denied.
    c.ctx.problem(`${custom.map((p) => p.key).join(', ')}: ${failure}; on ${c.where} the requests they match are denied`);
    return { filters: [rbac(c, `${N.rbac}.CUSTOM`, { rules: rules('DENY', policies(c, custom, false)) })], clusters: [] };
  }
  const shadow = policies(c, custom, false, EXT_AUTHZ_POLICY_PREFIX);
  const service = provider.service;
  const port = service.ports.find((p) => p.number === provider.port)!;
  const cluster = outboundClusters(c.ctx, service, port).filter((x) => x.name === provider.cluster);
  return {
    filters: [rbac(c, AN.httpRbac, { shadow_rules: rules('DENY', shadow), shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_PREFIX }), extAuthzFilter(provider)],
    clusters: cluster,
  };
}

function build(c: Context, scope: SecurityScope): SecurityFilters {
  const { policies: applicable } = scope;
  const filters: Msg[] = [];
  if (!c.tcp) {
    const jwt = jwtAuthnFilter(c.ctx, scope.requestAuthentications);
    if (jwt) filters.push(jwt);
  }
  if (applicable.audit.length > 0) {
    const byName = policies(c, applicable.audit, false);
    if (Object.keys(byName).length > 0) filters.push(rbac(c, `${N.rbac}.AUDIT`, { rules: rules('LOG', byName) }));
  }
  const custom = customFilters(c, applicable.custom);
  filters.push(...custom.filters);
  if (applicable.deny.length > 0) filters.push(rbac(c, N.rbacDeny, { rules: rules('DENY', policies(c, applicable.deny, false)) }));
  if (applicable.allow.length > 0) filters.push(rbac(c, N.rbac, { rules: rules('ALLOW', policies(c, applicable.allow, true)) }));
  return { filters, clusters: custom.clusters };
}

/** HTTP filters (before the router and any other filter) for an HCM. */
export function httpSecurityFilters(ctx: Ctx, scope: SecurityScope, where: string): SecurityFilters {
  return build({ ctx, tcp: false, where }, scope);
}

/** Network filters (before tcp_proxy) for a non-HTTP filter chain. */
export function tcpSecurityFilters(ctx: Ctx, scope: SecurityScope, where: string): readonly Msg[] {
  return build({ ctx, tcp: true, where }, scope).filters;
}
