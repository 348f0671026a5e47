import { parseDuration } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';

/** Predicates and small checks shared by the per-kind rules (after Istio's pkg/config/validation). */

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const hostLabel = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const wildcardLabel = /^\*$|^\*-?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$|^\*-?[A-Za-z0-9]$/;
const qualifiedNamePart = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const headerName = /^[-!#$%&'*+.^_`|~0-9A-Za-z]+$/;

export function isDns1123Label(v: string): boolean {
  return v.length <= 63 && dns1123Label.test(v);
}

/**
 * Istio's labels.IsDNS1123Label: a DNS-1123 label in either case. Istio holds subset names, port
 * names and namespace references in hosts and gateway names to it (Kubernetes object names and
 * namespaces stay lowercase: isDns1123Label).
 */
export function isIstioLabel(v: string): boolean {
  return v.length <= 63 && hostLabel.test(v);
}

export function isDns1123Subdomain(v: string): boolean {
  return v.length <= 253 && v.split('.').every((l) => isDns1123Label(l));
}

/** Dot-separated host labels (mixed case allowed, as Istio does), no wildcard. */
export function isDnsName(v: string): boolean {
  return v.length > 0 && v.length <= 255 && v.split('.').every((l) => l.length <= 63 && hostLabel.test(l));
}

/**
 * Istio ValidateWildcardDomain: a wildcard only in the first label (`*`, `*.example.com`,
 * `*foo.com`), and a top-level domain that is not all digits.
 */
export function wildcardDomainError(host: string): string | undefined {
  if (host.length === 0) return 'empty domain name not allowed';
  if (host.length > 255) return `domain name ${JSON.stringify(host)} too long (max 255)`;
  const dot = host.indexOf('.');
  const first = dot < 0 ? host : host.slice(0, dot);
  if (!(first.length <= 63 && (wildcardLabel.test(first) || hostLabel.test(first)))) return `domain name ${JSON.stringify(host)} invalid (label ${JSON.stringify(first)} invalid)`;
  if (dot >= 0) {
    const rest = host.slice(dot + 1);
    const tld = rest.slice(rest.lastIndexOf('.') + 1);
    // Istio ValidateDNS1123Labels: so an IPv4 address is no domain name.
    if (/^\d+$/.test(tld)) return `domain name ${JSON.stringify(rest)} invalid (top level domain ${JSON.stringify(tld)} cannot be all-numeric)`;
    for (const l of rest.split('.')) {
      if (!(l.length <= 63 && hostLabel.test(l))) return `domain name ${JSON.stringify(host)} invalid (label ${JSON.stringify(l)} invalid)`;
    }
  }
  return undefined;
}

export function isIPv4(v: string): boolean {
  const parts = v.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function isIPv6(v: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(v) || v.length < 2) return false;
  const double = v.split('::');
  if (double.length > 2) return false;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(double[0]!);
  const tail = double.length === 2 ? groups(double[1]!) : [];
  const all = [...head, ...tail];
  let width = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i]!;
    if (i === all.length - 1 && g.includes('.')) {
      if (!isIPv4(g)) return false;
      width += 2;
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) width += 1;
    else return false;
  }
  return double.length === 2 ? width < 8 : width === 8;
}

export function isIP(v: string): boolean {
  return isIPv4(v) || isIPv6(v);
}

/** An IP address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`). */
export function isIPOrCIDR(v: string): boolean {
  const slash = v.indexOf('/');
  if (slash < 0) return isIP(v);
  const ip = v.slice(0, slash);
  const bits = v.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return false;
  if (isIPv4(ip)) return Number(bits) <= 32;
  return isIPv6(ip) && Number(bits) <= 128;
}

export function isHeaderName(v: string): boolean {
  return headerName.test(v);
}

export function checkPort(r: Report, path: string, port: number | undefined, what = 'port number'): void {
  if (port === undefined) return;
  if (!Number.isInteger(port) || port < 1 || port > 65535) r.error(path, `${what} ${port} must be in the range 1..65535`);
}

/** Istio ValidateDuration: at least 1ms, millisecond precision. */
export function checkDuration(r: Report, path: string, value: string | undefined, opts: { allowZero?: boolean; min?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) {
    r.error(path, `invalid duration ${JSON.stringify(value)}`);
    return undefined;
  }
  if (ms === 0 && opts.allowZero === true) return 0;
  const min = opts.min ?? 1;
  if (ms < min) r.error(path, min === 1 ? 'duration must be at least 1ms' : `duration must be at least ${min}ms`);
  else if (!Number.isInteger(Math.round(ms * 1e6) / 1e6)) r.error(path, 'only durations to ms precision are supported');
  return ms;
}

export function checkPercentage(r: Report, path: string, p: { value?: number } | undefined): void {
  if (p?.value === undefined) return;
  if (p.value < 0 || p.value > 100) r.error(key(path, 'value'), `percentage ${p.value} must be in range [0, 100]`);
}

/**
 * RE2 syntax check. JavaScript's engine is used to find syntax errors after translating the RE2
 * constructs it lacks (leading inline flags, `(?P<name>`, `\A`, `\z`, one-letter `\pL`, POSIX
 * classes such as `[[:alpha:]]`); constructs RE2 rejects (lookaround, backreferences, repeat
 * counts above 1000) are errors even though JavaScript would accept them.
 */
export function regexError(re: string): string | undefined {
  if (/\(\?<?[=!]/.test(re)) return 'lookaround assertions are not supported by RE2';
  if (/(^|[^\\])\\[1-9]/.test(re)) return 'backreferences are not supported by RE2';
  for (const m of re.matchAll(/(^|[^\\])\{(\d+)(?:,(\d*))?\}/g)) {
    if (Number(m[2]) > 1000 || (m[3] !== undefined && m[3] !== '' && Number(m[3]) > 1000)) return `invalid repeat count: ${m[0].slice(m[1]!.length)} (RE2 allows at most 1000)`;
  }
  const body = re
    .replace(/^\(\?[imsU]+\)/, '')
    .replace(/\(\?P</g, '(?<')
    .replace(/\[:\^?[a-z]+:\]/g, 'a')
    .replace(/(^|[^\\])\\([Az])/g, (_m, pre: string, c: string) => `${pre}${c === 'A' ? '^' : '$'}`)
    .replace(/(^|[^\\])\\([pP])([A-Z])/g, '$1\\$2{$3}');
  try {
    new RegExp(body, 'u');
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: /, '');
  }
}

export function checkRegex(r: Report, path: string, re: string | undefined): void {
  if (re === undefined) return;
  const problem = regexError(re);
  if (problem !== undefined) r.error(path, `invalid regex ${JSON.stringify(re)}: ${problem}`);
}

/** Kubernetes label keys (optional DNS-subdomain prefix + `/` + name) and values. */
export function checkLabels(r: Report, path: string, labels: Record<string, string> | undefined, what = 'label'): void {
  if (labels === undefined) return;
  for (const [k, v] of Object.entries(labels)) {
    const p = key(path, k);
    const problem = qualifiedNameError(k);
    if (problem !== undefined) r.error(p, `invalid ${what} key ${JSON.stringify(k)}: ${problem}`);
    else if (what === 'label' && v !== '' && !(v.length <= 63 && qualifiedNamePart.test(v))) {
      r.error(p, `invalid label value ${JSON.stringify(v)}: must be at most 63 characters, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`);
    }
  }
}

/**
 * Istio validateWorkloadSelector / ValidateAlphaWorkloadSelector: a workload selector's keys are
 * not empty and neither keys nor values hold a wildcard. Nothing more: a key no pod can carry
 * simply selects nothing, as in Istio.
 */
export function checkWorkloadSelector(r: Report, path: string, labels: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(labels ?? {})) {
    const p = key(path, k);
    if (k === '') r.error(p, 'empty key is not supported in selector');
    if (k.includes('*') || v.includes('*')) r.error(p, `wildcard is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`);
  }
}

export function qualifiedNameError(k: string): string | undefined {
  const slash = k.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : k.slice(0, slash);
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) return 'prefix must be a DNS-1123 subdomain';
  if (name.length === 0 || name.length > 63 || !qualifiedNamePart.test(name)) {
    return "name must be 1-63 characters, alphanumeric, '-', '_' or '.', starting and ending alphanumeric";
  }
  return undefined;
}

/**
 * exportTo: `.`, `*` or namespace names, and `~` (visible to no namespace) for ServiceEntries
 * only, as in Istio; `*` and `~` stand alone; no duplicates.
 */
export function checkExportTo(r: Report, path: string, exportTo: string[] | undefined, opts: { allowNone?: boolean } = {}): void {
  if (exportTo === undefined) return;
  const seen = new Set<string>();
  exportTo.forEach((ns, i) => {
    const p = idx(path, i);
    if (seen.has(ns)) r.error(p, `duplicate entry ${JSON.stringify(ns)} in exportTo`);
    seen.add(ns);
    if (ns === '~' && opts.allowNone !== true) r.error(p, 'exportTo ~ (none) is allowed for ServiceEntries only');
    else if (ns !== '.' && ns !== '*' && ns !== '~' && !isDns1123Label(ns)) r.error(p, `invalid exportTo namespace ${JSON.stringify(ns)}`);
  });
  if (exportTo.length > 1 && (seen.has('*') || seen.has('~'))) r.error(path, 'exportTo "*" or "~" must be the only entry');
}

/**
 * Istio ValidateHTTPHeaderOperationName / ValidateHTTPHeaderWithAuthorityOperationName and
 * ValidateHTTPHeaderValue: a header name is not empty and not a pseudo-header (`:`), Host is
 * never removed nor set on responses, and values carry no control characters. Envoy's own header
 * name check (non-strict) refuses only NUL, CR and LF, so names are not held to the RFC token
 * syntax. Istio turns a request `:authority`/`host` set or add into an authority rewrite; Aviary
 * does not (Envoy refuses both in request_headers_to_add), so that is refused as unsupported.
 */
export function checkHeaderOps(r: Report, path: string, ops: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } | undefined, direction: 'request' | 'response'): void {
  if (ops === undefined) return;
  const nameError = (name: string, op: 'set' | 'add' | 'remove'): string | undefined => {
    if (name === '') return 'header name cannot be empty';
    if (/[\0\r\n]/.test(name)) return `invalid header name ${JSON.stringify(name)}`;
    const authority = name.toLowerCase() === ':authority' || name.toLowerCase() === 'host';
    if (authority && direction === 'request' && op !== 'remove') return `setting ${JSON.stringify(name)} in headers.request.${op} is not supported by Aviary yet: use rewrite.authority`;
    if (name.startsWith(':')) return `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`;
    if (name.toLowerCase() === 'host') return `invalid header ${JSON.stringify(name)}: cannot set Host header`;
    return undefined;
  };
  for (const op of ['set', 'add'] as const) {
    for (const [name, value] of Object.entries(ops[op] ?? {})) {
      const p = key(key(path, op), name);
      const problem = nameError(name, op);
      if (problem !== undefined) r.error(p, problem);
      if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) r.error(p, `invalid header value ${JSON.stringify(value)}: no control characters`);
    }
  }
  (ops.remove ?? []).forEach((name, i) => {
    const problem = nameError(name, 'remove');
    if (problem !== undefined) r.error(idx(key(path, 'remove'), i), problem);
  });
}
