import type { HTTPMatchRequest, HTTPRoute, StringMatch } from '@aviary/mesh-api';
import type { VirtualServiceEntry } from './types';
import { isExportedTo, resolveHost } from './util';

/**
 * Delegate VirtualServices, as Istio merges them (pilot/pkg/model virtualservice.go): a root
 * VirtualService's http route with `delegate: {name, namespace}` is replaced by the delegate's
 * routes, each intersected with the root route. A delegate is a VirtualService without hosts;
 * it routes nothing by itself and is visible to a root only per its exportTo.
 */

/** Whether a VirtualService is a delegate (referenced by roots, routing nothing itself). */
export function isDelegate(entry: VirtualServiceEntry): boolean {
  return (entry.spec.hosts ?? []).length === 0;
}

/** Whether a VirtualService has a route that delegates. */
export function isRoot(entry: VirtualServiceEntry): boolean {
  return (entry.spec.http ?? []).some((h) => h.delegate !== undefined);
}

/** `namespace/name` of the VirtualService a delegating route names (namespace defaults to the root's). */
export function delegateRef(route: HTTPRoute, rootNamespace: string): string {
  return `${route.delegate?.namespace || rootNamespace}/${route.delegate?.name ?? ''}`;
}

/**
 * The root entry with every delegating route replaced by the merged routes of its delegate.
 * A delegate that does not exist or is not exported to the root's namespace contributes no
 * routes (as Istio: only that route is dropped). `delegates` is keyed by `namespace/name`.
 */
export function mergeDelegates(root: VirtualServiceEntry, delegates: ReadonlyMap<string, VirtualServiceEntry>, domainSuffix: string): VirtualServiceEntry {
  if (!isRoot(root)) return root;
  const http: HTTPRoute[] = [];
  for (const route of root.spec.http ?? []) {
    if (route.delegate === undefined) {
      http.push(route);
      continue;
    }
    const delegate = delegates.get(delegateRef(route, root.namespace));
    if (delegate === undefined || !isExportedTo(delegate.spec.exportTo, delegate.namespace, root.namespace)) continue;
    for (const sub of delegate.spec.http ?? []) {
      const merged = mergeHttpRoute(route, resolveDestinations(sub, delegate.namespace, domainSuffix));
      if (merged !== undefined) http.push(merged);
    }
  }
  return Object.freeze({ ...root, spec: Object.freeze({ ...root.spec, http }) });
}

/**
 * Short destination hosts of a delegate's route are relative to the delegate's namespace (Istio
 * resolves them before merging); after the merge they would be read relative to the root's.
 */
function resolveDestinations(route: HTTPRoute, namespace: string, domainSuffix: string): HTTPRoute {
  const fqdn = <D extends { host: string }>(d: D): D => ({ ...d, host: resolveHost(d.host, namespace, domainSuffix) });
  return {
    ...route,
    ...(route.route && { route: route.route.map((r) => ({ ...r, destination: fqdn(r.destination) })) }),
    ...(route.mirror && { mirror: fqdn(route.mirror) }),
    ...(route.mirrors && { mirrors: route.mirrors.map((m) => ({ ...m, destination: fqdn(m.destination) })) }),
  };
}

/** Istio mergeHTTPRoute: undefined when the delegate route's matches conflict with the root's. */
export function mergeHttpRoute(root: HTTPRoute, sub: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match ?? [], sub.match ?? []);
  if (match === undefined) return undefined;
  const out: HTTPRoute = { ...sub };
  if (match.length > 0) out.match = match;
  else delete out.match;
  const name = joinNames(root.name, sub.name);
  if (name !== undefined) out.name = name;
  // The root's settings apply where the delegate route leaves them unset.
  for (const field of inherited) {
    if (out[field] === undefined && root[field] !== undefined) (out as Record<string, unknown>)[field] = root[field];
  }
  return out;
}

const inherited = ['rewrite', 'directResponse', 'timeout', 'retries', 'fault', 'mirror', 'mirrorPercent', 'mirrorPercentage', 'corsPolicy', 'mirrors', 'headers'] as const;

function joinNames(root: string | undefined, sub: string | undefined): string | undefined {
  if (!sub) return root || undefined;
  return root ? `${root}-${sub}` : sub;
}

/**
 * Istio mergeHTTPMatchRequests: every delegate match is intersected with each root match it does
 * not conflict with; a delegate match compatible with no root match drops the whole route.
 * No matches on either side: the other side's.
 */
export function mergeMatches(root: readonly HTTPMatchRequest[], sub: readonly HTTPMatchRequest[]): HTTPMatchRequest[] | undefined {
  if (root.length === 0) return [...sub];
  if (sub.length === 0) return [...root];
  const out: HTTPMatchRequest[] = [];
  for (const leaf of sub) {
    const compatible = root.filter((r) => !matchConflict(r, leaf));
    if (compatible.length === 0) return undefined;
    for (const r of compatible) out.push(mergeMatch(r, leaf));
  }
  return out;
}

function mergeMatch(root: HTTPMatchRequest, leaf: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest = { ...leaf };
  const set = <K extends keyof HTTPMatchRequest>(k: K, v: HTTPMatchRequest[K] | undefined) => {
    if (v === undefined) delete out[k];
    else out[k] = v;
  };
  set('name', joinNames(root.name, leaf.name));
  for (const k of ['uri', 'scheme', 'method', 'authority', 'sourceNamespace', 'statPrefix', 'port'] as const) {
    if (!leaf[k]) set(k, root[k] as never);
  }
  if ((leaf.gateways ?? []).length === 0) set('gateways', root.gateways);
  for (const k of ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels'] as const) {
    if (root[k] !== undefined || leaf[k] !== undefined) set(k, { ...root[k], ...leaf[k] } as never);
  }
  return out;
}

/** Istio hasConflict: whether a delegate match cannot be narrowed from a root match. */
function matchConflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  for (const k of ['uri', 'scheme', 'method', 'authority'] as const) {
    if (stringMatchConflict(root[k], leaf[k])) return true;
  }
  for (const k of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const [name, m] of Object.entries(leaf[k] ?? {})) if (stringMatchConflict(root[k]?.[name], m)) return true;
  }
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) {
    if (root.sourceLabels?.[k] !== undefined && root.sourceLabels[k] !== v) return true;
  }
  const rootGateways = root.gateways ?? [];
  const leafGateways = leaf.gateways ?? [];
  if (rootGateways.length > 0 && leafGateways.length > 0) {
    if (rootGateways.length < leafGateways.length || leafGateways.some((g) => !rootGateways.includes(g))) return true;
  }
  return false;
}

/**
 * Istio stringMatchConflict: a leaf narrows a root when either is unset, both are the same exact
 * value, or the leaf's prefix or exact value starts with the root's prefix. Regexes only pair
 * with an unset side.
 */
function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (root === undefined || leaf === undefined) return false;
  if (root.regex || leaf.regex) return true;
  if (root.exact) return leaf.prefix ? true : leaf.exact !== root.exact;
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}
