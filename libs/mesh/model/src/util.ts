/** Small pure helpers shared by the indexes (and exported for the translators). */

/** True when every label of `selector` is in `labels` with the same value; an empty selector matches all. */
export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** IPv4 dotted quad or IPv6 literal (no brackets, no zone). Hostnames and unix sockets are not. */
export function isIpLiteral(value: string): boolean {
  if (ipv4.test(value)) return true;
  if (!value.includes(':') || !/^[0-9a-fA-F:.]+$/.test(value)) return false;
  try {
    return new URL(`http://[${value}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

/**
 * Expands a short host name the way Istio does for VirtualService and DestinationRule hosts:
 * a name without dots is `<name>.<namespace>.svc.<domainSuffix>`; anything else is kept.
 */
export function resolveHost(host: string, namespace: string, domainSuffix: string): string {
  if (host === '*' || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

/** Istio host matching: `*.example.com` matches `a.example.com` and `*` matches all. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1));
  return false;
}

/** Whether two host patterns (either may be a wildcard) can both match some host. */
export function hostsIntersect(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/** Stable string comparison (code unit order; never locale-dependent). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Recursively frozen copy of JSON-like data. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

export function keyOf(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** Whether a resource in `ownerNamespace` with `exportTo` is visible from `namespace`. */
export function isExportedTo(exportTo: readonly string[] | undefined, ownerNamespace: string, namespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*') return true;
    if (e === '.' ? ownerNamespace === namespace : e === namespace) return true;
  }
  return false;
}
