// Load generator for the pilot benchmark (tools/bench/pilot.ts forks it with an IPC channel, so
// it runs in its own process, normally pinned to the other CPU). Opens N state-of-the-world ADS
// streams (state of the world, or delta with {cmd:'start', mode:'delta'}) with raw @grpc/grpc-js,
// one HTTP/2 connection each, and behaves like Envoy / a
// proxyless gRPC client: CDS and LDS wildcard first, then EDS for the EDS clusters it is sent
// and RDS for the route configurations its listeners name; every response is ACKed at once.
// When a stream ends (not while stopping) it comes back as Envoy does: after a jittered
// exponential backoff, on the same channel, re-sending its node, subscriptions and what it holds
// (tools/bench/ads-reconnect.ts); reconnects are counted and reported.
// Responses are decoded with protobufjs types that declare only the fields a proxy's
// subscriptions and the measurements need (tools/bench/ads-decode.ts); requests are encoded with
// the Envoy protos of @aviary/xds-protos.
//
// IPC (parent → child): {cmd:'start', port, nodes}, {cmd:'mark', id, address, host},
// {cmd:'report', id}, {cmd:'status'}, {cmd:'stop'}. Child → parent: {evt:'converged', ...},
// {evt:'marked'}, {evt:'report', ...}, {evt:'status', ...}; converged and status carry this
// process's memory and event-loop delay. Times are epoch milliseconds with sub-ms precision
// (performance.timeOrigin + performance.now()), comparable across processes on one machine.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { AdsService, ExtensionTypeUrl, TypeUrl, typeNameOf } from '@aviary/xds-api';
import { encodeMessageOf, jsToStruct, type JsonValue } from '@aviary/xds-protos';
import { trimmedType } from './ads-decode';
import { backoffMs, resumeRequests } from './ads-reconnect';

const HCM = ExtensionTypeUrl.HttpConnectionManager;
const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;
const ALL_TYPES = [CDS, EDS, LDS, RDS] as const;
const EDS_TYPE_ENUM = 3; // envoy.config.cluster.v3.Cluster.DiscoveryType.EDS

export interface LoadNode {
  readonly id: string;
  readonly kind: 'sidecar' | 'proxyless';
  readonly namespace: string;
  readonly metadata: Record<string, JsonValue>;
}

type Any = { type_url: string; value: Uint8Array };
type Decoded = protobuf.Message & Record<string, unknown>;

const now = (): number => performance.timeOrigin + performance.now();
const tResponse = trimmedType(AdsService.sotw.response);
const tDeltaResponse = trimmedType(AdsService.delta.response);
const tCluster = trimmedType(typeNameOf(TypeUrl.Cluster));
const tListener = trimmedType(typeNameOf(TypeUrl.Listener));
const tCla = trimmedType(typeNameOf(TypeUrl.ClusterLoadAssignment));
const tHcm = trimmedType(typeNameOf(HCM));
const tRoute = trimmedType(typeNameOf(TypeUrl.RouteConfiguration));
const encodeRequest = (o: object): Buffer => Buffer.from(encodeMessageOf(AdsService.sotw.request, o));
const encodeDeltaRequest = (o: object): Buffer => Buffer.from(encodeMessageOf(AdsService.delta.request, o));

/** State of the world (one DiscoveryRequest per subscription change, full responses) or incremental (delta). */
export type AdsMode = 'sotw' | 'delta';

function rdsOf(any: Any | undefined | null): string | undefined {
  if (!any || any.type_url !== HCM) return undefined;
  const hcm = tHcm.decode(any.value) as Decoded;
  const rds = hcm['rds'] as { route_config_name?: string } | undefined;
  return rds?.route_config_name || undefined;
}

function listenerRoutes(l: Decoded): string[] {
  const out: string[] = [];
  const api = (l['api_listener'] as { api_listener?: Any } | undefined)?.api_listener;
  const a = rdsOf(api);
  if (a) out.push(a);
  for (const chain of (l['filter_chains'] as Array<{ filters?: Array<{ typed_config?: Any }> }> | undefined) ?? []) {
    for (const f of chain.filters ?? []) {
      const r = rdsOf(f.typed_config);
      if (r) out.push(r);
    }
  }
  return out;
}

function claAddresses(c: Decoded): string[] {
  const out: string[] = [];
  for (const loc of (c['endpoints'] as Array<{ lb_endpoints?: Array<{ endpoint?: { address?: { socket_address?: { address?: string } } } }> }> | undefined) ?? []) {
    for (const lb of loc.lb_endpoints ?? []) {
      const a = lb.endpoint?.address?.socket_address?.address;
      if (a) out.push(a);
    }
  }
  return out;
}

interface TypeState {
  names: string[]; // current subscription (sorted); [] = wildcard for CDS/LDS
  nonce: string; // of the last response on the current stream ('' after a reconnect)
  version: string;
  received: Map<string, string>; // name → version (delta's Resource.version; '' in SotW)
  responses: number;
  acked: boolean;
  requested: boolean; // a request for the type was sent (EDS/RDS: once something names them)
}

interface Mark {
  readonly id: number;
  readonly at: number;
  readonly address: string;
  readonly hostSuffix: string;
}

class Stream {
  readonly types = new Map<string, TypeState>();
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  private client!: grpc.Client;
  private retry: NodeJS.Timeout | undefined;
  /** Attempts since the last response (Envoy resets its backoff when a new stream answers). */
  private attempt = 0;
  convergedAt: number | undefined;
  /** The last error a stream of this proxy ended with. */
  error: string | undefined;
  /** Streams this proxy opened after the first (each after its previous one ended). */
  reconnects = 0;
  reconnectsAtMark = 0;
  /** Since the last mark: responses per type, and when each EDS response carrying the marked address was ACKed. */
  sinceMark: Record<string, number> = {};
  markAcks: number[] = [];
  bytesIn = 0;
  bytesAtMark = 0;
  /** What each held cluster / listener makes the stream subscribe to (EDS names / RDS names). */
  private readonly clusterEds = new Map<string, string>();
  private readonly listenerRoutes = new Map<string, string[]>();
  /** Endpoints in the last EDS response of each cluster (a check that both servers have the whole registry). */
  readonly endpointsByCluster = new Map<string, number>();

  constructor(
    readonly index: number,
    readonly node: LoadNode,
    private readonly load: Load,
    private readonly mode: AdsMode = 'sotw',
  ) {
    for (const t of ALL_TYPES) this.types.set(t, { names: [], nonce: '', version: '', received: new Map(), responses: 0, acked: false, requested: t === CDS || t === LDS });
  }

  open(port: number): void {
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1, // one HTTP/2 connection per proxy, as real proxies have
      'grpc.max_receive_message_length': -1,
      'grpc.enable_channelz': 0, // 5,000 channels' and subchannels' channelz traces are state nobody reads
    });
    this.connect();
  }

  /**
   * A new ADS stream with the node first: the first time CDS and LDS, wildcard both (Envoy's
   * order); after a reconnect every type requested before, with what the proxy holds.
   */
  private connect(): void {
    this.retry = undefined;
    const call = this.client.makeBidiStreamRequest(this.mode === 'delta' ? AdsService.delta.path : AdsService.sotw.path, (b: Buffer) => b, (b: Buffer) => b);
    this.call = call;
    call.on('data', (b: Buffer) => this.onResponse(b));
    call.on('error', (e: grpc.ServiceError) => {
      if (!this.load.stopping) this.error = e.message;
    });
    // Emitted after 'error' for a failed stream, and also when the server ends it with OK.
    call.on('status', () => this.onEnded(call));
    const node = { id: this.node.id, cluster: this.node.namespace, metadata: jsToStruct(this.node.metadata), locality: { region: 'region1', zone: 'zone1' } };
    const enc = this.mode === 'delta' ? encodeDeltaRequest : encodeRequest;
    for (const st of this.types.values()) st.nonce = '';
    for (const req of resumeRequests(this.mode, node, ALL_TYPES.map((t) => ({ typeUrl: t, ...this.types.get(t)! })))) call.write(enc(req));
  }

  private onEnded(call: grpc.ClientDuplexStream<Buffer, Buffer>): void {
    if (call !== this.call || this.load.stopping) return;
    this.call = undefined;
    this.reconnects++;
    this.retry = setTimeout(() => this.connect(), backoffMs(this.attempt++));
  }

  /** SotW: the ACK (or a new subscription) repeats the whole name list; delta: an ACK names only the nonce. */
  private send(typeUrl: string, st: TypeState): void {
    if (this.mode === 'delta') this.call?.write(encodeDeltaRequest({ type_url: typeUrl, response_nonce: st.nonce }));
    else this.call?.write(encodeRequest({ type_url: typeUrl, version_info: st.version, response_nonce: st.nonce, resource_names: st.names }));
  }

  private subscribe(typeUrl: string, names: Set<string>): void {
    const st = this.types.get(typeUrl)!;
    const sorted = [...names].sort();
    if (sorted.length === st.names.length && sorted.every((n, i) => n === st.names[i])) return;
    const before = new Set(st.names);
    st.names = sorted;
    for (const n of [...st.received.keys()]) if (!names.has(n)) st.received.delete(n);
    st.acked = false;
    st.requested = true;
    if (this.mode === 'delta') {
      this.call?.write(
        encodeDeltaRequest({ type_url: typeUrl, resource_names_subscribe: sorted.filter((n) => !before.has(n)), resource_names_unsubscribe: [...before].filter((n) => !names.has(n)) }),
      );
    } else this.send(typeUrl, st);
  }

  private onResponse(buf: Buffer): void {
    const receivedAt = now();
    this.attempt = 0;
    this.bytesIn += buf.length;
    const delta = this.mode === 'delta';
    const res = (delta ? tDeltaResponse : tResponse).decode(buf) as Decoded;
    const typeUrl = res['type_url'] as string;
    const st = this.types.get(typeUrl);
    if (!st) return;
    st.nonce = res['nonce'] as string;
    st.version = (delta ? res['system_version_info'] : res['version_info']) as string;
    st.responses++;
    // Delta: resources wrapped in Resource {name, version, resource}; removed_resources by name.
    const wrapped = delta ? ((res['resources'] as Array<{ version?: string; resource?: Any }> | undefined) ?? []) : [];
    const resources = delta ? wrapped.flatMap((r) => (r.resource ? [r.resource] : [])) : ((res['resources'] as Any[] | undefined) ?? []);
    const versions = delta ? wrapped.flatMap((r) => (r.resource ? [r.version ?? ''] : [])) : [];
    const removed = delta ? ((res['removed_resources'] as string[] | undefined) ?? []) : [];
    const mark = this.load.mark;
    if (mark) this.sinceMark[typeUrl] = (this.sinceMark[typeUrl] ?? 0) + 1;
    let carriesMark = false;
    if (!delta && (typeUrl === CDS || typeUrl === LDS)) {
      st.received.clear(); // a SotW response to a wildcard subscription is the whole set
      (typeUrl === CDS ? this.clusterEds : this.listenerRoutes).clear();
    }
    for (const name of removed) {
      st.received.delete(name);
      this.clusterEds.delete(name);
      this.listenerRoutes.delete(name);
    }
    resources.forEach((any, i) => {
      const version = versions[i] ?? '';
      if (typeUrl === CDS) {
        const c = tCluster.decode(any.value) as Decoded;
        const name = c['name'] as string;
        st.received.set(name, version);
        if (c['type'] === EDS_TYPE_ENUM) this.clusterEds.set(name, ((c['eds_cluster_config'] as { service_name?: string } | undefined)?.service_name || name) as string);
        else this.clusterEds.delete(name);
      } else if (typeUrl === LDS) {
        const l = tListener.decode(any.value) as Decoded;
        st.received.set(l['name'] as string, version);
        this.listenerRoutes.set(l['name'] as string, listenerRoutes(l));
      } else if (typeUrl === EDS) {
        const c = tCla.decode(any.value) as Decoded;
        const name = c['cluster_name'] as string;
        st.received.set(name, version);
        const addresses = claAddresses(c);
        this.endpointsByCluster.set(name, addresses.length);
        if (mark && name.endsWith(mark.hostSuffix) && addresses.includes(mark.address)) carriesMark = true;
      } else {
        const r = tRoute.decode(any.value) as Decoded;
        st.received.set(r['name'] as string, version);
      }
    });
    // ACK first (Envoy applies, then ACKs), then change the dependent subscription.
    this.send(typeUrl, st);
    st.acked = true;
    if (carriesMark) this.markAcks.push(now());
    if (typeUrl === CDS) this.subscribe(EDS, new Set(this.clusterEds.values()));
    if (typeUrl === LDS) this.subscribe(RDS, new Set([...this.listenerRoutes.values()].flat()));
    if (this.convergedAt === undefined && this.converged()) {
      this.convergedAt = receivedAt;
      this.load.onConverged(this);
    }
  }

  /** Every type answered and ACKed, and every RDS/EDS name it subscribes to received. */
  converged(): boolean {
    for (const t of ALL_TYPES) {
      const st = this.types.get(t)!;
      if (t === RDS || t === EDS) {
        if (st.names.length === 0 && this.types.get(t === RDS ? LDS : CDS)!.responses === 0) return false;
        if (st.names.some((n) => !st.received.has(n))) return false;
        if (st.names.length > 0 && !st.acked) return false;
      } else if (st.responses === 0 || !st.acked) return false;
    }
    return true;
  }

  close(): void {
    clearTimeout(this.retry);
    this.call?.cancel();
    this.client.close();
  }

  get connected(): boolean {
    return this.call !== undefined;
  }
}

const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

/**
 * This process's own health, which decides whether its numbers are the server's: memory
 * (`process.memoryUsage`: now, and the peak of 1 s samples) against V8's heap limit, and the
 * event loop's delay: max and p99 since start (10 ms samples), and the max since the last
 * reading (how late the 1 s sampler ran). A loop stalled for 20 s cannot answer the server's
 * HTTP/2 keepalive pings, and the server then drops the connection.
 */
class Health {
  private readonly delay = monitorEventLoopDelay({ resolution: 10 });
  private readonly peak = { heapUsed: 0, rss: 0, external: 0 };
  private sampler: NodeJS.Timeout | undefined;
  private sampledAt = 0;
  private maxLateSinceReading = 0;

  start(): void {
    this.delay.enable();
    this.sampledAt = performance.now();
    this.sampler = setInterval(() => {
      const at = performance.now();
      this.maxLateSinceReading = Math.max(this.maxLateSinceReading, at - this.sampledAt - 1_000);
      this.sampledAt = at;
      this.memory();
    }, 1_000).unref();
  }

  /** Memory now and at its peak; the event loop's max delay since the last reading (then reset) and since start. */
  reading(): object {
    // A stall still under way shows in the next reading: this one is answered from inside it.
    const r = { memory: this.memory(), eventLoop: { maxMsSinceLastStatus: Math.round(Math.max(0, this.maxLateSinceReading)), sinceStart: this.sinceStart() } };
    this.maxLateSinceReading = 0;
    return r;
  }

  /** Memory now and at its peak, and the event loop's delay since start. */
  total(): object {
    return { memory: this.memory(), eventLoop: this.sinceStart() };
  }

  stop(): void {
    clearInterval(this.sampler);
    this.delay.disable();
  }

  private sinceStart(): { maxMs: number; p99Ms: number } {
    const ms = (ns: number): number => Math.round(ns / 1e5) / 10;
    return { maxMs: ms(this.delay.max), p99Ms: ms(this.delay.percentile(99)) };
  }

  private memory(): object {
    const m = process.memoryUsage();
    this.peak.heapUsed = Math.max(this.peak.heapUsed, m.heapUsed);
    this.peak.rss = Math.max(this.peak.rss, m.rss);
    this.peak.external = Math.max(this.peak.external, m.external);
    return {
      heapUsedMiB: mib(m.heapUsed),
      rssMiB: mib(m.rss),
      externalMiB: mib(m.external),
      heapLimitMiB: mib(getHeapStatistics().heap_size_limit),
      peak: { heapUsedMiB: mib(this.peak.heapUsed), rssMiB: mib(this.peak.rss), externalMiB: mib(this.peak.external) },
    };
  }
}

class Load {
  streams: Stream[] = [];
  mark: Mark | undefined;
  stopping = false;
  readonly health = new Health();
  private startedAt = 0;
  private convergedCount = 0;
  private cpuAtStart = process.cpuUsage();

  start(port: number, nodes: readonly LoadNode[], mode: AdsMode = 'sotw'): void {
    this.health.start();
    this.cpuAtStart = process.cpuUsage();
    this.startedAt = now();
    this.streams = nodes.map((n, i) => new Stream(i, n, this, mode));
    for (const s of this.streams) s.open(port);
  }

  onConverged(_s: Stream): void {
    this.convergedCount++;
    if (this.convergedCount === this.streams.length) {
      const times = this.streams.map((s) => s.convergedAt! - this.startedAt).sort((a, b) => a - b);
      const cpu = process.cpuUsage(this.cpuAtStart);
      const subs = (t: string): number => this.streams.reduce((n, s) => n + s.types.get(t)!.received.size, 0);
      send({
        evt: 'converged',
        startedAt: this.startedAt,
        lastAt: this.startedAt + times.at(-1)!,
        p50ms: q(times, 0.5),
        p99ms: q(times, 0.99),
        maxMs: times.at(-1),
        loadCpuMs: (cpu.user + cpu.system) / 1000,
        resourcesHeld: { cds: subs(CDS), eds: subs(EDS), lds: subs(LDS), rds: subs(RDS) },
        endpointsHeld: this.streams.reduce((n, s) => n + [...s.endpointsByCluster.values()].reduce((m, k) => m + k, 0), 0),
        bytesIn: this.streams.reduce((n, s) => n + s.bytesIn, 0),
        responses: this.streams.reduce((n, s) => n + [...s.types.values()].reduce((m, st) => m + st.responses, 0), 0),
        ...this.reconnects(),
        ...this.health.total(),
      });
    }
  }

  /** Reconnects of all streams, how many streams reconnected, and how many wait to reconnect now. */
  reconnects(): { reconnects: number; streamsReconnected: number; disconnected: number } {
    let reconnects = 0;
    let streamsReconnected = 0;
    let disconnected = 0;
    for (const s of this.streams) {
      reconnects += s.reconnects;
      if (s.reconnects > 0) streamsReconnected++;
      if (!s.connected) disconnected++;
    }
    return { reconnects, streamsReconnected, disconnected };
  }

  setMark(id: number, address: string, host: string): void {
    for (const s of this.streams) {
      s.sinceMark = {};
      s.markAcks = [];
      s.bytesAtMark = s.bytesIn;
      s.reconnectsAtMark = s.reconnects;
    }
    this.mark = { id, at: now(), address, hostSuffix: `|${host}` };
  }

  report(id: number): void {
    const mark = this.mark!;
    const interested: number[] = [];
    const acked: Array<{ stream: number; ms: number }> = [];
    const pushed: Array<{ stream: number; types: Record<string, number> }> = [];
    for (const s of this.streams) {
      const watches = s.types.get(EDS)!.names.some((n) => n.endsWith(mark.hostSuffix));
      if (watches) interested.push(s.index);
      if (s.markAcks.length > 0) acked.push({ stream: s.index, ms: Math.max(...s.markAcks) });
      if (Object.keys(s.sinceMark).length > 0) pushed.push({ stream: s.index, types: s.sinceMark });
    }
    const bytesSinceMark = this.streams.reduce((n, s) => n + s.bytesIn - s.bytesAtMark, 0);
    const reconnectsSinceMark = this.streams.reduce((n, s) => n + s.reconnects - s.reconnectsAtMark, 0);
    send({
      evt: 'report',
      id,
      markAt: mark.at,
      interested,
      acked,
      pushed,
      bytesSinceMark,
      reconnectsSinceMark,
      ...this.reconnects(),
      errors: this.streams.filter((s) => s.error).map((s) => `${s.index}: ${s.error}`).slice(0, 5),
    });
  }

  stop(): void {
    this.stopping = true;
    this.health.stop();
    for (const s of this.streams) s.close();
  }

  status(): object {
    const notConverged = this.streams.filter((s) => s.convergedAt === undefined);
    return {
      converged: this.convergedCount,
      ...this.reconnects(),
      errors: this.streams.filter((s) => s.error).length,
      firstError: this.streams.find((s) => s.error)?.error,
      ...this.health.reading(),
      sample: notConverged.slice(0, 2).map((s) => ({ id: s.node.id, types: Object.fromEntries([...s.types].map(([t, st]) => [t.split('.').at(-1), { names: st.names.length, received: st.received.size, responses: st.responses, acked: st.acked }])) })),
    };
  }
}

function q(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

function send(msg: object): void {
  process.send?.(msg);
}

const load = new Load();
process.on('message', (m: { cmd: string; port?: number; nodes?: LoadNode[]; mode?: AdsMode; id?: number; address?: string; host?: string }) => {
  if (m.cmd === 'start') load.start(m.port!, m.nodes!, m.mode ?? 'sotw');
  else if (m.cmd === 'mark') {
    load.setMark(m.id!, m.address!, m.host!);
    send({ evt: 'marked', id: m.id, at: load.mark!.at });
  } else if (m.cmd === 'report') load.report(m.id!);
  else if (m.cmd === 'status') send({ evt: 'status', ...load.status() });
  else if (m.cmd === 'stop') {
    load.stop();
    setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => process.exit(0));
send({ evt: 'ready', pid: process.pid });
