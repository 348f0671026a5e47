import * as grpc from '@grpc/grpc-js';
import { decodeMessageOf, encodeMessageOf, jsToStruct } from '@aviary/xds-protos';
import { compileResources, kindTypeUrl, RoutingTable, type Cluster, type Endpoint, type Listener, type ResourceKind, type RouteConfig, type Secret } from '../domain';
import { ROOT_SECRET, WORKLOAD_SECRET } from './tls-material';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';

export interface XdsNode {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly sub_zone?: string };
}

export type XdsClientEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly error: string; readonly retryInMs: number }
  | { readonly type: 'ack'; readonly kind: ResourceKind; readonly version: string; readonly count: number }
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
}

interface TypeState {
  /** Last accepted version (sent back in every request, also in NACKs). */
  version: string;
  nonce: string;
  subscribed: readonly string[];
  lastError: string | undefined;
}

type Stream = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

const kindByUrl = new Map(Object.entries(kindTypeUrl).map(([k, u]) => [u, k as ResourceKind]));
const wildcard = new Set<ResourceKind>(['lds', 'cds']);

/**
 * A state-of-the-world ADS client. Subscribes to LDS and CDS (wildcard), then to the RDS, EDS
 * and SDS names they reference. A response is applied all-or-nothing: any resource that does
 * not compile NACKs it with the errors (keeping the last accepted version and config). On
 * stream loss it reconnects with jittered exponential back-off, re-subscribing with its
 * accepted versions; the last good table keeps serving meanwhile.
 */
export class XdsClient {
  private readonly client: grpc.Client;
  private stream: Stream | undefined;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private warmTimer: NodeJS.Timeout | undefined;
  private readonly state = new Map<ResourceKind, TypeState>();
  private listeners = new Map<string, Listener>();
  private routes = new Map<string, RouteConfig>();
  private clusters = new Map<string, Cluster>();
  private endpoints = new Map<string, readonly Endpoint[]>();
  private secrets = new Map<string, Secret>();
  private current: RoutingTable = RoutingTable.empty();
  private sentNode = false;

  constructor(private readonly opts: XdsClientOptions) {
    this.client = new grpc.Client(opts.address, opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    for (const kind of ['cds', 'lds', 'rds', 'eds', 'sds'] as const) this.state.set(kind, { version: '', nonce: '', subscribed: [], lastError: undefined });
  }

  get table(): RoutingTable {
    return this.current;
  }

  get connected(): boolean {
    return this.stream !== undefined && this.attempt === 0;
  }

  /** Versions, nonces and the last NACK per type, for config_dump. */
  status(): Record<string, { version: string; subscribed: readonly string[]; lastError: string | undefined }> {
    return Object.fromEntries([...this.state].map(([k, s]) => [k, { version: s.version, subscribed: s.subscribed, lastError: s.lastError }]));
  }

  /** Whether LDS and CDS have been accepted at least once (readiness). */
  get synced(): boolean {
    return (this.state.get('lds')?.version ?? '') !== '' && (this.state.get('cds')?.version ?? '') !== '';
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

  private connect(): void {
    if (this.stopped) return;
    const stream = this.client.makeBidiStreamRequest(
      ADS_METHOD,
      (req: Record<string, unknown>) => Buffer.from(encodeMessageOf(REQUEST, req)),
      (buf: Buffer) => decodeMessageOf(RESPONSE, buf),
    ) as Stream;
    this.stream = stream;
    this.sentNode = false;
    let gotData = false;
    stream.on('data', (res: Record<string, unknown>) => {
      if (!gotData) {
        gotData = true;
        this.attempt = 0;
        this.opts.onEvent?.({ type: 'connected' });
      }
      this.onResponse(res);
    });
    const lost = (err: unknown): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (this.stopped) return;
      const b = this.opts.backoff ?? { initialMs: 250, maxMs: 10_000 };
      const ceiling = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.attempt, 16));
      const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      this.attempt++;
      this.opts.onEvent?.({ type: 'disconnected', error: err instanceof Error ? err.message : String(err), retryInMs: delay });
      this.timer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', lost);
    stream.on('end', () => lost(new Error('stream ended by the server')));
    // Re-subscribe to everything with the accepted versions and an empty nonce.
    for (const s of this.state.values()) s.nonce = '';
    this.send('cds');
    this.send('lds');
    for (const kind of ['rds', 'eds', 'sds'] as const) if ((this.state.get(kind)?.subscribed.length ?? 0) > 0) this.send(kind);
  }

  private send(kind: ResourceKind, errorDetail?: string): void {
    const s = this.state.get(kind) as TypeState;
    const req: Record<string, unknown> = {
      version_info: s.version,
      resource_names: wildcard.has(kind) ? [] : [...s.subscribed],
      type_url: kindTypeUrl[kind],
      response_nonce: s.nonce,
    };
    if (!this.sentNode) {
      req.node = {
        id: this.opts.node.id,
        cluster: this.opts.node.cluster,
        metadata: jsToStruct(this.opts.node.metadata as Parameters<typeof jsToStruct>[0]),
        ...(this.opts.node.locality === undefined ? {} : { locality: this.opts.node.locality }),
        user_agent_name: 'aviary-gateway',
      };
      this.sentNode = true;
    }
    if (errorDetail !== undefined) req.error_detail = { code: 3, message: errorDetail.slice(0, 16_000) };
    this.stream?.write(req);
  }

  private onResponse(res: Record<string, unknown>): void {
    const typeUrl = String(res.type_url ?? '');
    const kind = kindByUrl.get(typeUrl);
    if (kind === undefined) return; // a type we never asked for
    const s = this.state.get(kind) as TypeState;
    const version = String(res.version_info ?? '');
    const nonce = String(res.nonce ?? '');
    const raws = ((res.resources as Record<string, unknown>[] | undefined) ?? []).map((r) => {
      const { '@type': t, ...rest } = r;
      if (t !== typeUrl) return { __wrongType: String(t ?? r.type_url) };
      return rest;
    });
    const wrong = raws.find((r) => '__wrongType' in r);
    s.nonce = nonce;
    if (wrong !== undefined) {
      this.nack(kind, version, `resource type ${String((wrong as { __wrongType: string }).__wrongType)} does not match response type ${typeUrl}`);
      return;
    }
    const compiled = compileResources(kind, raws);
    if (compiled.errors.length > 0) {
      this.nack(kind, version, compiled.errors.join('; '));
      return;
    }
    s.version = version;
    s.lastError = undefined;
    switch (kind) {
      case 'lds':
        this.listeners = new Map(compiled.resources as ReadonlyMap<string, Listener>);
        break;
      case 'cds':
        this.clusters = new Map(compiled.resources as ReadonlyMap<string, Cluster>);
        break;
      case 'rds':
        for (const [n, r] of compiled.resources as ReadonlyMap<string, RouteConfig>) this.routes.set(n, r);
        break;
      case 'eds':
        for (const [n, r] of compiled.resources as ReadonlyMap<string, { endpoints: readonly Endpoint[] }>) this.endpoints.set(n, r.endpoints);
        break;
      case 'sds':
        for (const [n, r] of compiled.resources as ReadonlyMap<string, Secret>) this.secrets.set(n, r);
        break;
    }
    this.send(kind); // ACK
    this.opts.onEvent?.({ type: 'ack', kind, version, count: compiled.resources.size });
    this.resubscribe();
    this.applyWhenWarm();
  }

  private nack(kind: ResourceKind, version: string, error: string): void {
    const s = this.state.get(kind) as TypeState;
    s.lastError = error;
    this.send(kind, error);
    this.opts.onEvent?.({ type: 'nack', kind, version, error });
  }

  private candidate(): RoutingTable {
    const rdsNames = new Set(this.state.get('rds')?.subscribed);
    const edsNames = new Set(this.state.get('eds')?.subscribed);
    const sdsNames = new Set(this.state.get('sds')?.subscribed);
    const version = ['lds', 'rds', 'cds', 'eds', 'sds'].map((k) => `${k}=${this.state.get(k as ResourceKind)?.version ?? ''}`).join(',');
    return new RoutingTable(
      version,
      new Map(this.listeners),
      new Map([...this.routes].filter(([n]) => rdsNames.has(n))),
      new Map(this.clusters),
      new Map([...this.endpoints].filter(([n]) => edsNames.has(n))),
      new Map([...this.secrets].filter(([n]) => sdsNames.has(n))),
    );
  }

  /** Subscribes to what LDS/CDS now reference; prunes what they no longer do. */
  private resubscribe(): void {
    const t = this.candidate();
    const rds = t.routeNames();
    const eds = [...new Set([...this.clusters.values()].flatMap((c) => (c.edsName === undefined ? [] : [c.edsName])))].sort();
    const sds = secretNames(this.listeners, this.clusters);
    for (const [kind, names] of [['rds', rds], ['eds', eds], ['sds', sds]] as const) {
      const s = this.state.get(kind) as TypeState;
      if (s.subscribed.join('\0') === names.join('\0')) continue;
      s.subscribed = names;
      if (kind === 'rds') for (const n of [...this.routes.keys()]) if (!names.includes(n)) this.routes.delete(n);
      if (kind === 'eds') for (const n of [...this.endpoints.keys()]) if (!names.includes(n)) this.endpoints.delete(n);
      if (kind === 'sds') for (const n of [...this.secrets.keys()]) if (!names.includes(n)) this.secrets.delete(n);
      this.send(kind);
    }
  }

  /** Applies at once when every referenced RDS/EDS resource is here, else after the warming timeout. */
  private applyWhenWarm(): void {
    const missing = [...(this.state.get('rds')?.subscribed ?? []).filter((n) => !this.routes.has(n)), ...(this.state.get('eds')?.subscribed ?? []).filter((n) => !this.endpoints.has(n))];
    if (missing.length === 0) {
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
