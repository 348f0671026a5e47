import * as grpc from '@grpc/grpc-js';
import { compileResources, kindTypeUrl, RoutingTable, type Cluster, type Endpoint, type Listener, type ResourceKind, type RouteConfig, type Secret } from '../domain';
import { ROOT_SECRET, WORKLOAD_SECRET } from './tls-material';
import { errorDetail, isUnimplemented, openAdsStream, unwrapResources, wireNode, type AdsStream, type Message, type XdsNode, type XdsProtocol, type XdsWireProtocol } from './xds-wire';

export type { XdsNode, XdsProtocol, XdsWireProtocol } from './xds-wire';

export type XdsClientEvent =
  | { readonly type: 'connected'; readonly protocol: XdsWireProtocol }
  | { readonly type: 'fallback'; readonly from: 'delta'; readonly to: 'sotw'; readonly reason: string }
  | { readonly type: 'disconnected'; readonly error: string; readonly retryInMs: number }
  | { readonly type: 'ack'; readonly kind: ResourceKind; readonly version: string; readonly count: number; readonly removed: number }
  | { readonly type: 'nack'; readonly kind: ResourceKind; readonly version: string; readonly error: string }
  | { readonly type: 'applied'; readonly version: string };

export interface XdsClientOptions {
  /** `host:port` of pilot's ADS server. */
  readonly address: string;
  readonly node: XdsNode;
  /** Receives each new table; the proxy swaps it in. */
  readonly onTable: (table: RoutingTable) => void | Promise<void>;
  readonly onEvent?: (event: XdsClientEvent) => void;
  readonly credentials?: grpc.ChannelCredentials;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** How long an update waits for the RDS/EDS it references before it is applied anyway (Envoy's warming). */
  readonly warmingTimeoutMs?: number;
  /** Default `auto`: DeltaAggregatedResources, falling back to StreamAggregatedResources on UNIMPLEMENTED. */
  readonly protocol?: XdsProtocol;
}

export interface XdsTypeStatus {
  /** Last accepted version: SotW `version_info`, delta `system_version_info`. */
  readonly version: string;
  readonly subscribed: readonly string[];
  /** How many resources of this type the proxy holds. */
  readonly resources: number;
  readonly lastError: string | undefined;
}

export type XdsClientStatus = { readonly protocol: XdsWireProtocol | 'none'; readonly connected: boolean } & Partial<Record<ResourceKind, XdsTypeStatus>>;

interface TypeState {
  /** Last accepted version (sent back in every SotW request, also in NACKs). */
  version: string;
  accepted: boolean;
  nonce: string;
  /** RDS/EDS/SDS: the names LDS/CDS reference. LDS/CDS are wildcard subscriptions. */
  subscribed: readonly string[];
  /** Delta: what this stream is subscribed to; undefined until its first request of the type. */
  streamSubscription: Set<string> | undefined;
  /** name → version of every resource held ('' when learnt over SotW, which has no per-resource versions). */
  held: Map<string, string>;
  /** Delta: subscribed names the server reported as not existing (not waited for while warming). */
  absent: Set<string>;
  lastError: string | undefined;
}

const kindByUrl = new Map(Object.entries(kindTypeUrl).map(([k, u]) => [u, k as ResourceKind]));
const wildcard = new Set<ResourceKind>(['lds', 'cds']);

/**
 * An ADS client, delta or state of the world. Subscribes to LDS and CDS (wildcard), then to
 * the RDS, EDS and SDS names they reference. A response is applied all-or-nothing: any
 * resource that does not compile NACKs it with the errors (keeping the last accepted version
 * and config). On stream loss it reconnects with jittered exponential back-off; the last good
 * table keeps serving meanwhile.
 *
 * Delta (`auto`, `delta`): subscriptions change by `resource_names_subscribe`/`_unsubscribe`
 * as listeners and clusters appear and vanish; responses carry only changed resources (with
 * per-resource versions) and `removed_resources`; a new stream sends
 * `initial_resource_versions` so nothing held is resent. In `auto` mode a server that answers
 * the delta stream with UNIMPLEMENTED gets a SotW stream at once; each reconnect after a lost
 * stream tries delta again (pilot may have been upgraded meanwhile).
 */
export class XdsClient {
  private readonly client: grpc.Client;
  private stream: AdsStream | undefined;
  private streamProtocol: XdsWireProtocol = 'delta';
  private inUse: XdsWireProtocol | undefined;
  private fellBack = false;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private warmTimer: NodeJS.Timeout | undefined;
  private readonly state = new Map<ResourceKind, TypeState>();
  private readonly listeners = new Map<string, Listener>();
  private readonly routes = new Map<string, RouteConfig>();
  private readonly clusters = new Map<string, Cluster>();
  private readonly endpoints = new Map<string, readonly Endpoint[]>();
  private readonly secrets = new Map<string, Secret>();
  private readonly stores: Readonly<Record<ResourceKind, Map<string, unknown>>>;
  private current: RoutingTable = RoutingTable.empty();
  private sentNode = false;

  constructor(private readonly opts: XdsClientOptions) {
    this.client = new grpc.Client(opts.address, opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    this.stores = { lds: this.listeners, rds: this.routes, cds: this.clusters, eds: this.endpoints, sds: this.secrets };
    for (const kind of ['cds', 'lds', 'rds', 'eds', 'sds'] as const) {
      this.state.set(kind, { version: '', accepted: false, nonce: '', subscribed: [], streamSubscription: undefined, held: new Map(), absent: new Set(), lastError: undefined });
    }
  }

  get table(): RoutingTable {
    return this.current;
  }

  get connected(): boolean {
    return this.stream !== undefined && this.attempt === 0;
  }

  /** The protocol of the stream that last received config (undefined before the first response). */
  get protocol(): XdsWireProtocol | undefined {
    return this.inUse;
  }

  /** Protocol, versions, subscriptions and the last NACK per type, for config_dump. */
  status(): XdsClientStatus {
    const types = Object.fromEntries(
      [...this.state].map(([k, s]) => [k, { version: s.version, subscribed: wildcard.has(k) ? ['*'] : s.subscribed, resources: s.held.size, lastError: s.lastError }]),
    );
    return { protocol: this.inUse ?? 'none', connected: this.connected, ...types };
  }

  /** Whether LDS and CDS have been accepted at least once (readiness). */
  get synced(): boolean {
    return this.st('lds').accepted && this.st('cds').accepted;
  }

  start(): void {
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.warmTimer !== undefined) clearTimeout(this.warmTimer);
    this.stream?.cancel();
    this.stream = undefined;
    this.client.close();
  }

  private st(kind: ResourceKind): TypeState {
    return this.state.get(kind) as TypeState;
  }

  private connect(): void {
    if (this.stopped) return;
    const mode = this.opts.protocol ?? 'auto';
    const protocol: XdsWireProtocol = mode === 'sotw' || (mode === 'auto' && this.fellBack) ? 'sotw' : 'delta';
    const stream = openAdsStream(this.client, protocol);
    this.stream = stream;
    this.streamProtocol = protocol;
    this.sentNode = false;
    let gotData = false;
    stream.on('data', (res: Message) => {
      if (!gotData) {
        gotData = true;
        this.attempt = 0;
        this.inUse = protocol;
        this.opts.onEvent?.({ type: 'connected', protocol });
      }
      if (protocol === 'delta') this.onDeltaResponse(res);
      else this.onSotwResponse(res);
    });
    const lost = (err: unknown): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (this.stopped) return;
      if (protocol === 'delta' && mode === 'auto' && !gotData && isUnimplemented(err)) {
        // A SotW-only server: not an outage, switch at once.
        this.fellBack = true;
        this.opts.onEvent?.({ type: 'fallback', from: 'delta', to: 'sotw', reason: err instanceof Error ? err.message : String(err) });
        this.connect();
        return;
      }
      this.fellBack = false;
      const b = this.opts.backoff ?? { initialMs: 250, maxMs: 10_000 };
      const ceiling = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.attempt, 16));
      const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      this.attempt++;
      this.opts.onEvent?.({ type: 'disconnected', error: err instanceof Error ? err.message : String(err), retryInMs: delay });
      this.timer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', lost);
    stream.on('end', () => lost(new Error('stream ended by the server')));
    // Re-subscribe to everything: SotW with the accepted versions and an empty nonce, delta
    // with the versions of every resource held.
    for (const s of this.state.values()) {
      s.nonce = '';
      s.streamSubscription = undefined;
    }
    for (const kind of ['cds', 'lds', 'rds', 'eds', 'sds'] as const) if (wildcard.has(kind) || this.st(kind).subscribed.length > 0) this.subscribe(kind);
  }

  private write(req: Message): void {
    if (!this.sentNode) {
      req.node = wireNode(this.opts.node);
      this.sentNode = true;
    }
    this.stream?.write(req);
  }

  /** Sends the type's current subscription: a SotW request, or the delta difference to what this stream has. */
  private subscribe(kind: ResourceKind): void {
    const s = this.st(kind);
    if (this.streamProtocol === 'sotw') {
      this.write({ version_info: s.version, resource_names: wildcard.has(kind) ? [] : [...s.subscribed], type_url: kindTypeUrl[kind], response_nonce: s.nonce });
      return;
    }
    const wanted = wildcard.has(kind) ? [] : s.subscribed;
    if (s.streamSubscription === undefined) {
      // First request of the type on this stream: an empty subscribe list is a wildcard for
      // LDS/CDS (pilot's delta.ts, Envoy's legacy wildcard); named types list their names.
      const held = [...s.held].filter(([n]) => wildcard.has(kind) || wanted.includes(n));
      this.write({ type_url: kindTypeUrl[kind], resource_names_subscribe: [...wanted], ...(held.length > 0 && { initial_resource_versions: Object.fromEntries(held) }) });
      s.streamSubscription = new Set(wanted);
      return;
    }
    const have = s.streamSubscription;
    const add = wanted.filter((n) => !have.has(n));
    const remove = [...have].filter((n) => !wanted.includes(n));
    if (add.length === 0 && remove.length === 0) return;
    s.streamSubscription = new Set(wanted);
    this.write({ type_url: kindTypeUrl[kind], resource_names_subscribe: add, resource_names_unsubscribe: remove });
  }

  private ack(kind: ResourceKind, error?: string): void {
    const s = this.st(kind);
    const detail = error === undefined ? {} : { error_detail: errorDetail(error) };
    if (this.streamProtocol === 'sotw') this.write({ version_info: s.version, resource_names: wildcard.has(kind) ? [] : [...s.subscribed], type_url: kindTypeUrl[kind], response_nonce: s.nonce, ...detail });
    else this.write({ type_url: kindTypeUrl[kind], response_nonce: s.nonce, ...detail });
  }

  private onSotwResponse(res: Message): void {
    const typeUrl = String(res.type_url ?? '');
    const kind = kindByUrl.get(typeUrl);
    if (kind === undefined) return; // a type we never asked for
    const s = this.st(kind);
    const version = String(res.version_info ?? '');
    s.nonce = String(res.nonce ?? '');
    const unwrapped = unwrapResources('sotw', typeUrl, res);
    if ('error' in unwrapped) return this.nack(kind, version, unwrapped.error);
    const compiled = compileResources(kind, unwrapped.raws);
    if (compiled.errors.length > 0) return this.nack(kind, version, compiled.errors.join('; '));
    const store = this.stores[kind];
    if (wildcard.has(kind)) {
      // A full state: whatever is not in it is gone.
      store.clear();
      s.held.clear();
    }
    for (const [n, r] of compiled.resources as ReadonlyMap<string, unknown>) {
      store.set(n, kind === 'eds' ? (r as { endpoints: readonly Endpoint[] }).endpoints : r);
      s.held.set(n, '');
    }
    this.accepted(kind, version, compiled.resources.size, 0);
  }

  private onDeltaResponse(res: Message): void {
    const typeUrl = String(res.type_url ?? '');
    const kind = kindByUrl.get(typeUrl);
    if (kind === undefined) return;
    const s = this.st(kind);
    const version = String(res.system_version_info ?? '');
    s.nonce = String(res.nonce ?? '');
    const unwrapped = unwrapResources('delta', typeUrl, res);
    if ('error' in unwrapped) return this.nack(kind, version, unwrapped.error);
    const compiled = compileResources(kind, unwrapped.raws);
    const errors = [...compiled.errors];
    for (const name of unwrapped.versions.keys()) if (compiled.errors.length === 0 && !compiled.resources.has(name)) errors.push(`delta resource ${name}: its name differs from the name of the ${kind} resource it carries`);
    if (errors.length > 0) return this.nack(kind, version, errors.join('; '));
    const store = this.stores[kind];
    const removed = ((res.removed_resources as string[] | undefined) ?? []).filter((n) => !compiled.resources.has(n));
    for (const n of removed) {
      store.delete(n);
      s.held.delete(n);
      if (!wildcard.has(kind)) s.absent.add(n);
    }
    for (const [n, r] of compiled.resources as ReadonlyMap<string, unknown>) {
      store.set(n, kind === 'eds' ? (r as { endpoints: readonly Endpoint[] }).endpoints : r);
      s.held.set(n, unwrapped.versions.get(n) ?? '');
      s.absent.delete(n);
    }
    this.accepted(kind, version !== '' ? version : s.version || s.nonce, compiled.resources.size, removed.length);
  }

  private accepted(kind: ResourceKind, version: string, count: number, removed: number): void {
    const s = this.st(kind);
    s.version = version;
    s.accepted = true;
    s.lastError = undefined;
    this.ack(kind);
    this.opts.onEvent?.({ type: 'ack', kind, version, count, removed });
    this.resubscribe();
    this.applyWhenWarm();
  }

  /** Rejects the response; the last accepted resources and version stay. */
  private nack(kind: ResourceKind, version: string, error: string): void {
    this.st(kind).lastError = error;
    this.ack(kind, error);
    this.opts.onEvent?.({ type: 'nack', kind, version, error });
  }

  private candidate(): RoutingTable {
    const rdsNames = new Set(this.st('rds').subscribed);
    const edsNames = new Set(this.st('eds').subscribed);
    const sdsNames = new Set(this.st('sds').subscribed);
    const version = (['lds', 'rds', 'cds', 'eds', 'sds'] as const).map((k) => `${k}=${this.st(k).version}`).join(',');
    return new RoutingTable(
      version,
      new Map(this.listeners),
      new Map([...this.routes].filter(([n]) => rdsNames.has(n))),
      new Map(this.clusters),
      new Map([...this.endpoints].filter(([n]) => edsNames.has(n))),
      new Map([...this.secrets].filter(([n]) => sdsNames.has(n))),
    );
  }

  /** Subscribes to what LDS/CDS now reference; unsubscribes from and drops what they no longer do. */
  private resubscribe(): void {
    const rds = this.candidate().routeNames();
    const eds = [...new Set([...this.clusters.values()].flatMap((c) => (c.edsName === undefined ? [] : [c.edsName])))].sort();
    const sds = secretNames(this.listeners, this.clusters);
    for (const [kind, names] of [['rds', rds], ['eds', eds], ['sds', sds]] as const) {
      const s = this.st(kind);
      if (s.subscribed.join('\0') === names.join('\0')) continue;
      s.subscribed = names;
      const keep = new Set(names);
      for (const n of [...this.stores[kind].keys()]) if (!keep.has(n)) this.stores[kind].delete(n);
      for (const n of [...s.held.keys()]) if (!keep.has(n)) s.held.delete(n);
      for (const n of [...s.absent]) if (!keep.has(n)) s.absent.delete(n);
      this.subscribe(kind);
    }
  }

  /** Applies at once when every referenced RDS/EDS resource is here (or known not to exist), else after the warming timeout. */
  private applyWhenWarm(): void {
    const waiting = (kind: 'rds' | 'eds'): string[] => this.st(kind).subscribed.filter((n) => !this.stores[kind].has(n) && !this.st(kind).absent.has(n));
    if (waiting('rds').length === 0 && waiting('eds').length === 0) {
      if (this.warmTimer !== undefined) clearTimeout(this.warmTimer);
      this.warmTimer = undefined;
      void this.apply();
      return;
    }
    this.warmTimer ??= setTimeout(() => {
      this.warmTimer = undefined;
      void this.apply();
    }, this.opts.warmingTimeoutMs ?? 1_000);
  }

  private async apply(): Promise<void> {
    const t = this.candidate();
    this.current = t;
    await this.opts.onTable(t);
    this.opts.onEvent?.({ type: 'applied', version: t.version });
  }
}

/** SDS names referenced by TLS contexts, minus the ones the proxy supplies itself. */
function secretNames(listeners: ReadonlyMap<string, Listener>, clusters: ReadonlyMap<string, Cluster>): string[] {
  const names = new Set<string>();
  const add = (n: string | undefined): void => {
    if (n !== undefined && n !== WORKLOAD_SECRET && n !== ROOT_SECRET) names.add(n);
  };
  for (const l of listeners.values()) {
    for (const c of [...l.filterChains, ...(l.defaultChain ? [l.defaultChain] : [])]) {
      c.tls?.certificateSecrets.forEach(add);
      add(c.tls?.validationSecret);
    }
  }
  for (const c of clusters.values()) {
    c.tls?.certificateSecrets.forEach(add);
    add(c.tls?.validationSecret);
  }
  return [...names].sort();
}
