import type { EncodedResource, Snapshot, XdsPeer } from '@aviary/xds-cache';
import { isResourceTypeUrl, TypeUrl } from '@aviary/xds-protos';
import { Connection, edsNamesToRewarm, isWildcardType, type StreamHost, type TypeState } from './connection';
import type { DiscoveryRequest, PendingResponse } from './wire';

/**
 * Longest a resumed stream's first CDS response waits for the stream's first EDS request (see
 * `SotwConnection.onRequest`). Envoy sends every type's request at once when it reconnects, so
 * the EDS request normally follows within milliseconds; a proxy without EDS clusters sends none.
 */
export const RESUMED_CDS_WAIT_MS = 500;

/**
 * State of the world. Full-state types (LDS, CDS) are answered with every subscribed resource
 * whenever that set changes; RDS/EDS/SDS responses carry only resources whose version changed
 * since they were last sent to this proxy. Requests whose nonce is not the latest are ignored
 * (the proxy follows up with one carrying the latest nonce).
 */
export class SotwConnection<P extends XdsPeer = XdsPeer> extends Connection<P> {
  /** A resumed stream's first CDS response, waiting for the first EDS request (`RESUMED_CDS_WAIT_MS`). */
  private deferredCds: unknown;

  constructor(
    host: StreamHost<P>,
    proxy: P,
    private readonly write: (response: PendingResponse) => void,
  ) {
    super(host, proxy, 'sotw');
  }

  onRequest(req: DiscoveryRequest): void {
    const typeUrl = req.type_url ?? '';
    if (!isResourceTypeUrl(typeUrl)) {
      this.host.log.debug({ proxyId: this.proxy.id, typeUrl }, 'ignoring request for an unsupported type');
      return;
    }
    const st = this.state(typeUrl);
    const nonce = req.response_nonce ?? '';
    if (nonce !== '' && !this.handleResponseNonce(st, nonce, req.error_detail)) return;

    // An ACK repeats its request's names, and the decoder hands out one frozen list per distinct
    // list (wire.ts, `nameList`): the very list the subscription was last set from changes nothing.
    const requested = req.resource_names ?? [];
    const same = st.subscribed && requested === st.requestedNames;
    const names = same ? [] : requested.filter((n) => n !== '*');
    const wildcard = same ? st.wildcard : requested.includes('*') || (isWildcardType(typeUrl) && names.length === 0 && (!st.subscribed || st.wildcard));
    const changed = !same && (wildcard !== st.wildcard || names.length !== st.names.size || names.some((n) => !st.names.has(n)));
    if (!same) st.requestedNames = Object.isFrozen(requested) ? requested : undefined;
    const first = !st.subscribed || nonce === '';
    const snapshot = changed || first ? this.snapshot() : undefined;
    if (changed) {
      st.wildcard = wildcard;
      st.names.clear();
      for (const n of names) st.names.add(st.internName(snapshot, n));
      st.forget([...st.sent.keys()].filter((n) => !st.wants(n)));
    }
    // Envoy reconnecting sends the version it holds: its routes are live while new clusters warm.
    if (!st.subscribed && typeUrl === TypeUrl.Cluster && st.wildcard && (req.version_info ?? '') !== '') {
      this.warming.resume();
      // Its first EDS request (sent right after) names the clusters it holds: the first CDS
      // response waits for it, so that it can keep those the proxy's routes may still name.
      if (this.host.source.clustersFor && !this.types.get(TypeUrl.ClusterLoadAssignment)?.subscribed) this.deferCds();
    }
    // Its first EDS request names the assignments of the clusters it holds.
    const resumedEds = !st.subscribed && typeUrl === TypeUrl.ClusterLoadAssignment && snapshot !== undefined;
    if (resumedEds) this.warming.resumedHolding(typeUrl, names, snapshot, (missing) => this.host.source.clustersFor?.(this.proxy, missing) ?? []);
    st.subscribed = true;
    if (first) st.forget([...st.sent.keys()]);
    if (resumedEds) this.releaseCds(snapshot);
    if (snapshot && !(typeUrl === TypeUrl.Cluster && this.deferredCds !== undefined)) this.push(st, snapshot, isWildcardType(typeUrl), undefined);
    this.afterRequest();
  }

  override dispose(): void {
    this.undefer();
    super.dispose();
  }

  private deferCds(): void {
    this.deferredCds = this.host.clock.setTimer(() => {
      const snapshot = this.snapshot();
      if (snapshot) this.releaseCds(snapshot);
      else this.undefer();
    }, RESUMED_CDS_WAIT_MS);
  }

  /** Ends the deferral of the first CDS response; whether one was deferred. */
  private undefer(): boolean {
    if (this.deferredCds === undefined) return false;
    this.host.clock.clearTimer(this.deferredCds);
    this.deferredCds = undefined;
    return true;
  }

  /** Sends the deferred first CDS response, if one is. */
  private releaseCds(snapshot: Snapshot): void {
    if (!this.undefer()) return;
    const cds = this.types.get(TypeUrl.Cluster);
    if (cds?.subscribed) this.push(cds, snapshot, true, undefined);
  }

  protected pushChanged(st: TypeState, snapshot: Snapshot, observedAt: number | undefined): void {
    // A deferred first CDS response goes with the first EDS request (or when the wait is over).
    if (st.typeUrl === TypeUrl.Cluster && this.deferredCds !== undefined) return;
    this.push(st, snapshot, false, observedAt);
  }

  private push(st: TypeState, snapshot: Snapshot, force: boolean, observedAt: number | undefined): void {
    if (this.closed) return;
    const startedAt = performance.now();
    const desired = st.desired(snapshot);
    let resources = desired;
    let changed = desired;
    if (isWildcardType(st.typeUrl)) {
      // Removed clusters that routes the proxy holds still name stay until they no longer do.
      const kept = st.typeUrl === TypeUrl.Cluster ? this.warming.keep(st, snapshot) : [];
      if (kept.length > 0) resources = [...desired, ...kept].sort(byName);
      changed = resources.filter((r) => st.sentVersionOf(r.name) !== r.version);
      const same = resources.length === st.sent.size && changed.length === 0;
      const gate = this.warming.gate(st, snapshot, changed, observedAt);
      if (gate.hold) return;
      if (st.typeUrl === TypeUrl.Cluster) this.warming.kept(kept);
      if (same && !force) return;
      observedAt = gate.observedAt;
      if (st.typeUrl === TypeUrl.Cluster) {
        const all = snapshot.resources(st.typeUrl);
        const removed = [...st.sent.keys()].filter((n) => !all.has(n) && !kept.some((r) => r.name === n));
        this.warming.clustersSent(st, changed.filter((r) => !st.sent.has(r.name)), removed);
      }
      if (st.wildcard) {
        // A wildcard subscription's desired set is the snapshot's whole map (plus what is kept).
        st.sent.holdExactly(snapshot.resources(st.typeUrl));
        for (const r of kept) st.sent.set(r.name, r);
      } else {
        // LDS/CDS by name (proxyless gRPC): the proxy holds exactly the names it asked for.
        st.sent.clear();
        st.markSentOf(snapshot, desired);
      }
    } else {
      resources = desired.filter((r) => st.sentVersionOf(r.name) !== r.version);
      const gate = this.warming.gate(st, snapshot, resources, observedAt);
      if (gate.hold || resources.length === 0) return;
      observedAt = gate.observedAt;
      st.markSentOf(snapshot, resources);
      if (st.typeUrl === TypeUrl.ClusterLoadAssignment) this.warming.endpointsSent(resources.map((r) => r.name));
    }
    const version = snapshot.version(st.typeUrl);
    const nonce = this.recordSend(st, version, observedAt, startedAt);
    this.write({ protocol: 'sotw', version, typeUrl: st.typeUrl, nonce, resources, controlPlaneId: this.host.controlPlaneId });
    if (st.typeUrl === TypeUrl.Cluster) this.rewarm(snapshot, changed, observedAt);
  }

  private rewarm(snapshot: Snapshot, clusters: readonly EncodedResource[], observedAt: number | undefined): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds?.subscribed) return;
    const names = edsNamesToRewarm(clusters, eds);
    if (names.length === 0) return;
    eds.forget(names);
    this.push(eds, snapshot, false, observedAt);
  }
}

const byName = (a: EncodedResource, b: EncodedResource): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
