import type { EncodedResource, Snapshot, XdsPeer } from '@aviary/xds-cache';
import { isResourceTypeUrl, TypeUrl } from '@aviary/xds-protos';
import { Connection, edsNamesToRewarm, isWildcardType, type StreamHost, type TypeState } from './connection';
import type { DeltaDiscoveryRequest, PendingResponse } from './wire';

/**
 * Incremental xDS. Subscriptions change by subscribe/unsubscribe lists and are applied on
 * every request, whatever its nonce; the nonce only decides ACK/NACK. The server tracks the
 * version of each resource the proxy holds (seeded from `initial_resource_versions` on
 * reconnect) and sends only differences, with `removed_resources` for names that vanished or
 * that were subscribed by name and do not exist.
 */
export class DeltaConnection<P extends XdsPeer = XdsPeer> extends Connection<P> {
  constructor(
    host: StreamHost<P>,
    proxy: P,
    private readonly write: (response: PendingResponse) => void,
  ) {
    super(host, proxy, 'delta');
  }

  onRequest(req: DeltaDiscoveryRequest): void {
    const typeUrl = req.type_url ?? '';
    if (!isResourceTypeUrl(typeUrl)) {
      this.host.log.debug({ proxyId: this.proxy.id, typeUrl }, 'ignoring request for an unsupported type');
      return;
    }
    const st = this.state(typeUrl);
    const nonce = req.response_nonce ?? '';
    if (nonce !== '') this.handleResponseNonce(st, nonce, req.error_detail);

    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const first = !st.subscribed;
    let changed = first;
    const absentCandidates: string[] = [];
    const snapshot = first || subscribe.length > 0 || unsubscribe.length > 0 ? this.snapshot() : undefined;
    if (first) {
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) st.sent.set(st.internName(snapshot, name), version);
      st.wildcard = isWildcardType(typeUrl) && subscribe.length === 0;
      st.subscribed = true;
    }
    for (const name of subscribe) {
      if (name === '*') {
        changed ||= !st.wildcard;
        st.wildcard = true;
      } else if (!st.names.has(name)) {
        st.names.add(st.internName(snapshot, name));
        absentCandidates.push(name);
        changed = true;
      }
    }
    for (const name of unsubscribe) {
      if (name === '*') {
        changed ||= st.wildcard;
        st.wildcard = false;
      } else if (st.names.delete(name)) {
        changed = true;
      }
      if (!st.wants(name)) st.forget([name]);
    }
    // Envoy reconnecting names the clusters it holds: its routes are live while new clusters warm.
    if (first && typeUrl === TypeUrl.Cluster && st.wildcard && st.sent.size > 0 && snapshot) {
      this.warming.resume();
      this.warming.resumedHolding(typeUrl, st.sent.keys(), snapshot, true);
    }
    if (first && typeUrl === TypeUrl.ClusterLoadAssignment && st.sent.size > 0 && snapshot) this.warming.resumedHolding(typeUrl, st.sent.keys(), snapshot, true);
    if (!st.wildcard) st.forget([...st.sent.keys()].filter((n) => !st.names.has(n)));
    if (changed && snapshot) this.push(st, snapshot, first && isWildcardType(typeUrl), undefined, absentCandidates);
    this.afterRequest();
  }

  protected pushChanged(st: TypeState, snapshot: Snapshot, observedAt: number | undefined): void {
    this.push(st, snapshot, false, observedAt, []);
  }

  private push(st: TypeState, snapshot: Snapshot, force: boolean, observedAt: number | undefined, newlySubscribed: readonly string[]): void {
    if (this.closed) return;
    const startedAt = performance.now();
    const all = snapshot.resources(st.typeUrl);
    const resources = st.desired(snapshot).filter((r) => st.sentVersionOf(r.name) !== r.version);
    // Removed clusters that routes the proxy holds still name stay, with their assignments, until they no longer do.
    const kept = st.typeUrl === TypeUrl.Cluster ? this.warming.keep(st, snapshot) : [];
    const keep = this.warming.keptNames(st.typeUrl, kept);
    const removed = [...st.sent.keys()].filter((n) => !all.has(n) && !keep.has(n));
    for (const n of newlySubscribed) if (!all.has(n) && !st.sent.has(n)) removed.push(n);
    const gate = this.warming.gate(st, snapshot, resources, observedAt);
    if (gate.hold) return;
    observedAt = gate.observedAt;
    if (st.typeUrl === TypeUrl.Cluster) this.warming.kept(kept);
    if (resources.length === 0 && removed.length === 0 && !force) return;
    if (st.typeUrl === TypeUrl.Cluster) this.warming.clustersSent(st, resources.filter((r) => !st.sent.has(r.name)), removed);
    st.forget(removed);
    st.markSentOf(snapshot, resources);
    if (st.typeUrl === TypeUrl.ClusterLoadAssignment) this.warming.endpointsSent(resources.map((r) => r.name));
    const version = snapshot.version(st.typeUrl);
    const nonce = this.recordSend(st, version, observedAt, startedAt);
    this.write({ protocol: 'delta', version, typeUrl: st.typeUrl, nonce, resources, removed: [...new Set(removed)].sort(), controlPlaneId: this.host.controlPlaneId });
    if (st.typeUrl === TypeUrl.Cluster) this.rewarm(snapshot, resources, observedAt);
  }

  private rewarm(snapshot: Snapshot, clusters: readonly EncodedResource[], observedAt: number | undefined): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds?.subscribed) return;
    const names = edsNamesToRewarm(clusters, eds);
    if (names.length === 0) return;
    eds.forget(names);
    this.push(eds, snapshot, false, observedAt, []);
  }
}
