/**
 * Make-before-break over real gRPC streams, driven by hand as Envoy drives them (CDS by
 * wildcard, then EDS for the clusters it was sent): a route that names a cluster new to the
 * proxy waits until the proxy ACKed the CDS that added it and the EDS that carried its
 * assignment; a cluster the routes stop naming stays in CDS until the proxy ACKed those routes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { Snapshot, systemClock, type EncodedResource } from '@aviary/xds-cache';
import { TypeUrl, type CanonicalMessage, type ResourceTypeUrl } from '@aviary/xds-protos';
import { RawAdsStream, SnapshotCache } from '@aviary/testing';
import { RESUMED_CDS_WAIT_MS, XdsServer } from './index';
import { XdsMetrics } from './metrics';
import { ClusterWarming, type HeldState } from './warming';
import { LISTENER, clusterName, echoMesh } from './testing/echo-mesh';
import { testKinds, testPeer, type TestPeer } from './testing/peer';

const V1 = clusterName('v1');
const V2 = clusterName('v2');
const V3 = clusterName('v3');
/** The bound of the server most tests use: far above their round trips. */
const LONG_BOUND_MS = 10_000;
const SHORT_BOUND_MS = 300;

function mesh(weights: Record<string, number>, subsets = Object.keys(weights)): Snapshot {
  const backends = Object.fromEntries(subsets.map((k, i) => [k, ['10.0.0.1', 1001 + i] as const]));
  return Snapshot.build(echoMesh({ backends, weights }));
}

const names = (r: CanonicalMessage): string[] =>
  ((r.resources as CanonicalMessage[] | undefined) ?? []).map((x) => (x.name ?? x.cluster_name ?? (x.resource as CanonicalMessage | undefined)?.name) as string).sort();

/** A route's weighted clusters, whichever protocol carried it. */
function routedTo(r: CanonicalMessage): string[] {
  const resource = (r.resources as CanonicalMessage[])[0]!;
  const route = (resource.resource ?? resource) as { virtual_hosts: { routes: { route: { weighted_clusters: { clusters: { name: string }[] } } }[] }[] };
  return route.virtual_hosts[0]!.routes[0]!.route.weighted_clusters.clusters.map((c) => c.name).sort();
}

/** What Envoy sends, for either protocol: subscriptions by name, ACKs and NACKs of the latest response. */
class Proxy {
  private readonly subscribed = new Map<string, string[]>();
  constructor(
    readonly stream: RawAdsStream,
    private readonly id: string,
  ) {}

  private first = true;
  /** The latest response of each type: a SotW request carries its version and nonce. */
  private readonly last = new Map<string, CanonicalMessage>();
  /** Delta: the version of each resource the proxy holds, by type. */
  private readonly held = new Map<string, Map<string, string>>();
  /** The proxy on the stream before this one: what it holds is what this stream's first requests name. */
  private resumedFrom: Proxy | undefined;

  /** The same proxy on a new stream, holding what it was sent on this one (Envoy reconnecting). */
  resumeOn(stream: RawAdsStream): Proxy {
    const p = new Proxy(stream, this.id);
    p.resumedFrom = this;
    return p;
  }

  subscribe(typeUrl: string, resourceNames: string[]): void {
    const node = this.first ? { node: RawAdsStream.node(this.id) } : {};
    this.first = false;
    const before = this.subscribed.get(typeUrl);
    this.subscribed.set(typeUrl, resourceNames);
    const last = this.last.get(typeUrl);
    // A type's first request on a resumed stream names what the proxy holds: SotW its version, delta each resource's.
    const prior = before === undefined ? this.resumedFrom : undefined;
    if (this.stream.delta) {
      const initial = prior?.held.get(typeUrl);
      this.stream.send({ ...node, type_url: typeUrl, resource_names_subscribe: resourceNames.filter((n) => !(before ?? []).includes(n)), ...(initial && { initial_resource_versions: Object.fromEntries(initial) }) });
    } else {
      const version = last?.version_info ?? prior?.last.get(typeUrl)?.version_info;
      this.stream.send({ ...node, type_url: typeUrl, resource_names: resourceNames, ...(version !== undefined && { version_info: version }), ...(last && { response_nonce: last.nonce }) });
    }
  }

  ack(r: CanonicalMessage): void {
    if (this.stream.delta) this.stream.send({ type_url: r.type_url, response_nonce: r.nonce });
    else this.stream.send({ type_url: r.type_url, resource_names: this.subscribed.get(r.type_url as string) ?? [], version_info: r.version_info, response_nonce: r.nonce });
  }

  nack(r: CanonicalMessage, message: string): void {
    const error_detail = { code: 3, message };
    if (this.stream.delta) this.stream.send({ type_url: r.type_url, response_nonce: r.nonce, error_detail });
    else this.stream.send({ type_url: r.type_url, resource_names: this.subscribed.get(r.type_url as string) ?? [], response_nonce: r.nonce, error_detail });
  }

  async next(typeUrl: string, timeoutMs?: number): Promise<CanonicalMessage> {
    const r = await this.stream.next(timeoutMs);
    expect(r.type_url).toBe(typeUrl);
    this.received(r);
    return r;
  }

  /** Every response that arrives within `ms` of the last one, by type (the latest of each). */
  async drain(ms = 150): Promise<Map<string, CanonicalMessage>> {
    const got = new Map<string, CanonicalMessage>();
    for (;;) {
      await new Promise((r) => setTimeout(r, ms));
      if (this.stream.pending === 0) return got;
      while (this.stream.pending > 0) {
        const r = await this.stream.next();
        this.received(r);
        got.set(r.type_url as string, r);
      }
    }
  }

  private received(r: CanonicalMessage): void {
    const typeUrl = r.type_url as string;
    this.last.set(typeUrl, r);
    if (!this.stream.delta) return;
    const held = this.held.get(typeUrl) ?? new Map<string, string>();
    this.held.set(typeUrl, held);
    for (const x of (r.resources as { name: string; version: string }[] | undefined) ?? []) held.set(x.name, x.version);
    for (const name of (r.removed_resources as string[] | undefined) ?? []) held.delete(name);
  }

  /** Envoy's initial fetch with every response ACKed: CDS, EDS for its clusters, LDS, RDS. */
  async start(): Promise<void> {
    this.subscribe(TypeUrl.Cluster, []);
    const cds = await this.next(TypeUrl.Cluster);
    this.ack(cds);
    this.subscribe(TypeUrl.ClusterLoadAssignment, names(cds));
    this.ack(await this.next(TypeUrl.ClusterLoadAssignment));
    this.subscribe(TypeUrl.Listener, []);
    this.ack(await this.next(TypeUrl.Listener));
    this.subscribe(TypeUrl.RouteConfiguration, [LISTENER]);
    this.ack(await this.next(TypeUrl.RouteConfiguration));
  }

  /** After a CDS response: ACK it and subscribe to the assignments of its clusters, as Envoy does. */
  warm(cds: CanonicalMessage, eds: string[]): void {
    this.ack(cds);
    this.subscribe(TypeUrl.ClusterLoadAssignment, eds);
  }
}

/** Nothing more arrives within `ms` (the server answered everything it was sent before). */
async function quiet(p: Proxy, ms = 150): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  expect(p.stream.pending).toBe(0);
}

describe.each([
  ['state of the world', false],
  ['delta', true],
])('make-before-break (%s)', (_name, delta) => {
  let cache: SnapshotCache<TestPeer>;
  let server: XdsServer<TestPeer>;
  let short: XdsServer<TestPeer>;
  /** Over a source that rebuilds clusters by name (as pilot's does): V1–V3 always exist in its model. */
  let rebuilding: XdsServer<TestPeer>;
  let registry: Registry;
  let shortRegistry: Registry;
  let rebuildingRegistry: Registry;
  let port: number;
  let shortPort: number;
  let rebuildingPort: number;
  const streams: RawAdsStream[] = [];
  let nextId = 0;

  beforeAll(async () => {
    cache = new SnapshotCache<TestPeer>();
    registry = new Registry();
    shortRegistry = new Registry();
    const common = { source: cache, nodeParser: testPeer, kinds: testKinds, debounce: { quietMs: 0, maxDelayMs: 0 } };
    server = new XdsServer({ ...common, metrics: registry, warmingTimeoutMs: LONG_BOUND_MS });
    short = new XdsServer({ ...common, metrics: shortRegistry, warmingTimeoutMs: SHORT_BOUND_MS });
    rebuildingRegistry = new Registry();
    const model = mesh({ v1: 100 }, ['v1', 'v2', 'v3']).resources(TypeUrl.Cluster);
    const source = {
      resourcesFor: (peer: TestPeer) => cache.resourcesFor(peer),
      onChange: (listener: Parameters<typeof cache.onChange>[0]) => cache.onChange(listener),
      clustersFor: (_peer: TestPeer, wanted: readonly string[]) => wanted.flatMap((n) => model.get(n) ?? []),
    };
    rebuilding = new XdsServer({ ...common, source, metrics: rebuildingRegistry, warmingTimeoutMs: LONG_BOUND_MS });
    port = await server.listen('127.0.0.1:0');
    shortPort = await short.listen('127.0.0.1:0');
    rebuildingPort = await rebuilding.listen('127.0.0.1:0');
  });

  afterEach(() => {
    for (const s of streams.splice(0)) s.close();
  });

  afterAll(async () => {
    await Promise.all([server.stop(100), short.stop(100), rebuilding.stop(100)]);
  });

  /** A proxy of its own group (its own snapshots), started on `mesh`. */
  async function proxy(initial: Snapshot, onPort = port): Promise<{ p: Proxy; group: string }> {
    const group = `proxy-${delta ? 'd' : 's'}-${nextId++}`;
    cache.setSnapshot(group, initial);
    const stream = new RawAdsStream(onPort, delta);
    streams.push(stream);
    const p = new Proxy(stream, group);
    await p.start();
    return { p, group };
  }

  async function holds(reg: Registry, type: string, outcome: string): Promise<number> {
    const m = await reg.getSingleMetric('aviary_xds_warming_holds_total')!.get();
    return m.values.find((v) => v.labels.type === type && v.labels.outcome === outcome)?.value ?? 0;
  }

  it('does not send a route naming a new cluster before the proxy ACKed its CDS and its EDS, and sends it right after', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    const before = await holds(registry, 'rds', 'ready');
    cache.setSnapshot(group, mesh({ v1: 50, v3: 50 }, ['v1', 'v2', 'v3']));
    const cds = await p.next(TypeUrl.Cluster);
    expect(names(cds)).toContain(V3);
    await quiet(p);
    // CDS ACKed, V3's assignment asked for: still held until its EDS is ACKed.
    p.warm(cds, [V1, V2, V3]);
    const eds = await p.next(TypeUrl.ClusterLoadAssignment);
    expect(names(eds)).toEqual([V3]);
    await quiet(p);
    p.ack(eds);
    const rds = await p.next(TypeUrl.RouteConfiguration);
    expect(routedTo(rds)).toEqual([V1, V3]);
    expect(await holds(registry, 'rds', 'ready')).toBe(before + 1);
  });

  it('sends a route that names only clusters the proxy has at once, with the CDS, EDS, LDS order kept', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    cache.setSnapshot(group, mesh({ v1: 10, v2: 90 }));
    expect(routedTo(await p.next(TypeUrl.RouteConfiguration))).toEqual([V1, V2]);
  });

  it('does not hold a stream\'s first routes: Envoy asks for listeners only once its clusters are warm', async () => {
    const group = `first-${delta ? 'd' : 's'}`;
    cache.setSnapshot(group, mesh({ v1: 80, v2: 20 }));
    const stream = new RawAdsStream(port, delta);
    streams.push(stream);
    const p = new Proxy(stream, group);
    // Nothing ACKed: every type is answered at once.
    p.subscribe(TypeUrl.Cluster, []);
    await p.next(TypeUrl.Cluster);
    p.subscribe(TypeUrl.ClusterLoadAssignment, [V1, V2]);
    await p.next(TypeUrl.ClusterLoadAssignment);
    p.subscribe(TypeUrl.Listener, []);
    await p.next(TypeUrl.Listener);
    p.subscribe(TypeUrl.RouteConfiguration, [LISTENER]);
    expect(routedTo(await p.next(TypeUrl.RouteConfiguration))).toEqual([V1, V2]);
  });

  it("holds a resumed stream's first routes until the clusters new to the proxy are warm (Envoy reconnecting)", async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    const before = await holds(registry, 'rds', 'ready');
    // While the proxy was away (a control plane restart), a route to a new cluster came.
    const { q, first } = await reconnect(p, group, mesh({ v1: 50, v3: 50 }, ['v1', 'v2', 'v3']));
    expect(names(first.get(TypeUrl.Cluster)!)).toContain(V3);
    expect(first.has(TypeUrl.RouteConfiguration)).toBe(false);
    for (const [typeUrl, r] of first) if (typeUrl !== TypeUrl.Cluster) q.ack(r);
    // CDS ACKed and V3's assignment asked for: still held until that EDS is ACKed.
    q.warm(first.get(TypeUrl.Cluster)!, [V1, V2, V3]);
    const eds = await q.next(TypeUrl.ClusterLoadAssignment);
    expect(names(eds)).toEqual([V3]);
    await quiet(q);
    q.ack(eds);
    expect(routedTo(await q.next(TypeUrl.RouteConfiguration))).toEqual([V1, V3]);
    expect(await holds(registry, 'rds', 'ready')).toBe(before + 1);
  });

  /** `p`'s proxy on a new stream after the mesh moved to `next`, every type asked for at once with what it holds; the responses that came first. */
  async function reconnect(p: Proxy, group: string, next: Snapshot, onPort = port, eds = [V1, V2]): Promise<{ q: Proxy; first: Map<string, CanonicalMessage> }> {
    p.stream.close();
    cache.setSnapshot(group, next);
    const stream = new RawAdsStream(onPort, delta);
    streams.push(stream);
    const q = p.resumeOn(stream);
    q.subscribe(TypeUrl.Cluster, []);
    q.subscribe(TypeUrl.ClusterLoadAssignment, eds);
    q.subscribe(TypeUrl.Listener, []);
    q.subscribe(TypeUrl.RouteConfiguration, [LISTENER]);
    return { q, first: await q.drain() };
  }

  it('sends a resumed stream\'s held first routes at once when the proxy NACKs the CDS', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    const before = await holds(registry, 'rds', 'nack');
    const { q, first } = await reconnect(p, group, mesh({ v1: 50, v3: 50 }, ['v1', 'v2', 'v3']));
    expect(first.has(TypeUrl.RouteConfiguration)).toBe(false);
    q.nack(first.get(TypeUrl.Cluster)!, 'cluster v3: rejected');
    expect(routedTo(await q.next(TypeUrl.RouteConfiguration))).toEqual([V1, V3]);
    expect(await holds(registry, 'rds', 'nack')).toBe(before + 1);
  });

  /**
   * After a resumed stream's `first` responses: the proxy ACKs them and warms the CDS response's
   * new V3 (the held routes to V1 and V3 then come), and ACKs those routes.
   */
  async function warmV3ThenAckRoutes(q: Proxy, first: Map<string, CanonicalMessage>): Promise<void> {
    for (const [typeUrl, r] of first) if (typeUrl !== TypeUrl.Cluster) q.ack(r);
    q.warm(first.get(TypeUrl.Cluster)!, [V1, V2, V3]);
    const eds = await q.next(TypeUrl.ClusterLoadAssignment);
    expect(names(eds)).toEqual([V3]);
    q.ack(eds);
    const rds = await q.next(TypeUrl.RouteConfiguration);
    expect(routedTo(rds)).toEqual([V1, V3]);
    await quiet(q);
    q.ack(rds);
  }

  it('moves a resumed stream off a cluster that went while it was away: delta keeps it until the new routes are ACKed; SotW without a source that rebuilds clusters does not hold the routes', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    const before = await holds(registry, 'cds', 'ready');
    // V2 is gone: the proxy's routes may still send traffic there until the new routes arrive.
    const { q, first } = await reconnect(p, group, mesh({ v1: 50, v3: 50 }, ['v1', 'v3']));
    const cds = first.get(TypeUrl.Cluster)!;
    expect(names(cds)).toContain(V3);
    if (!delta) {
      // This source cannot rebuild V2 for a SotW CDS response (the whole set): the routes come at once.
      expect(names(cds)).not.toContain(V2);
      expect(routedTo(first.get(TypeUrl.RouteConfiguration)!)).toEqual([V1, V3]);
      return;
    }
    // Delta: V2 and its assignment are not removed yet, and the routes wait for V3 to warm.
    expect(cds.removed_resources ?? []).toEqual([]);
    expect(first.get(TypeUrl.ClusterLoadAssignment)?.removed_resources ?? []).toEqual([]);
    expect(first.has(TypeUrl.RouteConfiguration)).toBe(false);
    await warmV3ThenAckRoutes(q, first);
    // Once the proxy ACKed the routes that stop naming V2, V2 goes, then its assignment.
    const removal = await q.next(TypeUrl.Cluster);
    expect([names(removal), removal.removed_resources]).toEqual([[], [V2]]);
    const edsRemoval = await q.next(TypeUrl.ClusterLoadAssignment);
    expect(edsRemoval.removed_resources).toEqual([V2]);
    expect(await holds(registry, 'cds', 'ready')).toBe(before + 1);
  });

  it.runIf(!delta)('SotW: keeps a cluster that went while the proxy was away, rebuilt by name, until the new routes are ACKed', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }), rebuildingPort);
    const before = await holds(rebuildingRegistry, 'cds', 'ready');
    // V2 is gone from the proxy's config but not from the model: pilot rebuilds it for the proxy.
    const { q, first } = await reconnect(p, group, mesh({ v1: 50, v3: 50 }, ['v1', 'v3']), rebuildingPort);
    const cds = first.get(TypeUrl.Cluster)!;
    // The first CDS response waited for the EDS request naming V2, and carries V2 with V3.
    expect(names(cds)).toEqual([V1, V2, V3]);
    expect(first.has(TypeUrl.RouteConfiguration)).toBe(false);
    await warmV3ThenAckRoutes(q, first);
    // Once the proxy ACKed the routes that stop naming V2, V2 goes.
    expect(names(await q.next(TypeUrl.Cluster))).toEqual([V1, V3]);
    expect(await holds(rebuildingRegistry, 'cds', 'ready')).toBe(before + 1);
  });

  it.runIf(!delta)("SotW: does not hold the first routes when a cluster the proxy held cannot be rebuilt (its service is gone)", async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }), rebuildingPort);
    // The proxy also holds a cluster the model no longer has (it asks for its assignment).
    const { first } = await reconnect(p, group, mesh({ v1: 50, v3: 50 }, ['v1', 'v3']), rebuildingPort, [V1, V2, 'outbound|80||gone.test']);
    expect(names(first.get(TypeUrl.Cluster)!)).toEqual([V1, V3]);
    expect(routedTo(first.get(TypeUrl.RouteConfiguration)!)).toEqual([V1, V3]);
  });

  it.runIf(!delta)('SotW: sends a resumed stream\'s first CDS response after a short wait when no EDS request comes', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }), rebuildingPort);
    p.stream.close();
    cache.setSnapshot(group, mesh({ v1: 50, v3: 50 }, ['v1', 'v3']));
    const stream = new RawAdsStream(rebuildingPort, delta);
    streams.push(stream);
    const q = p.resumeOn(stream);
    const asked = Date.now();
    q.subscribe(TypeUrl.Cluster, []);
    expect(names(await q.next(TypeUrl.Cluster, 3_000))).toEqual([V1, V3]);
    expect(Date.now() - asked).toBeGreaterThanOrEqual(RESUMED_CDS_WAIT_MS - 50);
  });

  it.runIf(delta)('removes what a resumed stream kept once the bound is over, counted', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }), shortPort);
    const before = await holds(shortRegistry, 'cds', 'timeout');
    const { q } = await reconnect(p, group, mesh({ v1: 100 }, ['v1']), shortPort);
    // Nothing is ACKed: V2 goes after the bound.
    const removal = await q.next(TypeUrl.Cluster, 3_000);
    expect(removal.removed_resources).toEqual([V2]);
    expect(await holds(shortRegistry, 'cds', 'timeout')).toBe(before + 1);
  });

  it('sends a resumed stream\'s first routes once CDS and EDS are ACKed when no cluster is new', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    const { q, first } = await reconnect(p, group, mesh({ v1: 10, v2: 90 }));
    expect(first.has(TypeUrl.RouteConfiguration)).toBe(false);
    for (const r of first.values()) q.ack(r);
    expect(routedTo(await q.next(TypeUrl.RouteConfiguration))).toEqual([V1, V2]);
  });

  it('sends the held route anyway once the bound is over, counted and logged', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }), shortPort);
    const before = await holds(shortRegistry, 'rds', 'timeout');
    cache.setSnapshot(group, mesh({ v1: 50, v3: 50 }, ['v1', 'v2', 'v3']));
    const sent = Date.now();
    await p.next(TypeUrl.Cluster);
    // The proxy never ACKs: the route goes after the bound.
    const rds = await p.next(TypeUrl.RouteConfiguration, 3_000);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(SHORT_BOUND_MS - 20);
    expect(routedTo(rds)).toEqual([V1, V3]);
    expect(await holds(shortRegistry, 'rds', 'timeout')).toBe(before + 1);
  });

  it('sends the held route at once when the proxy NACKs the CDS', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    const before = await holds(registry, 'rds', 'nack');
    cache.setSnapshot(group, mesh({ v1: 50, v3: 50 }, ['v1', 'v2', 'v3']));
    const cds = await p.next(TypeUrl.Cluster);
    await quiet(p);
    p.nack(cds, 'cluster v3: rejected');
    expect(routedTo(await p.next(TypeUrl.RouteConfiguration))).toEqual([V1, V3]);
    expect(await holds(registry, 'rds', 'nack')).toBe(before + 1);
  });

  it('keeps a cluster the routes stop naming in CDS until the proxy ACKed those routes (break-after-make)', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    const before = await holds(registry, 'cds', 'ready');
    cache.setSnapshot(group, mesh({ v1: 100 }));
    // No CDS push: V2 is kept while the proxy's routes name it.
    const rds = await p.next(TypeUrl.RouteConfiguration);
    expect(routedTo(rds)).toEqual([V1]);
    await quiet(p);
    p.ack(rds);
    const removal = await p.next(TypeUrl.Cluster);
    if (delta) expect([names(removal), removal.removed_resources]).toEqual([[], [V2]]);
    else expect(names(removal)).toEqual([V1]);
    expect(await holds(registry, 'cds', 'ready')).toBe(before + 1);
  });

  it('moves a route from one cluster to a new one without a moment where either is missing', async () => {
    const { p, group } = await proxy(mesh({ v1: 80, v2: 20 }));
    cache.setSnapshot(group, mesh({ v3: 100 }, ['v3']));
    const cds = await p.next(TypeUrl.Cluster);
    // V1 and V2 kept (the proxy's routes name them), V3 added.
    if (delta) {
      expect([names(cds), cds.removed_resources ?? []]).toEqual([[V3], []]);
    } else {
      expect(names(cds)).toEqual([V1, V2, V3]);
    }
    p.warm(cds, [V1, V2, V3]);
    const eds = await p.next(TypeUrl.ClusterLoadAssignment);
    expect(names(eds)).toEqual([V3]);
    p.ack(eds);
    const rds = await p.next(TypeUrl.RouteConfiguration);
    expect(routedTo(rds)).toEqual([V3]);
    p.ack(rds);
    const removal = await p.next(TypeUrl.Cluster);
    if (delta) expect(removal.removed_resources).toEqual([V1, V2]);
    else expect(names(removal)).toEqual([V3]);
  });
});

describe('ClusterWarming without a stream', () => {
  it("does not track the clusters of a stream's first CDS response, and holds routes for those of a later one", () => {
    const snapshot = mesh({ v1: 50, v2: 50 });
    const cluster = snapshot.get(TypeUrl.Cluster, V2)!;
    const route = [...snapshot.resources(TypeUrl.RouteConfiguration).values()];
    const state = (typeUrl: ResourceTypeUrl, sentVersion: string | undefined, sent: Map<string, EncodedResource>) => ({ typeUrl, wildcard: typeUrl === TypeUrl.Cluster, sentVersion, ackedVersion: undefined, sent });
    const holdsRoutesAfter = (cdsVersionBefore: string | undefined): boolean => {
      // The proxy holds both clusters; v2 came with the CDS response sent now.
      const cds = state(TypeUrl.Cluster, cdsVersionBefore, new Map(snapshot.resources(TypeUrl.Cluster)));
      const rds = state(TypeUrl.RouteConfiguration, 'r1', new Map());
      const warming = new ClusterWarming({
        types: new Map<ResourceTypeUrl, HeldState>([[TypeUrl.Cluster, cds], [TypeUrl.RouteConfiguration, rds]]),
        clock: systemClock,
        timeoutMs: LONG_BOUND_MS,
        metrics: new XdsMetrics(),
        log: { debug: () => undefined, info: () => undefined, warn: () => undefined },
        proxyId: 'p',
        repush: () => undefined,
      });
      warming.clustersSent(cds, [cluster], []);
      const { hold } = warming.gate(rds, snapshot, route, undefined);
      warming.dispose();
      return hold;
    };
    expect(holdsRoutesAfter(undefined)).toBe(false);
    expect(holdsRoutesAfter('c1')).toBe(true);
  });
});
