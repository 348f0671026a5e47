import { referencedClusterNames, referencedEndpointName, type Clock, type EncodedResource, type Snapshot } from '@aviary/xds-cache';
import { TypeUrl, shortTypeName, type ResourceTypeUrl } from '@aviary/xds-protos';
import type { XdsLogger } from './connection';
import type { XdsMetrics } from './metrics';

/** What the warming gate reads of its stream's per-type state (a `TypeState`). */
export interface HeldState {
  readonly typeUrl: ResourceTypeUrl;
  readonly wildcard: boolean;
  readonly sentVersion: string | undefined;
  /** The version of the latest response the proxy ACKed on this stream. */
  readonly ackedVersion: string | undefined;
  readonly sent: { has(name: string): boolean; get(name: string): EncodedResource | string | undefined; keys(): IterableIterator<string>; values(): IterableIterator<EncodedResource | string> };
}

export interface WarmingHost {
  readonly types: ReadonlyMap<ResourceTypeUrl, HeldState>;
  readonly clock: Clock;
  /** Longest a push is held, or a removed cluster kept (see `XdsServerOptions.warmingTimeoutMs`). */
  readonly timeoutMs: number;
  readonly metrics: XdsMetrics;
  readonly log: XdsLogger;
  readonly proxyId: string;
  /** Pushes `types` again from the current snapshot (their gate decides anew). */
  repush(types: readonly ResourceTypeUrl[], observedAt: number | undefined): void;
}

/** How a hold (or a removed cluster's keeping) ended; a closed metric label. */
export type HoldOutcome = 'ready' | 'timeout' | 'nack';

/** Types whose push waits for the clusters it names: listeners (tcp_proxy, inline routes) and route configurations. */
const gatedTypes: ReadonlySet<ResourceTypeUrl> = new Set([TypeUrl.Listener, TypeUrl.RouteConfiguration]);

/** A cluster this stream was sent and the proxy cannot route to yet. */
interface Warming {
  cdsAcked: boolean;
  /** Its ClusterLoadAssignment (EDS clusters only). */
  readonly endpoints: string | undefined;
  /** An EDS response carrying `endpoints` went out since the cluster was sent, and was ACKed. */
  edsSent: boolean;
  edsAcked: boolean;
}

interface Hold {
  observedAt: number | undefined;
  clusters: readonly string[];
}

const namedBy = new WeakMap<EncodedResource, readonly string[]>();

/** The clusters a listener or route configuration names, decoded once per encoded resource (shared by every stream). */
export function clustersNamedBy(resource: EncodedResource): readonly string[] {
  let names = namedBy.get(resource);
  if (names === undefined) {
    names = referencedClusterNames(resource.resource);
    namedBy.set(resource, names);
  }
  return names;
}

const minOf = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

/**
 * Make-before-break for one stream (Envoy's, i.e. CDS by wildcard). Envoy applies a route or
 * listener at once, while a cluster added by CDS stays warming until its ClusterLoadAssignment
 * arrives, which Envoy asks for only after processing the CDS response: a request routed to it
 * in between is answered 503 `NC` (cluster_not_found). So:
 * - a listener or route configuration push that names a cluster the proxy is not known to have
 *   warm (CDS response that added it ACKed, and for an EDS cluster an EDS response carrying its
 *   assignment sent and ACKed after that) is held, and pushed from the then current snapshot once
 *   they are warm;
 * - a cluster that a CDS push would remove is kept in it while a route or listener the proxy
 *   holds names it, or while a listener/route push is held or not yet answered, and removed by a
 *   CDS push once that is over (break-after-make).
 * Never a stall: a NACK of CDS/EDS releases the holds (the clusters may never come), and after
 * `timeoutMs` from the first hold or keep, whatever is held is pushed and whatever is kept is
 * removed, counted as `timeout` and logged once per stream.
 *
 * Not gated: a type's first response on a fresh stream (Envoy's initial fetch asks for
 * listeners only once the clusters of its first CDS response are warm, and for routes after
 * listeners), and streams that subscribe to CDS by name: gRPC clients subscribe to a route's
 * clusters after they get the route, and apply a route only once its clusters are there (gRFC A74).
 *
 * A resumed stream (see `resume`: Envoy reconnecting with the config it holds, after a control
 * plane restart or a rebalance) has no initial fetch: Envoy asks for every type at once and
 * applies routes as they come, while clusters new in this stream's first CDS response warm. Its
 * first listener and route responses wait until the proxy has ACKed a CDS response and, for each
 * EDS cluster they name, has been sent its assignment and ACKed every EDS response sent (which
 * clusters the proxy had before is not known in SotW, so all are checked; nothing is kept per
 * cluster). When that first response would remove clusters the proxy held, they stay until those
 * routes are ACKed: delta does not remove them (nor their assignments); SotW, whose CDS response
 * is the whole set, sends them again, rebuilt by name from the current model (the source's
 * `clustersFor`; the stream's first CDS response waits for the first EDS request, which names
 * them). A cluster that cannot be rebuilt (its service gone, or no longer visible to the proxy)
 * means the first routes are not held (`resumedHolding`): the old routes may still name it, and
 * holding the new ones would only prolong that gap.
 */
export class ClusterWarming {
  private readonly warming = new Map<string, Warming>();
  private readonly held = new Map<ResourceTypeUrl, Hold>();
  /** Removed clusters the last CDS push kept, as the proxy holds them. */
  private retained: ReadonlyMap<string, EncodedResource> = new Map();
  /** Listener/route types with a response the proxy has neither ACKed nor NACKed. */
  private readonly unanswered = new Set<ResourceTypeUrl>();
  private nacked = false;
  private expired = false;
  private warned = false;
  private timer: unknown;
  private disposed = false;
  /** A resumed stream's gated types whose first response has not gone yet (see `resume`). */
  private resumedFirst: Set<ResourceTypeUrl> | undefined;
  /** An EDS response went out that the proxy has neither ACKed nor NACKed. */
  private edsInFlight = false;
  /**
   * Resumed: clusters (and, delta, assignments) the proxy held that the snapshot lacks, not
   * removed until its first routes are ACKed; SotW sends them again (`resources`, rebuilt by name).
   */
  private resumedKept: { readonly clusters: Set<string>; readonly endpoints: Set<string>; readonly resources?: ReadonlyMap<string, EncodedResource> } | undefined;

  constructor(private readonly host: WarmingHost) {}

  /**
   * Whether a push of `resources` of `st` must wait for clusters to warm; when it may go, a hold
   * of the type ends, and the answer carries the earliest observation of the changes it held.
   */
  gate(st: HeldState, snapshot: Snapshot, resources: readonly EncodedResource[], observedAt: number | undefined): { readonly hold: boolean; readonly observedAt: number | undefined } {
    if (!gatedTypes.has(st.typeUrl)) return { hold: false, observedAt };
    const first = st.sentVersion === undefined;
    const resumed = first && this.resumedFirst?.has(st.typeUrl) === true;
    const cold = this.expired || (first && !resumed) ? [] : this.coldClusters(snapshot, resources, resumed);
    const hold = this.held.get(st.typeUrl);
    if (cold.length === 0) {
      if (first) this.resumedFirst?.delete(st.typeUrl);
      if (hold === undefined) return { hold: false, observedAt };
      this.held.delete(st.typeUrl);
      this.count(st.typeUrl, this.expired ? 'timeout' : this.nacked ? 'nack' : 'ready');
      this.settle();
      return { hold: false, observedAt: minOf(hold.observedAt, observedAt) };
    }
    if (hold === undefined) {
      this.held.set(st.typeUrl, { observedAt, clusters: cold });
      this.arm();
    } else {
      hold.observedAt = minOf(hold.observedAt, observedAt);
      hold.clusters = cold;
    }
    return { hold: true, observedAt };
  }

  /**
   * The proxy already holds config from an earlier stream (an Envoy reconnecting: its first
   * wildcard CDS request carries the version it holds, or in delta the versions of its clusters):
   * the first listener and route responses of this stream are gated too (see the class).
   */
  resume(): void {
    this.resumedFirst = new Set(gatedTypes);
  }

  /**
   * What a resumed proxy holds, by name: of `typeUrl` (delta: the clusters and assignments in
   * `initial_resource_versions`; SotW: the assignments its first EDS request names, as it asks for
   * those of the clusters it has). Those not in `snapshot` are clusters this stream's first
   * responses would remove while the proxy's routes may still name them; they are not removed
   * until the stream's first routes are ACKed. Delta (`keep` true) just does not remove them. A
   * SotW CDS response is the whole set, so there `keep` rebuilds them by name from the current
   * model (the proxy's EDS clusters are named as their assignments), and they are sent again
   * until then (see `keep`). When one cannot be rebuilt (its service is gone or no longer visible
   * to the proxy) holding the new routes would only make that gap longer, so the first routes are
   * sent as they come, as on a fresh stream.
   */
  resumedHolding(typeUrl: ResourceTypeUrl, names: Iterable<string>, snapshot: Snapshot, keep: true | ((missing: readonly string[]) => readonly EncodedResource[])): void {
    if (this.resumedFirst === undefined) return;
    const present = snapshot.resources(typeUrl);
    const missing = [...names].filter((name) => !present.has(name));
    if (missing.length === 0) return;
    if (keep === true) {
      this.resumedKept ??= { clusters: new Set(), endpoints: new Set() };
      for (const name of missing) (typeUrl === TypeUrl.Cluster ? this.resumedKept.clusters : this.resumedKept.endpoints).add(name);
      this.arm();
      return;
    }
    const rebuilt = new Map(keep(missing).map((r) => [r.name, r]));
    const lost = missing.find((name) => !rebuilt.has(name));
    if (lost !== undefined) {
      this.resumedFirst = undefined;
      this.host.log.debug({ proxyId: this.host.proxyId, removed: lost }, 'resumed stream removes a cluster the proxy holds and pilot cannot rebuild: its first routes are not held');
      return;
    }
    this.resumedKept = { clusters: new Set(missing), endpoints: new Set(), resources: rebuilt };
    this.arm();
  }

  /** Delta: names of `typeUrl` (CDS or EDS) a push must not remove now (see `keep`, `keptEndpoints`, `resumedHolding`). */
  keptNames(typeUrl: ResourceTypeUrl, kept: readonly EncodedResource[]): ReadonlySet<string> {
    const names = typeUrl === TypeUrl.ClusterLoadAssignment ? this.keptEndpoints() : new Set(kept.map((r) => r.name));
    const resumed = this.expired ? undefined : this.resumedKept;
    for (const n of (typeUrl === TypeUrl.Cluster ? resumed?.clusters : typeUrl === TypeUrl.ClusterLoadAssignment ? resumed?.endpoints : undefined) ?? []) names.add(n);
    return names;
  }

  /** Named clusters of the snapshot's CDS that the proxy may not route to yet (`resumed`: a resumed stream's first response). */
  private coldClusters(snapshot: Snapshot, resources: readonly EncodedResource[], resumed: boolean): string[] {
    const cds = this.host.types.get(TypeUrl.Cluster);
    if (cds === undefined || !cds.wildcard) return [];
    const cold = new Set<string>();
    for (const r of resources) {
      for (const c of clustersNamedBy(r)) {
        const cluster = snapshot.get(TypeUrl.Cluster, c);
        if (cluster === undefined) continue;
        if (!cds.sent.has(c) || this.warming.has(c) || (resumed && !this.warmSinceResume(cluster))) cold.add(c);
      }
    }
    return [...cold];
  }

  /** On a resumed stream: a CDS response ACKed and, for an EDS cluster, its assignment sent and every EDS response ACKed. */
  private warmSinceResume(cluster: EncodedResource): boolean {
    if (this.host.types.get(TypeUrl.Cluster)?.ackedVersion === undefined) return false;
    const endpoints = referencedEndpointName(cluster.resource);
    if (endpoints === undefined) return true;
    return !this.edsInFlight && this.host.types.get(TypeUrl.ClusterLoadAssignment)?.sent.has(endpoints) === true;
  }

  /**
   * A CDS response of `cds` goes out: `added` are clusters the proxy did not hold, `removed` those
   * it no longer does. The stream's first one is not tracked: Envoy's initial fetch warms its
   * clusters before it asks for listeners, and a type's first response is never held (a cold
   * start would otherwise track every cluster of every stream until its assignment is ACKed).
   */
  clustersSent(cds: HeldState, added: readonly EncodedResource[], removed: readonly string[]): void {
    if (cds.sentVersion === undefined) return;
    for (const c of added) this.warming.set(c.name, { cdsAcked: false, endpoints: referencedEndpointName(c.resource), edsSent: false, edsAcked: false });
    for (const name of removed) this.warming.delete(name);
  }

  /** An EDS response carrying `names` went out. */
  endpointsSent(names: readonly string[]): void {
    this.edsInFlight = true;
    if (this.warming.size === 0) return;
    const sent = new Set(names);
    for (const w of this.warming.values()) {
      if (w.endpoints !== undefined && sent.has(w.endpoints)) {
        w.edsSent = true;
        w.edsAcked = false;
      }
    }
  }

  /** A listener or route response went out. */
  gatedSent(typeUrl: ResourceTypeUrl): void {
    if (gatedTypes.has(typeUrl)) this.unanswered.add(typeUrl);
  }

  /**
   * The proxy ACKed or NACKed the latest response of `typeUrl` (which answers every earlier
   * one). A CDS/EDS NACK gives up on the clusters warming: they may never be, and holding the
   * routes for them would only delay the rest of the routes' changes.
   */
  answered(typeUrl: ResourceTypeUrl, nack: boolean): void {
    if (gatedTypes.has(typeUrl)) {
      // After a NACK the proxy still routes by what it had: kept clusters stay until an ACK or the bound.
      if (!nack) this.unanswered.delete(typeUrl);
      return;
    }
    if (typeUrl !== TypeUrl.Cluster && typeUrl !== TypeUrl.ClusterLoadAssignment) return;
    if (typeUrl === TypeUrl.ClusterLoadAssignment) this.edsInFlight = false;
    if (nack) {
      if ((this.warming.size > 0 || this.resumedFirst !== undefined) && this.held.size > 0) this.nacked = true;
      this.warming.clear();
      this.resumedFirst = undefined;
      return;
    }
    for (const name of this.warming.keys()) {
      const w = this.warming.get(name)!;
      if (typeUrl === TypeUrl.Cluster) w.cdsAcked = true;
      else if (w.edsSent) w.edsAcked = true;
      if (w.cdsAcked && (w.endpoints === undefined || w.edsAcked)) this.warming.delete(name);
    }
  }

  /**
   * Removed clusters a CDS push of `cds` must keep: those a listener or route the proxy holds
   * names, and, while a listener/route push is held or unanswered (the proxy may still route by
   * what it had), every removed one. None once the bound is over.
   */
  keep(cds: HeldState, snapshot: Snapshot): EncodedResource[] {
    if (!cds.wildcard) return [];
    const all = snapshot.resources(TypeUrl.Cluster);
    const kept: EncodedResource[] = [];
    if (!this.expired) {
      const inFlight = this.unanswered.size > 0 || this.held.size > 0;
      let named: ReadonlySet<string> | undefined;
      for (const [name, entry] of this.entries(cds)) {
        if (all.has(name)) continue;
        if (!inFlight) named ??= this.namedByRoutes();
        if (named === undefined || named.has(name)) kept.push(entry);
      }
      // SotW, resumed: the clusters the proxy held that were rebuilt for it (`resumedHolding`).
      for (const [name, entry] of this.resumedKept?.resources ?? []) if (!all.has(name) && !kept.some((k) => k.name === name)) kept.push(entry);
    }
    return kept;
  }

  /** Records what the last CDS push kept (see `keep`). */
  kept(clusters: readonly EncodedResource[]): void {
    const before = this.retained.size;
    this.retained = new Map(clusters.map((c) => [c.name, c]));
    if (before === 0 && clusters.length > 0) this.arm();
    if (before > 0 && clusters.length === 0) {
      this.count(TypeUrl.Cluster, this.expired ? 'timeout' : 'ready');
      this.settle();
    }
  }

  /** The ClusterLoadAssignments of kept clusters (a delta EDS push must not remove them). */
  private keptEndpoints(): Set<string> {
    const names = new Set<string>();
    for (const c of this.retained.values()) {
      const e = referencedEndpointName(c.resource);
      if (e !== undefined) names.add(e);
    }
    return names;
  }

  /**
   * After each request the stream served: pushes held types again, and CDS when a kept cluster
   * may now go (no listener/route push in flight, and no longer named by what the proxy holds).
   */
  retry(): void {
    const types: ResourceTypeUrl[] = [];
    if (this.resumedKept !== undefined && (this.expired || this.firstRoutesAnswered())) {
      // What the proxy held and the snapshot lacks goes now: CDS, then EDS. (SotW sent it as kept
      // clusters: their end is counted when no CDS push keeps any, see `kept`.)
      const sentAgain = this.resumedKept.resources !== undefined;
      this.resumedKept = undefined;
      if (!sentAgain) this.count(TypeUrl.Cluster, this.expired ? 'timeout' : 'ready');
      this.settle();
      types.push(TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment);
    } else if (this.retained.size > 0 && (this.expired || this.canDropKept())) types.push(TypeUrl.Cluster);
    let observedAt: number | undefined;
    for (const [typeUrl, hold] of this.held) {
      types.push(typeUrl);
      observedAt = minOf(observedAt, hold.observedAt);
    }
    if (types.length > 0) this.host.repush(types, observedAt);
  }

  dispose(): void {
    this.disposed = true;
    this.disarm();
  }

  /**
   * The stream's first listeners went out, and its first routes if it asked for any (Envoy asks
   * for routes before it ACKs the listeners that name them), and the proxy answered every one sent.
   */
  private firstRoutesAnswered(): boolean {
    if (this.unanswered.size > 0 || this.held.size > 0) return false;
    if (this.host.types.get(TypeUrl.Listener)?.sentVersion === undefined) return false;
    const rds = this.host.types.get(TypeUrl.RouteConfiguration);
    return rds === undefined || rds.sentVersion !== undefined;
  }

  private canDropKept(): boolean {
    if (this.unanswered.size > 0 || this.held.size > 0) return false;
    const named = this.namedByRoutes();
    for (const name of this.retained.keys()) if (!named.has(name)) return true;
    return false;
  }

  private *entries(cds: HeldState): IterableIterator<[string, EncodedResource]> {
    for (const name of cds.sent.keys()) {
      const entry = cds.sent.get(name);
      if (entry !== undefined && typeof entry !== 'string') yield [name, entry];
    }
  }

  /** Clusters named by the listeners and route configurations the proxy holds (as this stream sent them). */
  private namedByRoutes(): Set<string> {
    const named = new Set<string>();
    for (const t of gatedTypes) {
      const st = this.host.types.get(t);
      if (st === undefined) continue;
      for (const entry of st.sent.values()) if (typeof entry !== 'string') for (const c of clustersNamedBy(entry)) named.add(c);
    }
    return named;
  }

  private count(typeUrl: ResourceTypeUrl, outcome: HoldOutcome): void {
    this.host.metrics.warmingHolds.inc({ type: shortTypeName[typeUrl], outcome });
  }

  /** Arms the bound when a hold or keep starts and none was running. */
  private arm(): void {
    if (this.timer !== undefined || this.disposed) return;
    this.timer = this.host.clock.setTimer(() => this.expire(), this.host.timeoutMs);
  }

  private disarm(): void {
    if (this.timer !== undefined) this.host.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  /** Once nothing is held or kept: the next hold starts a new bound. */
  private settle(): void {
    if (this.held.size > 0 || this.retained.size > 0 || this.resumedKept !== undefined) return;
    this.disarm();
    this.nacked = false;
  }

  private expire(): void {
    this.timer = undefined;
    if (this.disposed) return;
    if (!this.warned) {
      this.warned = true;
      const held = Object.fromEntries([...this.held].map(([t, h]) => [shortTypeName[t], h.clusters.slice(0, 10)]));
      this.host.log.warn(
        { proxyId: this.host.proxyId, held, kept: [...this.retained.keys(), ...(this.resumedKept?.clusters ?? [])].slice(0, 10), timeoutMs: this.host.timeoutMs },
        'clusters not warm on the proxy in time: held listener/route updates sent anyway, kept clusters removed (logged once per stream)',
      );
    }
    this.expired = true;
    try {
      this.retry();
    } finally {
      this.expired = false;
      // Whatever could not go (e.g. the stream's source failed) goes at the next push, without another bound.
      this.held.clear();
      this.retained = new Map();
      this.resumedKept = undefined;
      this.settle();
    }
  }
}
