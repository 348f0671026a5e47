import { CREDENTIAL_PREFIX, type MeshSnapshot, type ProxyInfo } from '@aviary/mesh-model';
import type { ResourceTypeUrl } from '@aviary/xds-api';
import { outboundClusters } from './clusters';
import { Ctx, firstInstanceIp, interceptionNone, resolveTranslateOptions, type ResolvedTranslateOptions, type TranslateOptions } from './context';
import { prune, T, type Msg } from './envoy';
import { proxylessResources } from './proxyless';
import type { Generated, NamedResource } from './result';
import { routerResources } from './router';
import { sidecarInbound, sidecarOutbound } from './sidecar';

/** The four xDS resource sets for one proxy, each sorted by name, plus what was left out. */
export interface XdsResources {
  readonly listeners: readonly NamedResource[];
  readonly routes: readonly NamedResource[];
  readonly clusters: readonly NamedResource[];
  readonly endpoints: readonly NamedResource[];
  /** Credentials (`kubernetes://…` Secrets) the listeners and clusters reference, by SDS over ADS. */
  readonly secrets: readonly NamedResource[];
  /** Human-readable notes on config the translator skipped or adjusted, sorted. */
  readonly problems: readonly string[];
}

/** A finished part of a proxy's resources: sorted, deduplicated, pruned; `problems` unsorted. */
interface Part {
  readonly listeners: readonly NamedResource[];
  readonly routes: readonly NamedResource[];
  readonly clusters: readonly NamedResource[];
  readonly endpoints: readonly NamedResource[];
  /** The credential SDS names its listeners and clusters reference, sorted. */
  readonly credentials: readonly string[];
  readonly problems: readonly string[];
}

const byName = (a: NamedResource, b: NamedResource) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function finish(list: NamedResource[], problems: string[], kind: string): NamedResource[] {
  list.sort(byName);
  const out: NamedResource[] = [];
  for (const r of list) {
    if (out.length > 0 && out[out.length - 1]!.name === r.name) {
      if (JSON.stringify(out[out.length - 1]!.resource) !== JSON.stringify(r.resource)) problems.push(`two different ${kind} named ${r.name}; the first is kept`);
      continue;
    }
    out.push({ name: r.name, resource: prune(r.resource) });
  }
  return out;
}

function finishPart(ctx: Ctx, generated: Generated): Part {
  const problems = ctx.problems;
  const listeners = finish(generated.listeners, problems, 'listeners');
  const clusters = finish(generated.clusters, problems, 'clusters');
  const credentials = new Set<string>();
  for (const r of [...listeners, ...clusters]) credentialNames(r.resource, credentials);
  return {
    listeners,
    routes: finish(generated.routes, problems, 'route configurations'),
    clusters,
    endpoints: finish(generated.endpoints, problems, 'cluster load assignments'),
    credentials: [...credentials].sort(),
    problems,
  };
}

/** Collects the SDS names of credentials (`kubernetes://…`, fetched over ADS) a message references. */
function credentialNames(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) credentialNames(v, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const o = value as Record<string, unknown>;
  if (typeof o['name'] === 'string' && o['name'].startsWith(CREDENTIAL_PREFIX) && o['sds_config'] !== undefined) out.add(o['name']);
  for (const k in o) {
    const v = o[k];
    if (typeof v === 'object') credentialNames(v, out);
  }
}

/**
 * The Secrets of the credentials a proxy's resources reference, from its own namespace only,
 * and only to an authenticated proxy (the mTLS xDS port): anyone can claim a namespace on the
 * plaintext port. A missing Secret is a problem; what references it gets no certificate from it.
 */
function credentialSecrets(proxy: ProxyInfo, snapshot: MeshSnapshot, names: readonly string[], problems: string[]): NamedResource[] {
  const out: NamedResource[] = [];
  for (const name of names) {
    if (proxy.authenticated !== true) {
      problems.push(`credential ${name}: served only over an authenticated (mTLS) xDS stream; what uses it is not served one (without an earlier certificate, its TLS handshakes fail)`);
      continue;
    }
    const found = snapshot.credentials.resolve(proxy.namespace, name);
    if (found.kind === 'missing') problems.push(`credential ${name}: ${found.reason}; what uses it is not served one (without an earlier certificate, its TLS handshakes fail)`);
    else if (found.kind === 'ca') out.push({ name, resource: { name, validation_context: { trusted_ca: { inline_string: found.caCert } } } });
    else out.push({ name, resource: { name, tls_certificate: { certificate_chain: { inline_string: found.certChain }, private_key: { inline_string: found.privateKey } } } });
  }
  return out;
}

/**
 * Merges two finished lists as `finish` would have merged their concatenation: by name, and
 * for a name in both the one of `first` is kept.
 */
function mergeFinished(first: readonly NamedResource[], second: readonly NamedResource[], problems: string[], kind: string): readonly NamedResource[] {
  if (second.length === 0) return first;
  if (first.length === 0) return second;
  const out: NamedResource[] = [];
  let i = 0;
  let j = 0;
  while (i < first.length || j < second.length) {
    const a = first[i];
    const b = second[j];
    if (b === undefined || (a !== undefined && a.name < b.name)) {
      out.push(a!);
      i++;
    } else if (a === undefined || b.name < a.name) {
      out.push(b);
      j++;
    } else {
      if (JSON.stringify(a.resource) !== JSON.stringify(b.resource)) problems.push(`two different ${kind} named ${b.name}; the first is kept`);
      out.push(a);
      i++;
      j++;
    }
  }
  return out;
}

function result(proxy: ProxyInfo, snapshot: MeshSnapshot, outbound: Part, inbound?: Part): XdsResources {
  const problems = [...outbound.problems, ...(inbound?.problems ?? [])];
  const empty: readonly NamedResource[] = [];
  const credentials = inbound === undefined || inbound.credentials.length === 0 ? outbound.credentials : [...new Set([...outbound.credentials, ...inbound.credentials])].sort();
  const secrets = credentials.length === 0 ? empty : credentialSecrets(proxy, snapshot, credentials, problems);
  return {
    listeners: mergeFinished(outbound.listeners, inbound?.listeners ?? empty, problems, 'listeners'),
    routes: mergeFinished(outbound.routes, inbound?.routes ?? empty, problems, 'route configurations'),
    clusters: mergeFinished(outbound.clusters, inbound?.clusters ?? empty, problems, 'clusters'),
    endpoints: mergeFinished(outbound.endpoints, inbound?.endpoints ?? empty, problems, 'cluster load assignments'),
    secrets,
    problems: [...new Set(problems)].sort(),
  };
}

/**
 * The part of a proxy's resources that proxies with the same `sharedKey` have in common: a
 * sidecar's outbound half; all of a proxyless client's; all of a router's (its key keeps every
 * label, as gateways and its policies select by label).
 */
function sharedPart(proxy: ProxyInfo, snapshot: MeshSnapshot, options: ResolvedTranslateOptions): Part {
  const ctx = new Ctx(proxy, snapshot, options);
  switch (proxy.kind) {
    case 'proxyless':
      return finishPart(ctx, proxylessResources(ctx));
    case 'router':
      return finishPart(ctx, routerResources(ctx));
    default:
      return finishPart(ctx, sidecarOutbound(ctx));
  }
}

function ownPart(proxy: ProxyInfo, snapshot: MeshSnapshot, options: ResolvedTranslateOptions): Part | undefined {
  if (proxy.kind !== 'sidecar') return undefined;
  const ctx = new Ctx(proxy, snapshot, options);
  return finishPart(ctx, sidecarInbound(ctx));
}

/**
 * Translates the mesh snapshot into the Envoy v3 resources one proxy receives. Pure and
 * deterministic: no clock, no I/O, input order does not matter; the same inputs give
 * byte-identical JSON. Messages are in the canonical form @aviary/xds-protos encodes
 * (snake_case fields, nested Anys as `{ '@type', ... }`).
 */
export function translate(proxy: ProxyInfo, snapshot: MeshSnapshot, options?: TranslateOptions): XdsResources {
  const resolved = resolveTranslateOptions(options);
  return result(proxy, snapshot, sharedPart(proxy, snapshot, resolved), ownPart(proxy, snapshot, resolved));
}

/** Plain resources by type URL: what a cache builds a snapshot from (the xDS cache's `SnapshotInput` has this shape). */
export type ResourcesByType = Partial<Record<ResourceTypeUrl, readonly Msg[]>>;

/** The resources of a translation by type URL. */
export function toSnapshotInput(resources: XdsResources, msgs = (list: readonly NamedResource[]): readonly Msg[] => list.map((r) => r.resource)): ResourcesByType {
  return {
    [T.Listener]: msgs(resources.listeners),
    [T.RouteConfiguration]: msgs(resources.routes),
    [T.Cluster]: msgs(resources.clusters),
    [T.ClusterLoadAssignment]: msgs(resources.endpoints),
    ...(resources.secrets.length > 0 && { [T.Secret]: msgs(resources.secrets) }),
  };
}

/** Collects the keys of every `sourceLabels` object in a VirtualService spec. */
function sourceLabelKeys(value: unknown, keys: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) sourceLabelKeys(v, keys);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'sourceLabels' && v && typeof v === 'object') for (const l of Object.keys(v)) keys.add(l);
      else sourceLabelKeys(v, keys);
    }
  }
}

/**
 * Label keys that any selector the shared part reads looks at: Sidecar and DestinationRule
 * workload selectors, VirtualService `sourceLabels`, Gateway selectors. Two proxies that agree
 * on these keys (value or absence) get the same shared part.
 */
export function selectingLabelKeys(snapshot: MeshSnapshot): readonly string[] {
  const keys = new Set<string>();
  for (const s of snapshot.sidecars.all()) for (const k of Object.keys(s.spec.workloadSelector?.labels ?? {})) keys.add(k);
  for (const d of snapshot.destinationRules.all()) for (const k of Object.keys(d.spec.workloadSelector?.matchLabels ?? {})) keys.add(k);
  for (const g of snapshot.gateways.all()) for (const k of Object.keys(g.spec.selector ?? {})) keys.add(k);
  for (const v of snapshot.virtualServices.all()) sourceLabelKeys(v.spec, keys);
  return [...keys].sort();
}

/**
 * Proxies with the same key get the same shared part (and the same `translateEndpoints`
 * output). A router's shared part is all of it and also reads AuthorizationPolicy and
 * RateLimitPolicy selectors, so routers keep all their labels.
 */
function sharedKey(proxy: ProxyInfo, keys: readonly string[]): string {
  if (proxy.kind === 'router') return proxyGroupKey(proxy);
  return JSON.stringify([proxy.kind, proxy.namespace, interceptionNone(proxy.metadata), keys.map((k) => proxy.labels[k] ?? null)]);
}

interface ModelCache {
  readonly keys: readonly string[];
  readonly parts: Map<string, Part>;
  /** shared key → cluster name → [cluster, load assignment] (pruned), for `translateEndpoints`. */
  readonly endpoints: Map<string, Map<string, readonly [Msg, Msg] | undefined>>;
}

/** `translate` by type URL and an EDS-only update path (what a translating cache source calls). */
export interface CachedTranslation {
  readonly translate: (proxy: ProxyInfo, snapshot: MeshSnapshot) => ResourcesByType;
  /**
   * The outbound clusters and ClusterLoadAssignments named `names` for `proxy`, exactly as
   * `translate` would give them, or undefined when a name is not an outbound cluster of a known
   * service port (the caller then translates in full).
   */
  readonly translateEndpoints: (proxy: ProxyInfo, snapshot: MeshSnapshot, names: readonly string[]) => ResourcesByType | undefined;
  /**
   * The outbound EDS clusters named `names` that `proxy` may see, whether or not its own
   * resources name them (a router's clusters are those its routes reach): what a proxy that
   * reconnects still routes to by routes it got earlier (see the xDS server's make-before-break).
   * Names that are not an outbound cluster of a known service port visible to the proxy are left out.
   */
  readonly translateClusters: (proxy: ProxyInfo, snapshot: MeshSnapshot, names: readonly string[]) => ResourcesByType;
}

/**
 * Translation that shares, per model, the part of the output proxies have in common (a
 * sidecar's outbound half, a proxyless client's everything) between proxies that agree on
 * kind, namespace and selecting labels, so it is built once and its objects are encoded once.
 * Output is identical to `translate`.
 */
export function cachedTranslation(options?: TranslateOptions): CachedTranslation {
  const resolved = resolveTranslateOptions(options);
  const caches = new WeakMap<MeshSnapshot, ModelCache>();
  // The selecting label keys come from four indexes that a model build keeps when their kinds
  // did not change (every endpoint change), so the last model's keys usually serve the next.
  let lastKeys: { readonly from: readonly object[]; readonly keys: readonly string[] } | undefined;
  const keysOf = (snapshot: MeshSnapshot): readonly string[] => {
    const from = [snapshot.sidecars, snapshot.destinationRules, snapshot.gateways, snapshot.virtualServices];
    if (lastKeys?.from.every((index, i) => index === from[i])) return lastKeys.keys;
    lastKeys = { from, keys: selectingLabelKeys(snapshot) };
    return lastKeys.keys;
  };
  const cacheOf = (snapshot: MeshSnapshot): ModelCache => {
    let cache = caches.get(snapshot);
    if (!cache) {
      cache = { keys: keysOf(snapshot), parts: new Map(), endpoints: new Map() };
      caches.set(snapshot, cache);
    }
    return cache;
  };

  // A list that is a shared part's own (nothing of the proxy's merged in) maps to the same
  // message array every time, so the encoder reuses the whole encoded list.
  const lists = new WeakMap<readonly NamedResource[], readonly Msg[]>();
  const msgs = (list: readonly NamedResource[]): readonly Msg[] => {
    let out = lists.get(list);
    if (!out) {
      out = list.map((r) => r.resource);
      lists.set(list, out);
    }
    return out;
  };

  const translateShared = (proxy: ProxyInfo, snapshot: MeshSnapshot): ResourcesByType => {
    const cache = cacheOf(snapshot);
    const key = sharedKey(proxy, cache.keys);
    let shared = cache.parts.get(key);
    if (!shared) {
      shared = sharedPart(proxy, snapshot, resolved);
      cache.parts.set(key, shared);
    }
    return toSnapshotInput(result(proxy, snapshot, shared, ownPart(proxy, snapshot, resolved)), msgs);
  };

  /**
   * The outbound clusters (with their assignments) of `proxy`'s shared key in `snapshot`, each
   * built once per model: `pair(name)` is undefined for a name that is not an outbound EDS
   * cluster of a known service port. `ctx()` is the proxy's context, made when first needed.
   */
  const outboundOf = (proxy: ProxyInfo, snapshot: MeshSnapshot) => {
    const cache = cacheOf(snapshot);
    const key = sharedKey(proxy, cache.keys);
    let byName = cache.endpoints.get(key);
    if (!byName) {
      byName = new Map();
      cache.endpoints.set(key, byName);
    }
    const built = byName;
    let context: Ctx | undefined;
    const ctx = (): Ctx => (context ??= new Ctx(proxy, snapshot, resolved));
    const pair = (name: string): readonly [Msg, Msg] | undefined => {
      if (!built.has(name)) {
        for (const [n, p] of outboundPairs(ctx(), name)) if (!built.has(n)) built.set(n, p);
        if (!built.has(name)) built.set(name, undefined);
      }
      return built.get(name);
    };
    return { ctx, pair };
  };

  const translateEndpoints = (proxy: ProxyInfo, snapshot: MeshSnapshot, names: readonly string[]): ResourcesByType | undefined => {
    const { pair } = outboundOf(proxy, snapshot);
    const clusters: Msg[] = [];
    const endpoints: Msg[] = [];
    for (const name of names) {
      const found = pair(name);
      if (!found) return undefined;
      clusters.push(found[0]);
      endpoints.push(found[1]);
    }
    return { [T.Cluster]: clusters, [T.ClusterLoadAssignment]: endpoints };
  };

  const translateClusters = (proxy: ProxyInfo, snapshot: MeshSnapshot, names: readonly string[]): ResourcesByType => {
    const { ctx, pair } = outboundOf(proxy, snapshot);
    // The names come from the proxy's request: one set lookup each.
    const visible = new Set(ctx().visibleServices().map((s) => s.hostname));
    const clusters: Msg[] = [];
    for (const name of new Set(names)) {
      const host = name.split('|')[3];
      const found = host !== undefined && visible.has(host) ? pair(name) : undefined;
      if (found) clusters.push(found[0]);
    }
    return { [T.Cluster]: clusters };
  };

  return { translate: translateShared, translateEndpoints, translateClusters };
}

/** Every outbound cluster of the service port a cluster name (`outbound|port|subset|host`) names. */
function outboundPairs(ctx: Ctx, name: string): [string, readonly [Msg, Msg]][] {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return [];
  const service = ctx.snapshot.services.get(parts[3]!);
  const port = service?.ports.find((p) => String(p.number) === parts[1]);
  if (!service || !port) return [];
  // The first of a name wins, as in `finish`.
  // A DNS cluster has no EDS resource (endpoints inline): not served by the endpoints-only path.
  return outboundClusters(ctx, service, port).flatMap((c) => (c.loadAssignment ? [[c.name, [prune(c.cluster), prune(c.loadAssignment)] as const] as [string, readonly [Msg, Msg]]] : []));
}

/**
 * Proxies that receive identical resources share a key (for `groupOf`): the translation reads
 * only kind, namespace, labels, the interception mode and (for sidecar inbound) the IPs.
 */
export function proxyGroupKey(proxy: ProxyInfo): string {
  // Asked on every request of a stream, always with the stream's own (unchanging) ProxyInfo.
  let key = groupKeys.get(proxy);
  if (key === undefined) {
    key = groupKeyOf(proxy);
    groupKeys.set(proxy, key);
  }
  return key;
}

const groupKeys = new WeakMap<ProxyInfo, string>();

function groupKeyOf(proxy: ProxyInfo): string {
  const labels = Object.keys(proxy.labels).sort().map((k) => [k, proxy.labels[k]]);
  const ips = proxy.kind === 'sidecar' ? [proxy.ip ?? '', firstInstanceIp(proxy.metadata) ?? ''] : [];
  // Authenticated or not decides whether credentials are served (see credentialSecrets).
  return JSON.stringify([proxy.kind, proxy.namespace, labels, interceptionNone(proxy.metadata), ips, proxy.authenticated === true]);
}
