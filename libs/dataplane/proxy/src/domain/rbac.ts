import { headerMatcher, type HeaderLookup, stringMatcher, type StringPredicate } from './matchers';
import { arr, invalid, isObj, num, obj, optObj, type Raw, str } from './raw';

/** What RBAC sees of a request. */
export interface RbacRequest {
  readonly header: HeaderLookup;
  /** Path without the query string. */
  readonly path: string;
  /** The peer's authenticated identity (URI SAN), undefined on plaintext or without a client cert. */
  readonly principal: string | undefined;
  readonly sourceIp: string;
  readonly destinationPort: number;
}

type Predicate = (r: RbacRequest) => boolean;

export interface CompiledRbac {
  readonly action: 'ALLOW' | 'DENY' | 'LOG';
  readonly policies: readonly { readonly name: string; readonly matches: Predicate }[];
}

export type RbacVerdict = { readonly allowed: true; readonly policy?: string } | { readonly allowed: false; readonly policy: string | undefined };

/** `config.rbac.v3.RBAC` (`rules`). A request matches a policy when any permission and any principal match. */
export function compileRbac(v: unknown, path: string): CompiledRbac {
  const o = obj(v, path);
  const actionRaw = o.action ?? 'ALLOW';
  const action = typeof actionRaw === 'number' ? (['ALLOW', 'DENY', 'LOG'] as const)[actionRaw] : (String(actionRaw) as CompiledRbac['action']);
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'LOG') invalid(`${path}.action`, `unknown action ${String(actionRaw)}`);
  const policiesObj = optObj(o.policies, `${path}.policies`) ?? {};
  const policies = Object.keys(policiesObj)
    .sort()
    .map((name) => {
      const p = `${path}.policies[${name}]`;
      const pol = obj(policiesObj[name], p);
      if (pol.condition !== undefined || pol.checked_condition !== undefined) invalid(`${p}.condition`, 'CEL conditions are not supported');
      const perms = arr(pol.permissions, `${p}.permissions`).map((x, i) => permission(x, `${p}.permissions[${i}]`));
      const principals = arr(pol.principals, `${p}.principals`).map((x, i) => principal(x, `${p}.principals[${i}]`));
      if (perms.length === 0) invalid(`${p}.permissions`, 'at least one permission is required');
      if (principals.length === 0) invalid(`${p}.principals`, 'at least one principal is required');
      return { name, matches: (r: RbacRequest) => perms.some((m) => m(r)) && principals.some((m) => m(r)) };
    });
  return { action, policies };
}

export function evaluateRbac(rbac: CompiledRbac, r: RbacRequest): RbacVerdict {
  const hit = rbac.policies.find((p) => p.matches(r));
  switch (rbac.action) {
    case 'ALLOW':
      return hit === undefined ? { allowed: false, policy: undefined } : { allowed: true, policy: hit.name };
    case 'DENY':
      return hit === undefined ? { allowed: true } : { allowed: false, policy: hit.name };
    default:
      return { allowed: true };
  }
}

function oneOf(o: Raw, path: string, keys: readonly string[]): string {
  const set = keys.filter((k) => o[k] !== undefined && o[k] !== null);
  if (set.length !== 1) invalid(path, `exactly one rule is required (got ${set.length === 0 ? 'none' : set.join(', ')})`);
  return set[0] as string;
}

function pathMatcher(v: unknown, path: string): StringPredicate {
  const o = obj(v, path);
  if (o.path === undefined) invalid(`${path}.path`, 'is required');
  return stringMatcher(o.path, `${path}.path`);
}

function cidr(v: unknown, path: string): (ip: string) => boolean {
  const o = obj(v, path);
  const prefix = str(o.address_prefix, `${path}.address_prefix`);
  const len = num((isObj(o.prefix_len) ? o.prefix_len.value : o.prefix_len) ?? (prefix.includes(':') ? 128 : 32), `${path}.prefix_len`);
  if (prefix.includes(':')) return (ip) => ip === prefix; // IPv6: exact address only
  const toInt = (ip: string): number | undefined => {
    const parts = ip.replace(/^::ffff:/, '').split('.');
    if (parts.length !== 4) return undefined;
    return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
  };
  const base = toInt(prefix);
  if (base === undefined) invalid(`${path}.address_prefix`, `not an IPv4 address: ${prefix}`);
  const mask = len === 0 ? 0 : 2 ** 32 - 2 ** (32 - len);
  return (ip) => {
    const n = toInt(ip);
    return n !== undefined && (n & mask) >>> 0 === (base & mask) >>> 0;
  };
}

const permissionKeys = ['any', 'header', 'url_path', 'and_rules', 'or_rules', 'not_rule', 'destination_port', 'destination_ip', 'requested_server_name', 'metadata', 'matcher', 'destination_port_range'];

function permission(v: unknown, path: string): Predicate {
  const o = obj(v, path);
  const k = oneOf(o, path, permissionKeys);
  const p = `${path}.${k}`;
  switch (k) {
    case 'any':
      return () => true;
    case 'header': {
      const m = headerMatcher(o.header, p);
      return (r) => m(r.header);
    }
    case 'url_path': {
      const m = pathMatcher(o.url_path, p);
      return (r) => m(r.path);
    }
    case 'and_rules': {
      const rules = arr(obj(o.and_rules, p).rules, `${p}.rules`).map((x, i) => permission(x, `${p}.rules[${i}]`));
      return (r) => rules.every((m) => m(r));
    }
    case 'or_rules': {
      const rules = arr(obj(o.or_rules, p).rules, `${p}.rules`).map((x, i) => permission(x, `${p}.rules[${i}]`));
      return (r) => rules.some((m) => m(r));
    }
    case 'not_rule': {
      const m = permission(o.not_rule, p);
      return (r) => !m(r);
    }
    case 'destination_port': {
      const port = num(o.destination_port, p);
      return (r) => r.destinationPort === port;
    }
    case 'destination_port_range': {
      const range = obj(o.destination_port_range, p);
      const start = num(range.start ?? 0, `${p}.start`);
      const end = num(range.end ?? 0, `${p}.end`);
      return (r) => r.destinationPort >= start && r.destinationPort < end;
    }
    default:
      return invalid(p, `unsupported RBAC permission ${k}`);
  }
}

const principalKeys = ['any', 'authenticated', 'header', 'url_path', 'and_ids', 'or_ids', 'not_id', 'direct_remote_ip', 'remote_ip', 'source_ip', 'metadata', 'filter_state'];

function principal(v: unknown, path: string): Predicate {
  const o = obj(v, path);
  const k = oneOf(o, path, principalKeys);
  const p = `${path}.${k}`;
  switch (k) {
    case 'any':
      return () => true;
    case 'authenticated': {
      const a = obj(o.authenticated, p);
      if (a.principal_name === undefined) return (r) => r.principal !== undefined;
      const m = stringMatcher(a.principal_name, `${p}.principal_name`);
      return (r) => r.principal !== undefined && m(r.principal);
    }
    case 'header': {
      const m = headerMatcher(o.header, p);
      return (r) => m(r.header);
    }
    case 'url_path': {
      const m = pathMatcher(o.url_path, p);
      return (r) => m(r.path);
    }
    case 'and_ids': {
      const ids = arr(obj(o.and_ids, p).ids, `${p}.ids`).map((x, i) => principal(x, `${p}.ids[${i}]`));
      return (r) => ids.every((m) => m(r));
    }
    case 'or_ids': {
      const ids = arr(obj(o.or_ids, p).ids, `${p}.ids`).map((x, i) => principal(x, `${p}.ids[${i}]`));
      return (r) => ids.some((m) => m(r));
    }
    case 'not_id': {
      const m = principal(o.not_id, p);
      return (r) => !m(r);
    }
    case 'direct_remote_ip':
    case 'remote_ip':
    case 'source_ip': {
      const m = cidr(o[k], p);
      return (r) => m(r.sourceIp);
    }
    default:
      return invalid(p, `unsupported RBAC principal ${k}`);
  }
}
