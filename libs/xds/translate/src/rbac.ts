import type { Rule } from '@aviary/mesh-api';
import type { AuthorizationPolicyEntry } from '@aviary/mesh-model';
import { regexMatcher, wrap, type Msg } from './envoy';
import { AN, JWT_PAYLOAD_KEY } from './authz/names';

/**
 * One AuthorizationPolicy rule → one Envoy RBAC policy, as Istio's authz model
 * (pilot/pkg/security/authz/model): `from` entries OR'd as principals, `to` entries OR'd as
 * permissions, `when` conditions AND'd into every principal (source and request attributes) or
 * permission (destination attributes); fields inside an entry AND'd, values inside a field
 * OR'd, `not*` values as a NOT of their OR.
 *
 * TCP context (network RBAC on a non-HTTP port): fields that need HTTP (hosts, methods, paths,
 * request principals, request headers, `request.auth.*`) cannot be evaluated. Istio's fail-closed
 * rule, implemented here: in an ALLOW policy such a rule is dropped whole (it matches nothing,
 * so it allows less); in a DENY, AUDIT or CUSTOM policy only that field is left out, so the
 * rule's remaining (non-HTTP) part decides and it denies more — a DENY rule made only of
 * HTTP fields denies every connection.
 */

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

type Built = { ok: Msg } | { httpOnly: string };

function escapeRegex(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** Istio's StringMatcher: `*` any (non-empty), `x*` prefix, `*x` suffix, else exact. */
export function stringValueMatcher(value: string, prefix = '', ignoreCase = false): Msg {
  const ic = ignoreCase ? { ignore_case: true } : {};
  if (value === '*') return { safe_regex: regexMatcher('.+') };
  if (value.endsWith('*')) return { prefix: prefix + value.slice(0, -1), ...ic };
  if (value.startsWith('*')) return { suffix: value.slice(1), ...ic };
  return { exact: prefix + value, ...ic };
}

function orIds(ids: Msg[]): Msg {
  return ids.length === 1 ? ids[0]! : { or_ids: { ids } };
}

function orRules(rules: Msg[]): Msg {
  return rules.length === 1 ? rules[0]! : { or_rules: { rules } };
}

function andIds(ids: Msg[]): Msg {
  return ids.length === 0 ? { any: true } : ids.length === 1 ? ids[0]! : { and_ids: { ids } };
}

function andRules(rules: Msg[]): Msg {
  return rules.length === 0 ? { any: true } : rules.length === 1 ? rules[0]! : { and_rules: { rules } };
}

function cidr(value: string): Msg {
  const [address = '', len] = value.split('/');
  const prefixLen = len !== undefined ? Number(len) : address.includes(':') ? 128 : 32;
  return { address_prefix: address, prefix_len: wrap(prefixLen) };
}

const authenticated = (m: Msg): Msg => ({ authenticated: { principal_name: m } });

/** A matcher on the verified JWT payload at `path` (claim names, nested for `[a][b]`). */
function jwtClaim(path: readonly string[], value: Msg): Msg {
  return { sourced_metadata: { metadata_matcher: { filter: AN.jwtAuthn, path: [JWT_PAYLOAD_KEY, ...path].map((key) => ({ key })), value } } };
}

/** A claim that may be a string or a list of strings (`aud`, custom claims): either shape matches. */
function jwtListOrString(path: readonly string[], values: readonly string[]): Msg {
  return orIds(values.flatMap((v) => [jwtClaim(path, { string_match: stringValueMatcher(v) }), jwtClaim(path, { list_match: { one_of: { string_match: stringValueMatcher(v) } } })]));
}

const matchAny: Msg = { safe_regex: regexMatcher('.+') };

/** `iss/sub` request principals, split at the last `/` (issuers may be URLs), with Istio's wildcards. */
function requestPrincipal(value: string): Msg {
  const i = value.lastIndexOf('/');
  const found = i >= 0;
  const [iss, sub] = found ? [value.slice(0, i), value.slice(i + 1)] : [value, ''];
  let mi: Msg;
  let ms: Msg;
  if (value === '*') [mi, ms] = [matchAny, matchAny];
  else if (value.startsWith('*')) {
    if (found) [mi, ms] = [iss === '*' ? matchAny : { suffix: iss.slice(1) }, { exact: sub }];
    else [mi, ms] = [matchAny, { suffix: value.slice(1) }];
  } else if (value.endsWith('*')) {
    if (found) [mi, ms] = [{ exact: iss }, sub === '*' ? matchAny : { prefix: sub.slice(0, -1) }];
    else [mi, ms] = [{ prefix: value.slice(0, -1) }, matchAny];
  } else [mi, ms] = [{ exact: iss }, { exact: sub }];
  return { and_ids: { ids: [jwtClaim(['iss'], { string_match: mi }), jwtClaim(['sub'], { string_match: ms })] } };
}

/** `[a][b]` → `['a', 'b']`; undefined when malformed. */
function bracketed(s: string): string[] | undefined {
  const out: string[] = [];
  const re = /\[([^\]]+)\]/y;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    out.push(m[1]!);
    end = re.lastIndex;
  }
  return out.length > 0 && end === s.length ? out : undefined;
}

interface Field {
  readonly key: string;
  readonly values: readonly string[];
  readonly notValues: readonly string[];
  readonly httpOnly: boolean;
  /** An attribute the translator does not know (validation refuses it): never evaluable. */
  readonly unknown?: boolean;
  /** Matcher for a list of values, OR'd (principal or permission, by the field's side). */
  readonly build: (values: readonly string[]) => Msg;
}

const perValue = (f: (v: string) => Msg, or: (m: Msg[]) => Msg) => (values: readonly string[]) => or(values.map(f));

function principalFields(rule: Rule, policyNamespace: string): Field[][] {
  const when = conditionFields(rule, 'principal', policyNamespace);
  const froms = rule.from && rule.from.length > 0 ? rule.from : [undefined];
  return froms.map((f) => {
    const s = f?.source ?? {};
    const field = (key: string, values: string[] | undefined, notValues: string[] | undefined, httpOnly: boolean, build: (v: readonly string[]) => Msg): Field[] =>
      (values?.length ?? 0) + (notValues?.length ?? 0) > 0 ? [{ key, values: values ?? [], notValues: notValues ?? [], httpOnly, build }] : [];
    return [
      ...field('principals', s.principals, s.notPrincipals, false, perValue((v) => authenticated(stringValueMatcher(v, v === '*' || v.startsWith('*') ? '' : 'spiffe://')), orIds)),
      ...field('serviceAccounts', s.serviceAccounts, s.notServiceAccounts, false, perValue((v) => serviceAccountId(policyNamespace, v), orIds)),
      ...field('requestPrincipals', s.requestPrincipals, s.notRequestPrincipals, true, perValue(requestPrincipal, orIds)),
      ...field('namespaces', s.namespaces, s.notNamespaces, false, perValue(namespaceId, orIds)),
      ...field('trustDomains', s.trustDomains, s.notTrustDomains, false, perValue(trustDomainId, orIds)),
      ...field('remoteIpBlocks', s.remoteIpBlocks, s.notRemoteIpBlocks, false, perValue((c) => ({ remote_ip: cidr(c) }), orIds)),
      ...field('ipBlocks', s.ipBlocks, s.notIpBlocks, false, perValue((c) => ({ direct_remote_ip: cidr(c) }), orIds)),
      ...when,
    ];
  });
}

function namespaceId(ns: string): Msg {
  return authenticated({ safe_regex: regexMatcher(`.*/ns/${escapeRegex(ns).replace(/\*/g, '.*')}/.*`) });
}

/** The peer's SPIFFE trust domain (`spiffe://<td>/...`); `*` matches any run of characters within it. */
function trustDomainId(td: string): Msg {
  return authenticated({ safe_regex: regexMatcher(`spiffe://${escapeRegex(td).replace(/\*/g, '[^/]*')}/.*`) });
}

/** Istio's service account regex: `<sa>` in the policy's namespace or `<ns>/<sa>`, extra path segments allowed. */
function serviceAccountId(policyNamespace: string, value: string): Msg {
  const slash = value.indexOf('/');
  const [ns, sa] = slash < 0 ? [policyNamespace, value] : [value.slice(0, slash), value.slice(slash + 1)];
  return authenticated({ safe_regex: regexMatcher(`spiffe://.+/ns/${escapeRegex(ns)}/(.+/|)sa/${escapeRegex(sa)}(/.+)?`) });
}

/**
 * Istio's host matcher on `:authority`, case-insensitive: `*` any present value, `*x` suffix,
 * `x*` prefix; an exact host also matches with any port (`example.com:8080`) unless it names one.
 */
function hostRule(host: string): Msg {
  if (host === '*') return { header: { name: ':authority', present_match: true } };
  if (host.startsWith('*') || host.endsWith('*')) return { header: { name: ':authority', string_match: stringValueMatcher(host, '', true) } };
  const port = host.includes(':') ? '' : '(?::\\d+)?';
  return { header: { name: ':authority', string_match: { safe_regex: regexMatcher(`(?i)^${escapeRegex(host)}${port}$`) } } };
}

function permissionFields(rule: Rule, policyNamespace: string): Field[][] {
  const when = conditionFields(rule, 'permission', policyNamespace);
  const tos = rule.to && rule.to.length > 0 ? rule.to : [undefined];
  return tos.map((t) => {
    const o = t?.operation ?? {};
    const field = (key: string, values: string[] | undefined, notValues: string[] | undefined, httpOnly: boolean, build: (v: readonly string[]) => Msg): Field[] =>
      (values?.length ?? 0) + (notValues?.length ?? 0) > 0 ? [{ key, values: values ?? [], notValues: notValues ?? [], httpOnly, build }] : [];
    return [
      ...field('hosts', o.hosts, o.notHosts, true, perValue(hostRule, orRules)),
      ...field('methods', o.methods, o.notMethods, true, perValue((m) => ({ header: { name: ':method', string_match: stringValueMatcher(m) } }), orRules)),
      ...field('paths', o.paths, o.notPaths, true, perValue((p) => ({ url_path: { path: stringValueMatcher(p) } }), orRules)),
      ...field('ports', o.ports, o.notPorts, false, perValue((p) => ({ destination_port: Number(p) }), orRules)),
      ...when,
    ];
  });
}

/** `when` conditions of one side (principal: source and request attributes; permission: destination). */
function conditionFields(rule: Rule, side: 'principal' | 'permission', policyNamespace: string): Field[] {
  const out: Field[] = [];
  for (const c of rule.when ?? []) {
    const base = { key: c.key, values: c.values ?? [], notValues: c.notValues ?? [] };
    const header = /^request\.headers\[(.+)\]$/.exec(c.key);
    const claims = c.key.startsWith('request.auth.claims') ? bracketed(c.key.slice('request.auth.claims'.length)) : undefined;
    let f: Omit<Field, 'key' | 'values' | 'notValues' | 'unknown'> & { side: 'principal' | 'permission'; unknown?: boolean };
    if (c.key === 'source.ip') f = { side: 'principal', httpOnly: false, build: perValue((v) => ({ direct_remote_ip: cidr(v) }), orIds) };
    else if (c.key === 'remote.ip') f = { side: 'principal', httpOnly: false, build: perValue((v) => ({ remote_ip: cidr(v) }), orIds) };
    else if (c.key === 'source.namespace') f = { side: 'principal', httpOnly: false, build: perValue(namespaceId, orIds) };
    else if (c.key === 'source.principal') f = { side: 'principal', httpOnly: false, build: perValue((v) => authenticated(stringValueMatcher(v, v === '*' || v.startsWith('*') ? '' : 'spiffe://')), orIds) };
    else if (c.key === 'source.serviceAccount') f = { side: 'principal', httpOnly: false, build: perValue((v) => serviceAccountId(policyNamespace, v), orIds) };
    else if (c.key === 'request.auth.principal') f = { side: 'principal', httpOnly: true, build: perValue(requestPrincipal, orIds) };
    else if (c.key === 'request.auth.audiences') f = { side: 'principal', httpOnly: true, build: (v) => jwtListOrString(['aud'], v) };
    else if (c.key === 'request.auth.presenter') f = { side: 'principal', httpOnly: true, build: perValue((v) => jwtClaim(['azp'], { string_match: stringValueMatcher(v) }), orIds) };
    else if (claims) f = { side: 'principal', httpOnly: true, build: (v) => jwtListOrString(claims, v) };
    else if (header) f = { side: 'principal', httpOnly: true, build: perValue((v) => ({ header: { name: header[1], string_match: stringValueMatcher(v) } }), orIds) };
    else if (c.key === 'destination.ip') f = { side: 'permission', httpOnly: false, build: perValue((v) => ({ destination_ip: cidr(v) }), orRules) };
    else if (c.key === 'destination.port') f = { side: 'permission', httpOnly: false, build: perValue((v) => ({ destination_port: Number(v) }), orRules) };
    else if (c.key === 'connection.sni') f = { side: 'permission', httpOnly: false, build: perValue((v) => ({ requested_server_name: stringValueMatcher(v) }), orRules) };
    // Validation refuses every other key; one that slips through is treated as a field that
    // cannot be evaluated anywhere: its ALLOW rule is dropped, its DENY rule denies more.
    else f = { side: 'principal', httpOnly: false, unknown: true, build: () => ({ any: true }) };
    if (f.side === side) out.push({ ...base, httpOnly: f.httpOnly, unknown: f.unknown === true, build: f.build });
  }
  return out;
}

function combine(fields: readonly Field[], tcp: boolean, side: 'principal' | 'permission'): Built {
  const parts: Msg[] = [];
  for (const f of fields) {
    if (f.unknown === true || (tcp && f.httpOnly)) return { httpOnly: f.key };
    if (f.values.length > 0) parts.push(f.build(f.values));
    if (f.notValues.length > 0) parts.push(side === 'principal' ? { not_id: f.build(f.notValues) } : { not_rule: f.build(f.notValues) });
  }
  return { ok: side === 'principal' ? andIds(parts) : andRules(parts) };
}

/**
 * The RBAC policy for one rule, or the HTTP-only field that makes an ALLOW rule unusable on TCP
 * (then the caller drops the rule). For other actions HTTP-only fields are left out on TCP.
 */
export function rulePolicy(rule: Rule, policy: AuthorizationPolicyEntry, tcp: boolean, allow: boolean): { policy: Msg } | { dropped: string } {
  const side = (lists: Field[][], which: 'principal' | 'permission'): Msg[] | string => {
    const out: Msg[] = [];
    for (const fields of lists) {
      const kept = allow ? fields : fields.filter((f) => f.unknown !== true && !(tcp && f.httpOnly));
      const built = combine(kept, tcp, which);
      if ('httpOnly' in built) return built.httpOnly;
      out.push(built.ok);
    }
    return out;
  };
  const principals = side(principalFields(rule, policy.namespace), 'principal');
  if (typeof principals === 'string') return { dropped: principals };
  const permissions = side(permissionFields(rule, policy.namespace), 'permission');
  if (typeof permissions === 'string') return { dropped: permissions };
  return { policy: { permissions, principals } };
}

/** Istio's RBAC policy name for a rule. */
export function policyName(p: AuthorizationPolicyEntry, ruleIndex: number): string {
  return `ns[${p.namespace}]-policy[${p.name}]-rule[${ruleIndex}]`;
}
