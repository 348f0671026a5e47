import { AviaryError } from '@aviary/errors';
import { isErrorRecord, serviceNamespace, serviceShortName, type TelemetryRecord } from './record';
import { LatencySketch } from './sketch';

export type NodeKind = 'workload' | 'service' | 'unknown';

export interface GraphNode {
  /**
   * `workload:<ns>/<name>` or, when the version is known, `workload:<ns>/<name>@<version>`
   * (Kiali's versioned app: the app's v1 and v2 are two nodes; `name` is the workload's app label
   * when it has one, else its workload name); `service:<host>`; or `unknown` (a caller without
   * identity).
   */
  readonly id: string;
  readonly kind: NodeKind;
  readonly name: string;
  readonly namespace: string;
  readonly app?: string;
  readonly version?: string;
  /** Inbound traffic over the window. */
  readonly requestsPerSecond: number;
  readonly errorRatio: number;
}

export interface EdgeStats {
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** 0..1; see `isErrorRecord`. */
  readonly errorRatio: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  /** Share of requests that were mutual TLS, 0..1. */
  readonly mtlsShare: number;
}

export interface GraphEdge extends EdgeStats {
  /** `<source id>-><target id>`. */
  readonly id: string;
  readonly source: string;
  readonly target: string;
  readonly protocol: 'http' | 'grpc' | 'tcp';
}

export interface ServiceGraphSnapshot {
  readonly windowSeconds: number;
  /** End of the window, ms since the epoch. */
  readonly timeMs: number;
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
}

/** Golden signals of the requests a service's destinations of one version received. */
export interface VersionSummaryData extends EdgeStats {
  readonly version: string;
}

export interface ServiceSummaryData extends EdgeStats {
  readonly service: string;
  readonly namespace: string;
  readonly windowSeconds: number;
  /**
   * The same signals per destination version (workloads with a `version` label), sorted by
   * version; requests whose destination has no version are only in the service's totals.
   */
  readonly versions: VersionSummaryData[];
}

export interface TimeseriesPoint {
  /** End of the step, ms since the epoch. */
  readonly timeMs: number;
  readonly requestsPerSecond: number;
  readonly errorRatio: number;
  readonly p99Ms: number;
}

export interface ServiceTimeseries {
  readonly service: string;
  readonly stepSeconds: number;
  readonly points: readonly TimeseriesPoint[];
}

export interface ServiceGraphOptions {
  /** Time resolution of the windows. */
  readonly slotMs: number;
  /** Longest window kept (and queryable). */
  readonly retentionMs: number;
  /** Most edges tracked; records for new edges past it are left out of the graph (counted). */
  readonly maxEdges: number;
  /**
   * Which reports the graph counts, so that a request seen by both proxies counts once:
   * `destination` only; `source` only; `auto` (default) destination reports plus source reports
   * of requests to a destination without mesh identity (no server-side proxy to report them).
   */
  readonly reporter?: 'auto' | 'source' | 'destination';
}

interface Slot {
  epoch: number;
  requests: number;
  errors: number;
  mtls: number;
  readonly latency: LatencySketch;
}

interface Edge {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  protocol: 'http' | 'grpc' | 'tcp';
  readonly slots: (Slot | undefined)[];
  lastEpoch: number;
}

interface NodeMeta {
  readonly id: string;
  readonly kind: NodeKind;
  readonly name: string;
  readonly namespace: string;
  app?: string;
  version?: string;
}

const round = (v: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/**
 * The live service graph: workload → service → workload edges with windowed rate, error
 * ratio, latency quantiles and mTLS share. Time is always passed in (no clock is read), so the
 * same records and times give the same graph.
 */
export class ServiceGraph {
  private readonly edges = new Map<string, Edge>();
  private readonly nodes = new Map<string, NodeMeta>();
  private readonly slotCount: number;
  private latestEpoch = 0;
  /** Records left out because the edge table was full. */
  droppedEdges = 0;
  /** Records left out because they were older than the retention. */
  droppedLate = 0;

  constructor(private readonly opts: ServiceGraphOptions) {
    this.slotCount = Math.max(1, Math.ceil(opts.retentionMs / opts.slotMs));
  }

  get retentionMs(): number {
    return this.slotCount * this.opts.slotMs;
  }

  /** Whether a record is counted in the graph under the reporter policy. */
  counts(r: TelemetryRecord): boolean {
    switch (this.opts.reporter ?? 'auto') {
      case 'source':
        return r.reporter === 'source';
      case 'destination':
        return r.reporter === 'destination';
      default:
        return r.reporter === 'destination' || r.destinationPrincipal === '';
    }
  }

  /** Adds one record that happened at `timeMs`. */
  add(r: TelemetryRecord, timeMs: number): void {
    if (!this.counts(r)) return;
    const epoch = Math.floor(timeMs / this.opts.slotMs);
    if (epoch > this.latestEpoch) this.latestEpoch = epoch;
    if (epoch <= this.latestEpoch - this.slotCount) {
      this.droppedLate += 1;
      return;
    }
    const src = this.sourceNode(r);
    const svc = this.serviceNode(r);
    this.addToEdge(src, svc, r, epoch);
    if (r.destinationWorkload !== '') this.addToEdge(svc, this.destinationNode(r), r, epoch);
  }

  private addToEdge(source: NodeMeta, target: NodeMeta, r: TelemetryRecord, epoch: number): void {
    const id = `${source.id}->${target.id}`;
    let e = this.edges.get(id);
    if (e === undefined) {
      if (this.edges.size >= this.opts.maxEdges) {
        this.droppedEdges += 1;
        return;
      }
      e = { id, source: source.id, target: target.id, protocol: r.protocol, slots: new Array<Slot | undefined>(this.slotCount), lastEpoch: epoch };
      this.edges.set(id, e);
    }
    if (epoch > e.lastEpoch) e.lastEpoch = epoch;
    e.protocol = r.protocol;
    const at = epoch % this.slotCount;
    let slot = e.slots[at];
    if (slot === undefined || slot.epoch !== epoch) {
      if (slot !== undefined && slot.epoch > epoch) return; // a slot this old was already recycled
      slot = { epoch, requests: 0, errors: 0, mtls: 0, latency: new LatencySketch() };
      e.slots[at] = slot;
    }
    slot.requests += 1;
    if (isErrorRecord(r)) slot.errors += 1;
    if (r.connectionSecurityPolicy === 'mutual_tls') slot.mtls += 1;
    slot.latency.add(r.durationMs);
  }

  private node(id: string, kind: NodeKind, name: string, namespace: string, app?: string, version?: string): NodeMeta {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = { id, kind, name, namespace };
      this.nodes.set(id, n);
    }
    if (app !== undefined && app !== '') n.app = app;
    if (version !== undefined && version !== '') n.version = version;
    return n;
  }

  /** A workload node per (namespace, app or workload name, version). */
  private workloadNode(namespace: string, workload: string, app: string | undefined, version: string | undefined): NodeMeta {
    const name = app === undefined || app === '' ? workload : app;
    const v = version ?? '';
    return this.node(`workload:${namespace}/${name}${v === '' ? '' : `@${v}`}`, 'workload', name, namespace, app, v);
  }

  private sourceNode(r: TelemetryRecord): NodeMeta {
    if (r.sourceWorkload === '') return this.node('unknown', 'unknown', 'unknown', '');
    return this.workloadNode(r.sourceNamespace, r.sourceWorkload, r.sourceApp, r.sourceVersion);
  }

  private serviceNode(r: TelemetryRecord): NodeMeta {
    const host = r.destinationService === '' ? 'unknown' : r.destinationService;
    return this.node(`service:${host}`, 'service', serviceShortName(host), serviceNamespace(host, r.destinationNamespace));
  }

  private destinationNode(r: TelemetryRecord): NodeMeta {
    return this.workloadNode(r.destinationNamespace, r.destinationWorkload, r.destinationApp, r.destinationVersion);
  }

  /** Slots of `e` inside the window that ends at `nowMs`. */
  private window(e: Edge, windowMs: number, nowMs: number): Slot[] {
    const nowEpoch = Math.floor(nowMs / this.opts.slotMs);
    const n = Math.min(this.slotCount, Math.max(1, Math.ceil(windowMs / this.opts.slotMs)));
    const out: Slot[] = [];
    for (const s of e.slots) if (s !== undefined && s.epoch <= nowEpoch && s.epoch > nowEpoch - n) out.push(s);
    return out;
  }

  /** The graph over the `windowMs` ending at `nowMs`: only nodes and edges with traffic in it. */
  snapshot(windowMs: number, nowMs: number): ServiceGraphSnapshot {
    const windowSeconds = windowMs / 1000;
    const edges: GraphEdge[] = [];
    const inbound = new Map<string, { requests: number; errors: number }>();
    for (const e of this.edges.values()) {
      const slots = this.window(e, windowMs, nowMs);
      if (slots.length === 0) continue;
      const { errors, ...stats } = statsOf(slots, windowSeconds);
      if (stats.requests === 0) continue;
      edges.push({ id: e.id, source: e.source, target: e.target, protocol: e.protocol, ...stats });
      const t = inbound.get(e.target) ?? { requests: 0, errors: 0 };
      t.requests += stats.requests;
      t.errors += errors;
      inbound.set(e.target, t);
    }
    const used = new Set(edges.flatMap((e) => [e.source, e.target]));
    const nodes: GraphNode[] = [];
    for (const n of this.nodes.values()) {
      if (!used.has(n.id)) continue;
      const t = inbound.get(n.id);
      nodes.push({
        id: n.id,
        kind: n.kind,
        name: n.name,
        namespace: n.namespace,
        ...(n.app === undefined ? {} : { app: n.app }),
        ...(n.version === undefined ? {} : { version: n.version }),
        requestsPerSecond: t === undefined ? 0 : round(t.requests / windowSeconds, 3),
        errorRatio: t === undefined || t.requests === 0 ? 0 : round(t.errors / t.requests, 4),
      });
    }
    nodes.sort((a, b) => a.id.localeCompare(b.id));
    edges.sort((a, b) => a.id.localeCompare(b.id));
    return { windowSeconds, timeMs: nowMs, nodes, edges };
  }

  /**
   * Golden signals per destination service (its inbound workload → service edges), and per
   * destination version (its service → workload edges, grouped by the workload's version).
   */
  summaries(windowMs: number, nowMs: number): ServiceSummaryData[] {
    const windowSeconds = windowMs / 1000;
    const byService = new Map<string, Slot[]>();
    const byVersion = new Map<string, Map<string, Slot[]>>();
    for (const e of this.edges.values()) {
      const slots = this.window(e, windowMs, nowMs);
      if (slots.length === 0) continue;
      if (e.target.startsWith('service:')) byService.set(e.target, [...(byService.get(e.target) ?? []), ...slots]);
      else if (e.source.startsWith('service:')) {
        const version = this.nodes.get(e.target)?.version ?? '';
        if (version === '') continue;
        let versions = byVersion.get(e.source);
        if (versions === undefined) byVersion.set(e.source, (versions = new Map()));
        versions.set(version, [...(versions.get(version) ?? []), ...slots]);
      }
    }
    const out: ServiceSummaryData[] = [];
    for (const [id, slots] of byService) {
      const node = this.nodes.get(id) as NodeMeta;
      const { errors: _errors, ...stats } = statsOf(slots, windowSeconds);
      if (stats.requests === 0) continue;
      const versions: VersionSummaryData[] = [];
      for (const [version, vslots] of byVersion.get(id) ?? []) {
        const { errors: _e, ...vstats } = statsOf(vslots, windowSeconds);
        if (vstats.requests > 0) versions.push({ version, ...vstats });
      }
      versions.sort((a, b) => a.version.localeCompare(b.version));
      out.push({ service: id.slice('service:'.length), namespace: node.namespace, windowSeconds, ...stats, versions });
    }
    return out.sort((a, b) => a.service.localeCompare(b.service));
  }

  /**
   * Per destination service, golden signals in consecutive `stepMs` buckets over the `windowMs`
   * ending at `nowMs`, oldest first (for charts). Rates are per second within each step.
   */
  timeseries(windowMs: number, stepMs: number, nowMs: number): ServiceTimeseries[] {
    const slotMs = this.opts.slotMs;
    const slotsPerStep = Math.max(1, Math.round(stepMs / slotMs));
    const nowEpoch = Math.floor(nowMs / slotMs);
    const steps = Math.max(1, Math.min(Math.ceil(this.slotCount / slotsPerStep), Math.ceil(windowMs / (slotsPerStep * slotMs))));
    const firstEpoch = nowEpoch - steps * slotsPerStep + 1;
    const byService = new Map<string, Slot[][]>();
    for (const e of this.edges.values()) {
      if (!e.target.startsWith('service:')) continue;
      let buckets = byService.get(e.target);
      for (const s of e.slots) {
        if (s === undefined || s.epoch < firstEpoch || s.epoch > nowEpoch) continue;
        if (buckets === undefined) {
          buckets = Array.from({ length: steps }, () => []);
          byService.set(e.target, buckets);
        }
        (buckets[Math.floor((s.epoch - firstEpoch) / slotsPerStep)] as Slot[]).push(s);
      }
    }
    const stepSeconds = (slotsPerStep * slotMs) / 1000;
    const out: ServiceTimeseries[] = [];
    for (const [id, buckets] of byService) {
      out.push({
        service: id.slice('service:'.length),
        stepSeconds,
        points: buckets.map((slots, i) => {
          const { errors: _errors, requests: _requests, p50Ms: _p50, p90Ms: _p90, mtlsShare: _m, ...stats } = statsOf(slots, stepSeconds);
          return { timeMs: (firstEpoch + (i + 1) * slotsPerStep) * slotMs, ...stats };
        }),
      });
    }
    return out.sort((a, b) => a.service.localeCompare(b.service));
  }

  /** Forgets every node and edge (a read-back that failed half way is started over). */
  clear(): void {
    this.edges.clear();
    this.nodes.clear();
    this.latestEpoch = 0;
  }

  /** Forgets edges without traffic for the whole retention (call now and then). */
  prune(nowMs: number): void {
    const oldest = Math.floor(nowMs / this.opts.slotMs) - this.slotCount;
    for (const [id, e] of this.edges) if (e.lastEpoch <= oldest) this.edges.delete(id);
    const used = new Set([...this.edges.values()].flatMap((e) => [e.source, e.target]));
    for (const id of this.nodes.keys()) if (!used.has(id)) this.nodes.delete(id);
  }
}

function statsOf(slots: readonly Slot[], windowSeconds: number): EdgeStats & { errors: number } {
  let requests = 0;
  let errors = 0;
  let mtls = 0;
  const latency = new LatencySketch();
  for (const s of slots) {
    requests += s.requests;
    errors += s.errors;
    mtls += s.mtls;
    latency.merge(s.latency);
  }
  return {
    requests,
    errors,
    requestsPerSecond: round(requests / windowSeconds, 3),
    errorRatio: requests === 0 ? 0 : round(errors / requests, 4),
    p50Ms: round(latency.quantile(0.5), 3),
    p90Ms: round(latency.quantile(0.9), 3),
    p99Ms: round(latency.quantile(0.99), 3),
    mtlsShare: requests === 0 ? 0 : round(mtls / requests, 4),
  };
}

const WINDOW = /^([1-9][0-9]{0,6})(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses a window such as `60s`, `5m` or `1h` into ms; throws WINDOW_INVALID past `maxMs`. */
export function parseWindow(text: string, maxMs: number): number {
  const m = WINDOW.exec(text);
  if (m === null) throw new AviaryError('INVALID_ARGUMENT', 'WINDOW_INVALID', `window ${JSON.stringify(text)} must be a duration such as 30s, 5m or 1h`);
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms < 1000 || ms > maxMs) {
    throw new AviaryError('INVALID_ARGUMENT', 'WINDOW_INVALID', `window ${text} must be between 1s and ${maxMs / 1000}s (the graph's retention)`);
  }
  return ms;
}
