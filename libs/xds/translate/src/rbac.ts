import type { Rule } from '@aviary/mesh-api';
import type { ApplicablePolicies, AuthorizationPolicyEntry } from '@aviary/mesh-model';
import type { Ctx } from './context';
import { N, regexMatcher, T, typed, wrap, type Msg } from './envoy';

/**
 * AuthorizationPolicy → envoy.filters.http.rbac, as Istio's authz builder: one RBAC filter for
 * DENY policies before one for ALLOW policies (a request must pass both); a policy per rule
 * named `ns[<ns>]-policy[<name>]-rule[<i>]`; `from` entries OR'd as principals, `to` entries
 * OR'd as permissions, fields inside an entry AND'd, values inside a field OR'd. ALLOW
 * policies that exist but match nothing deny everything. AUDIT and CUSTOM are not enforced.
 * Parts the translator cannot express fail closed: an ALLOW rule is dropped, a DENY rule
 * loses the part and so denies more.
 */

type Unsupported = { unsupported: string[] };

function stringValueMatcher(value: string, prefix = ''): Msg {
  if (value === '*') return { safe_regex: regexMatcher('.+') };
  if (value.endsWith('*')) return { prefix: prefix + value.slice(0, -1) };
  if (value.startsWith('*')) return { suffix: value.slice(1) };
  return { exact: prefix + value };
}

function orIds(ids: Msg[]): Msg {
  return ids.length === 1 ? ids[0]! : { or_ids: { ids } };
}

function orRules(rules: Msg[]): Msg {
  return rules.length === 1 ? rules[0]! : { or_rules: { rules } };
}

function cidr(value: string): Msg {
  const [address = '', len] = value.split('/');
  const prefixLen = len !== undefined ? Number(len) : address.includes(':') ? 128 : 32;
  return { address_prefix: address, prefix_len: wrap(prefixLen) };
}

function principalId(p: string): Msg {
  return { authenticated: { principal_name: stringValueMatcher(p, p === '*' || p.startsWith('*') ? '' : 'spiffe://') } };
}

function namespaceId(ns: string): Msg {
  return { authenticated: { principal_name: { safe_regex: regexMatcher(`.*/ns/${ns.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/.*`) } } };
}

function principalFields(source: NonNullable<NonNullable<Rule['from']>[number]['source']>, trustDomain: string, u: Unsupported): Msg[] {
  const out: Msg[] = [];
  const field = (values: string[] | undefined, notValues: string[] | undefined, f: (v: string) => Msg) => {
    if (values && values.length > 0) out.push(orIds(values.map(f)));
    if (notValues && notValues.length > 0) out.push({ not_id: orIds(notValues.map(f)) });
  };
  field(source.principals, source.notPrincipals, principalId);
  field(source.namespaces, source.notNamespaces, namespaceId);
  field(
    source.serviceAccounts,
    source.notServiceAccounts,
    (sa) => {
      const [ns, name] = sa.includes('/') ? sa.split('/') : ['default', sa];
      return { authenticated: { principal_name: { exact: `spiffe://${trustDomain}/ns/${ns}/sa/${name}` } } };
    },
  );
  field(source.ipBlocks, source.notIpBlocks, (c) => ({ direct_remote_ip: cidr(c) }));
  field(source.remoteIpBlocks, source.notRemoteIpBlocks, (c) => ({ remote_ip: cidr(c) }));
  if (source.requestPrincipals || source.notRequestPrincipals) u.unsupported.push('source.requestPrincipals (needs RequestAuthentication)');
  return out;
}

function permissionFields(op: NonNullable<NonNullable<Rule['to']>[number]['operation']>): Msg[] {
  const out: Msg[] = [];
  const field = (values: string[] | undefined, notValues: string[] | undefined, f: (v: string) => Msg) => {
    if (values && values.length > 0) out.push(orRules(values.map(f)));
    if (notValues && notValues.length > 0) out.push({ not_rule: orRules(notValues.map(f)) });
  };
  field(op.hosts, op.notHosts, (h) => ({ header: { name: ':authority', string_match: { ...stringValueMatcher(h), ignore_case: true } } }));
  field(op.ports, op.notPorts, (p) => ({ destination_port: Number(p) }));
  field(op.methods, op.notMethods, (m) => ({ header: { name: ':method', string_match: stringValueMatcher(m) } }));
  field(op.paths, op.notPaths, (p) => ({ url_path: { path: stringValueMatcher(p) } }));
  return out;
}

function conditions(rule: Rule, u: Unsupported): { principals: Msg[]; permissions: Msg[] } {
  const principals: Msg[] = [];
  const permissions: Msg[] = [];
  for (const c of rule.when ?? []) {
    const values = c.values ?? [];
    const not = c.notValues ?? [];
    const add = (list: Msg[], f: (v: string) => Msg, negate: (m: Msg) => Msg, combine: (m: Msg[]) => Msg) => {
      if (values.length > 0) list.push(combine(values.map(f)));
      if (not.length > 0) list.push(negate(combine(not.map(f))));
    };
    const header = /^request\.headers\[(.+)\]$/.exec(c.key);
    if (c.key === 'source.namespace') add(principals, namespaceId, (m) => ({ not_id: m }), orIds);
    else if (c.key === 'source.principal') add(principals, principalId, (m) => ({ not_id: m }), orIds);
    else if (c.key === 'source.ip') add(principals, (v) => ({ direct_remote_ip: cidr(v) }), (m) => ({ not_id: m }), orIds);
    else if (c.key === 'remote.ip') add(principals, (v) => ({ remote_ip: cidr(v) }), (m) => ({ not_id: m }), orIds);
    else if (header) add(principals, (v) => ({ header: { name: header[1], string_match: stringValueMatcher(v) } }), (m) => ({ not_id: m }), orIds);
    else if (c.key === 'destination.port') add(permissions, (v) => ({ destination_port: Number(v) }), (m) => ({ not_rule: m }), orRules);
    else u.unsupported.push(`condition ${c.key}`);
  }
  return { principals, permissions };
}

function andIds(ids: Msg[]): Msg {
  return ids.length === 0 ? { any: true } : ids.length === 1 ? ids[0]! : { and_ids: { ids } };
}

function andRules(rules: Msg[]): Msg {
  return rules.length === 0 ? { any: true } : rules.length === 1 ? rules[0]! : { and_rules: { rules } };
}

function rulePolicy(rule: Rule, trustDomain: string, u: Unsupported): Msg {
  const when = conditions(rule, u);
  const froms = rule.from && rule.from.length > 0 ? rule.from : [{}];
  const tos = rule.to && rule.to.length > 0 ? rule.to : [{}];
  return {
    permissions: tos.map((t) => andRules([...(t.operation ? permissionFields(t.operation) : []), ...when.permissions])),
    principals: froms.map((f) => andIds([...(f.source ? principalFields(f.source, trustDomain, u) : []), ...when.principals])),
  };
}

function rbacConfig(ctx: Ctx, action: 'ALLOW' | 'DENY', policies: readonly AuthorizationPolicyEntry[]): Msg {
  const out: Record<string, Msg> = {};
  for (const p of policies) {
    (p.spec.rules ?? []).forEach((rule, i) => {
      const u: Unsupported = { unsupported: [] };
      const policy = rulePolicy(rule, ctx.trustDomain, u);
      if (u.unsupported.length > 0) {
        ctx.problem(`${p.key} rule ${i}: ${u.unsupported.join(', ')} not supported; ${action === 'ALLOW' ? 'rule dropped' : 'ignored (denies more)'}`);
        if (action === 'ALLOW') return;
      }
      out[`ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`] = policy;
    });
  }
  const names = Object.keys(out).sort();
  return { rules: { action, ...(names.length > 0 && { policies: Object.fromEntries(names.map((n) => [n, out[n]])) }) } };
}

/** The RBAC HTTP filters for a workload, DENY first; empty when no policy applies. */
export function rbacFilters(ctx: Ctx, policies: ApplicablePolicies): Msg[] {
  const out: Msg[] = [];
  for (const p of [...policies.audit, ...policies.custom]) ctx.problem(`${p.key}: action ${p.spec.action} is not enforced`);
  if (policies.deny.length > 0) out.push({ name: N.rbacDeny, typed_config: typed(T.RBAC, rbacConfig(ctx, 'DENY', policies.deny)) });
  if (policies.allow.length > 0) out.push({ name: N.rbac, typed_config: typed(T.RBAC, rbacConfig(ctx, 'ALLOW', policies.allow)) });
  return out;
}
