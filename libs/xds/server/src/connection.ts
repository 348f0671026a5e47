import type { Clock, ResourceSource, Snapshot, EncodedResource, XdsPeer } from '@aviary/xds-cache';
import { TypeUrl, shortTypeName, type ResourceTypeUrl } from '@aviary/xds-protos';
import type { XdsMetrics } from './metrics';
import { HeldResources } from './held';
import { SubscribedNames, type SubscriptionKey } from './subscriptions';
import { ClusterWarming } from './warming';
import type { ErrorDetail } from './wire';

/** Minimal logger (pino's shape). */
export interface XdsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export type XdsStatusKind = 'connected' | 'ack' | 'nack' | 'disconnected';

/** One status change of one stream; shaped to publish as `aviary.xds.v1.status`. */
export interface XdsStatusEvent<P extends XdsPeer = XdsPeer> {
  readonly event: XdsStatusKind;
  readonly proxyId: string;
  readonly streamId: number;
  readonly proxy: P;
  readonly protocol: Protocol;
  readonly typeUrl?: ResourceTypeUrl;
  /** ack: the version ACKed; nack: the version rejected. */
  readonly version?: string;
  readonly nonce?: string;
  /** nack: `error_detail.message` as the proxy sent it. */
  readonly error?: string;
  readonly at: number;
}

export type Protocol = 'sotw' | 'delta';

export interface NackRecord {
  readonly version: string;
  readonly nonce: string;
  readonly error: string;
  readonly at: number;
}

/** Per proxy and type: what it asked for, what it was sent, what it accepted. */
export interface TypeStatus {
  readonly typeUrl: ResourceTypeUrl;
  /** `'*'` for a wildcard subscription (plus any names). */
  readonly subscribed: readonly string[];
  readonly sentVersion?: string;
  readonly sentNonce?: string;
  readonly sentAt?: number;
  /** Last version the proxy ACKed: its last good config for this type. */
  readonly ackedVersion?: string;
  readonly ackedAt?: number;
  readonly lastNack?: NackRecord;
  /** Resources the proxy holds (delta) or was last sent (SotW), with their versions. */
  readonly resources: readonly { readonly name: string; readonly version: string }[];
}

export interface ProxyStatus<P extends XdsPeer = XdsPeer> {
  readonly streamId: number;
  readonly proxy: P;
  readonly protocol: Protocol;
  readonly connectedAt: number;
  readonly types: readonly TypeStatus[];
}

export interface StreamHost<P extends XdsPeer = XdsPeer> {
  readonly source: ResourceSource<P>;
  readonly metrics: XdsMetrics;
  readonly log: XdsLogger;
  readonly controlPlaneId: string | undefined;
  readonly clock: Clock;
  /** Longest a listener/route push waits for the clusters it names to warm (see `ClusterWarming`). */
  readonly warmingTimeoutMs: number;
  now(): number;
  emit(event: XdsStatusEvent<P>): void;
}

/** Istio's push order: clusters and endpoints before the listeners and routes that use them. */
export const pushOrder: readonly ResourceTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Secret];

/** LDS and CDS: an empty first request means "everything"; responses carry the full state. */
/**
 * EDS names of pushed clusters that the proxy already holds: Envoy re-creates a changed cluster
 * and keeps it warming until an EDS response for it arrives, but asks again with the same names
 * (indistinguishable from an ACK), so the server must re-send those assignments after the CDS
 * push (as Istio does by pushing EDS with every CDS push). Otherwise the cluster stays warming
 * until its initial_fetch_timeout.
 */
export function edsNamesToRewarm(clusters: readonly EncodedResource[], eds: TypeState): string[] {
  const names: string[] = [];
  for (const c of clusters) {
    const r = c.resource as { type?: string; eds_cluster_config?: { service_name?: string } };
    if (r.eds_cluster_config === undefined && r.type !== 'EDS') continue;
    const name = r.eds_cluster_config?.service_name || c.name;
    if (eds.sent.has(name)) names.push(name);
  }
  return names;
}

export function isWildcardType(typeUrl: ResourceTypeUrl): boolean {
  return typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster;
}

export class TypeState {
  wildcard = false;
  readonly names = new SubscribedNames();
  subscribed = false;
  /** name → what the proxy holds (delta) / was last sent (SotW); config dumps decode the resources this stream sent. */
  readonly sent = new HeldResources();
  nonce: string | undefined;
  sentVersion: string | undefined;
  sentAt: number | undefined;
  /** When the change carried by the latest response was observed; cleared on ACK. */
  observedAt: number | undefined;
  ackedVersion: string | undefined;
  ackedAt: number | undefined;
  lastNack: NackRecord | undefined;
  /** SotW: the frozen `resource_names` list the subscription was last set from (one object per distinct list). */
  requestedNames: readonly string[] | undefined;

  constructor(readonly typeUrl: ResourceTypeUrl) {}

  /** Version of `name` the proxy holds / was last sent, if any. */
  sentVersionOf(name: string): string | undefined {
    const entry = this.sent.get(name);
    return typeof entry === 'string' ? entry : entry?.version;
  }

  /** The resources this stream sent that the proxy still holds, by name (for config dumps). */
  sentResources(): EncodedResource[] {
    const out: EncodedResource[] = [];
    for (const entry of this.sent.values()) if (typeof entry !== 'string') out.push(entry);
    return out.sort(byName);
  }

  /**
   * Records that the proxy was sent these resources of `snapshot`, and shares the snapshot's map
   * when that is now exactly what the proxy holds.
   */
  markSentOf(snapshot: Snapshot, resources: readonly EncodedResource[]): void {
    this.sent.holdSent(snapshot.resources(this.typeUrl), resources);
  }

  /** Forgets names the proxy no longer holds. */
  forget(names: Iterable<string>): void {
    for (const n of names) this.sent.delete(n);
  }

  wants(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /** Resources of the snapshot this subscription covers, in name order. */
  desired(snapshot: Snapshot): EncodedResource[] {
    const all = snapshot.resources(this.typeUrl);
    // A snapshot's maps never change, and many streams share one: sort each once.
    const sorted = sortedValues(all);
    if (this.wildcard) return sorted.slice();
    if (this.names.size * 4 >= all.size) return sorted.filter((r) => this.names.has(r.name));
    const out: EncodedResource[] = [];
    for (const n of this.names) {
      const r = all.get(n);
      if (r) out.push(r);
    }
    return out.sort(byName);
  }

  /**
   * `name` as `snapshot` spells it when it has such a resource. A subscription names most of a
   * snapshot's resources and many streams subscribe to the same names: holding the snapshot's
   * strings keeps one copy of each name instead of one per stream.
   */
  internName(snapshot: Snapshot | undefined, name: string): string {
    return snapshot?.get(this.typeUrl, name)?.name ?? name;
  }

  status(): TypeStatus {
    return {
      typeUrl: this.typeUrl,
      subscribed: [...(this.wildcard ? ['*'] : []), ...[...this.names].sort()],
      ...(this.sentVersion !== undefined && { sentVersion: this.sentVersion }),
      ...(this.nonce !== undefined && { sentNonce: this.nonce }),
      ...(this.sentAt !== undefined && { sentAt: this.sentAt }),
      ...(this.ackedVersion !== undefined && { ackedVersion: this.ackedVersion }),
      ...(this.ackedAt !== undefined && { ackedAt: this.ackedAt }),
      ...(this.lastNack !== undefined && { lastNack: this.lastNack }),
      resources: [...this.sent.keys()].sort().map((name) => ({ name, version: this.sentVersionOf(name)! })),
    };
  }
}

const byName = (a: EncodedResource, b: EncodedResource): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const sortedByMap = new WeakMap<ReadonlyMap<string, EncodedResource>, readonly EncodedResource[]>();

/** The values of a snapshot's (immutable) resource map in name order, computed once per map. */
function sortedValues(all: ReadonlyMap<string, EncodedResource>): readonly EncodedResource[] {
  let sorted = sortedByMap.get(all);
  if (!sorted) {
    sorted = [...all.values()].sort(byName);
    sortedByMap.set(all, sorted);
  }
  return sorted;
}

let nextStreamId = 1;

/** Protocol-independent part of one ADS stream. */
export abstract class Connection<P extends XdsPeer = XdsPeer> {
  readonly streamId = nextStreamId++;
  readonly connectedAt: number;
  readonly types = new Map<ResourceTypeUrl, TypeState>();
  private nonceCounter = 0;
  closed = false;
  /** Ends the stream (set by the server when the stream is accepted). */
  close: () => void = () => undefined;
  /** Listener/route pushes held until the clusters they name are warm; removed clusters kept until no route names them. */
  protected readonly warming: ClusterWarming;

  constructor(
    protected readonly host: StreamHost<P>,
    readonly proxy: P,
    readonly protocol: Protocol,
  ) {
    this.connectedAt = host.now();
    this.warming = new ClusterWarming({
      types: this.types,
      clock: host.clock,
      timeoutMs: host.warmingTimeoutMs,
      metrics: host.metrics,
      log: host.log,
      proxyId: proxy.id,
      repush: (types, observedAt) => this.pushChanges(types, observedAt),
    });
  }

  /** Called once the request is served: what was held or kept may go now (see `ClusterWarming.retry`). */
  protected afterRequest(): void {
    if (!this.closed) this.warming.retry();
  }

  /** The stream is gone: stops its timers. */
  dispose(): void {
    this.warming.dispose();
  }

  /** Pushes what changed in `types` (all when undefined), in push order. */
  pushChanges(types: readonly ResourceTypeUrl[] | undefined, observedAt: number | undefined): void {
    if (this.closed) return;
    let snapshot: Snapshot | undefined;
    for (const typeUrl of pushOrder) {
      if (types && !types.includes(typeUrl)) continue;
      const st = this.types.get(typeUrl);
      if (!st?.subscribed) continue;
      // Asked once, and only when some type is subscribed: a stream that watches none of `types` costs no translation.
      snapshot ??= this.snapshot();
      if (!snapshot) return;
      this.pushChanged(st, snapshot, observedAt);
    }
  }

  /** Pushes what changed of one subscribed type since it was last sent (the protocol's push). */
  protected abstract pushChanged(st: TypeState, snapshot: Snapshot, observedAt: number | undefined): void;

  /**
   * Whether a change of the resources of `types` whose names satisfy `names` can concern this
   * stream: some such type is subscribed by wildcard, or by a name that satisfies `names`.
   * `answers` (one map per change, shared by every stream) remembers the answer for each distinct
   * set of subscribed names, so streams that subscribe to the same names are asked once.
   */
  watchesAnyOf(types: readonly ResourceTypeUrl[], names: (name: string) => boolean, answers: Map<SubscriptionKey, boolean> = new Map()): boolean {
    for (const t of types) {
      const st = this.types.get(t);
      if (!st?.subscribed) continue;
      if (st.wildcard) return true;
      const key = st.names.key();
      let answer = answers.get(key);
      if (answer === undefined) {
        answer = false;
        for (const n of st.names) {
          if (names(n)) {
            answer = true;
            break;
          }
        }
        answers.set(key, answer);
      }
      if (answer) return true;
    }
    return false;
  }

  protected state(typeUrl: ResourceTypeUrl): TypeState {
    let st = this.types.get(typeUrl);
    if (!st) {
      st = new TypeState(typeUrl);
      this.types.set(typeUrl, st);
    }
    return st;
  }

  protected snapshot(): Snapshot | undefined {
    try {
      return this.host.source.resourcesFor(this.proxy);
    } catch (error) {
      this.host.log.warn({ proxyId: this.proxy.id, err: error }, 'resource source failed; nothing pushed');
      return undefined;
    }
  }

  protected nextNonce(): string {
    this.nonceCounter++;
    return `${this.streamId}-${this.nonceCounter}`;
  }

  /** Records a sent response; returns its nonce. */
  protected recordSend(st: TypeState, version: string, observedAt: number | undefined, startedAt: number): string {
    const nonce = this.nextNonce();
    st.nonce = nonce;
    st.sentVersion = version;
    st.sentAt = this.host.now();
    if (observedAt !== undefined) st.observedAt = Math.min(st.observedAt ?? observedAt, observedAt);
    this.warming.gatedSent(st.typeUrl);
    const type = shortTypeName[st.typeUrl];
    this.host.metrics.pushes.inc({ type });
    this.host.metrics.pushDuration.observe({ type }, (performance.now() - startedAt) / 1000);
    return nonce;
  }

  /**
   * ACK/NACK of the latest response (`response_nonce` equal to the last nonce sent). Returns
   * false for a stale nonce, which the caller ignores. A NACK (error_detail set) leaves the
   * last ACKed version in place: the proxy keeps running it.
   */
  protected handleResponseNonce(st: TypeState, nonce: string, errorDetail: ErrorDetail | undefined): boolean {
    if (nonce !== st.nonce) return false;
    const now = this.host.now();
    const version = st.sentVersion ?? '';
    const type = shortTypeName[st.typeUrl];
    if (errorDetail && (errorDetail.message || errorDetail.code)) {
      const error = errorDetail.message ?? `code ${errorDetail.code}`;
      st.lastNack = { version, nonce, error, at: now };
      this.host.metrics.rejects.inc({ type });
      this.emit({ event: 'nack', typeUrl: st.typeUrl, version, nonce, error });
      this.host.log.warn({ proxyId: this.proxy.id, type, version, error }, 'xDS NACK');
      this.warming.answered(st.typeUrl, true);
    } else {
      this.warming.answered(st.typeUrl, false);
      st.ackedVersion = version;
      st.ackedAt = now;
      if (st.observedAt !== undefined) {
        this.host.metrics.convergence.observe({ type }, Math.max(0, now - st.observedAt) / 1000);
        st.observedAt = undefined;
      }
      this.emit({ event: 'ack', typeUrl: st.typeUrl, version, nonce });
    }
    return true;
  }

  emit(fields: Omit<XdsStatusEvent<P>, 'proxyId' | 'streamId' | 'proxy' | 'protocol' | 'at'>): void {
    this.host.emit({ ...fields, proxyId: this.proxy.id, streamId: this.streamId, proxy: this.proxy, protocol: this.protocol, at: this.host.now() });
  }

  status(): ProxyStatus<P> {
    return {
      streamId: this.streamId,
      proxy: this.proxy,
      protocol: this.protocol,
      connectedAt: this.connectedAt,
      types: pushOrder.filter((t) => this.types.has(t)).map((t) => this.types.get(t)!.status()),
    };
  }
}
