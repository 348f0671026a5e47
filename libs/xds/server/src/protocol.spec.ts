/**
 * Protocol details driven by hand over real gRPC streams (SotW and delta). Debouncing is off,
 * so a published snapshot is pushed before `setSnapshot` returns; "no push" is asserted by a
 * later push arriving first.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { ExtensionTypeUrl, typeUrlOf } from '@aviary/xds-api';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl, type CanonicalMessage } from '@aviary/xds-protos';
import { XdsServer, type XdsStatusEvent } from './index';
import { RawAdsStream, SnapshotCache } from '@aviary/testing';
import { LISTENER, clusterName, echoMesh } from './testing/echo-mesh';
import { testKinds, testPeer, type TestPeer } from './testing/peer';

const GROUP = 'g';
const V1 = clusterName('v1');
const V2 = clusterName('v2');
const V3 = clusterName('v3');

function mesh(ports: { v1?: number; v2?: number; v3?: number }, weights: Record<string, number> = { v1: 80, v2: 20 }): Snapshot {
  const backends = Object.fromEntries(Object.entries(ports).map(([k, p]) => [k, ['10.0.0.1', p] as const]));
  return Snapshot.build(echoMesh({ backends, weights }));
}

/** Waits for the server to have processed what the test sent (requests travel asynchronously). */
async function until(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!predicate()) throw new Error(`never happened: ${what}`);
}

const names = (r: CanonicalMessage): string[] =>
  ((r.resources as CanonicalMessage[] | undefined) ?? []).map((x) => (x.name ?? x.cluster_name ?? (x.resource as CanonicalMessage | undefined)?.name) as string);

describe('ADS protocol', () => {
  let cache: SnapshotCache<TestPeer>;
  let server: XdsServer<TestPeer>;
  let registry: Registry;
  let port: number;
  const events: XdsStatusEvent<TestPeer>[] = [];
  const streams: RawAdsStream[] = [];

  function open(delta = false): RawAdsStream {
    const s = new RawAdsStream(port, delta);
    streams.push(s);
    return s;
  }

  async function pushes(type: string): Promise<number> {
    const m = await registry.getSingleMetric('aviary_xds_pushes_total')!.get();
    return m.values.find((v) => v.labels.type === type)?.value ?? 0;
  }

  beforeAll(async () => {
    cache = new SnapshotCache<TestPeer>({ groupOf: () => GROUP });
    registry = new Registry();
    server = new XdsServer({ source: cache, nodeParser: testPeer, kinds: testKinds, metrics: registry, debounce: { quietMs: 0, maxDelayMs: 0 } });
    server.onStatus((e) => events.push(e));
    port = await server.listen('127.0.0.1:0');
  });

  beforeEach(() => {
    cache.setSnapshot(GROUP, mesh({ v1: 1001, v2: 1002 }));
    events.length = 0;
  });

  afterEach(() => {
    for (const s of streams.splice(0)) s.close();
  });

  afterAll(async () => {
    await server.stop(100);
  });

  describe('state of the world', () => {
    async function subscribe(s: RawAdsStream, typeUrl: string, resourceNames: string[], first = false): Promise<CanonicalMessage> {
      s.send({ ...(first && { node: RawAdsStream.node('a') }), type_url: typeUrl, resource_names: resourceNames });
      const r = await s.next();
      s.send({ type_url: typeUrl, resource_names: resourceNames, version_info: r.version_info, response_nonce: r.nonce });
      return r;
    }

    it('answers wildcard LDS/CDS with everything, named RDS/EDS with only what was asked, and pushes CDS, EDS, LDS, then RDS once the cluster it newly names is warm', async () => {
      const s = open();
      const cds = await subscribe(s, TypeUrl.Cluster, [], true);
      expect(cds.type_url).toBe(TypeUrl.Cluster);
      expect(cds.version_info).toBe(cache.getSnapshot(GROUP)!.version(TypeUrl.Cluster));
      expect(names(cds)).toEqual([V1, V2]);
      expect((cds.resources as CanonicalMessage[])[0]).toMatchObject({ '@type': TypeUrl.Cluster, type: 'EDS' });
      expect(names(await subscribe(s, TypeUrl.ClusterLoadAssignment, [V1]))).toEqual([V1]);
      expect(names(await subscribe(s, TypeUrl.Listener, []))).toEqual([LISTENER]);
      expect(names(await subscribe(s, TypeUrl.RouteConfiguration, [LISTENER]))).toEqual([LISTENER]);

      const snapshot = Snapshot.build({
        ...echoMesh({ backends: { v1: ['10.0.0.9', 1], v2: ['10.0.0.1', 1002], v3: ['10.0.0.3', 3] }, weights: { v1: 50, v3: 50 } }),
        [TypeUrl.Listener]: [{ name: LISTENER, api_listener: { api_listener: { '@type': ExtensionTypeUrl.HttpConnectionManager, stat_prefix: 'changed', rds: { route_config_name: LISTENER, config_source: { ads: {} } }, http_filters: [{ name: 'router', typed_config: { '@type': ExtensionTypeUrl.Router } }] } } }],
      });
      cache.setSnapshot(GROUP, snapshot);
      const order = [await s.next(), await s.next(), await s.next()];
      expect(order.map((r) => r.type_url)).toEqual([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener]);
      expect(names(order[0]!)).toEqual([V1, V2, V3]);
      expect(names(order[1]!)).toEqual([V1]);
      // The route now names V3, new to the proxy: it waits for V3's CDS ACK and its EDS (warming.spec.ts).
      for (const r of order) s.send({ type_url: r.type_url, resource_names: r.type_url === TypeUrl.ClusterLoadAssignment ? [V1, V3] : [], version_info: r.version_info, response_nonce: r.nonce });
      const eds = await s.next();
      expect([eds.type_url, names(eds)]).toEqual([TypeUrl.ClusterLoadAssignment, [V3]]);
      s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [V1, V3], version_info: eds.version_info, response_nonce: eds.nonce });
      expect((await s.next()).type_url).toBe(TypeUrl.RouteConfiguration);
    });

    it('re-sends the assignments of changed clusters right after a CDS push (Envoy keeps a re-created cluster warming until it gets EDS)', async () => {
      const s = open();
      await subscribe(s, TypeUrl.Cluster, [], true);
      await subscribe(s, TypeUrl.ClusterLoadAssignment, [V1, V2]);
      const base = echoMesh({ backends: { v1: ['10.0.0.1', 1001], v2: ['10.0.0.1', 1002] }, weights: { v1: 80, v2: 20 } });
      const clusters = (base[TypeUrl.Cluster] ?? []).map((c) => ((c as { name: string }).name === V1 ? { ...(c as object), outlier_detection: { consecutive_5xx: { value: 3 } } } : c));
      expect(cache.setSnapshot(GROUP, Snapshot.build({ ...base, [TypeUrl.Cluster]: clusters }))).toEqual([TypeUrl.Cluster]);
      const cds = await s.next();
      expect([cds.type_url, names(cds)]).toEqual([TypeUrl.Cluster, [V1, V2]]);
      const eds = await s.next();
      expect([eds.type_url, names(eds)]).toEqual([TypeUrl.ClusterLoadAssignment, [V1]]);
    });

    it('an endpoint-only change pushes only EDS, only to the proxies watching the changed assignment', async () => {
      const a = open();
      const b = open();
      a.send({ node: RawAdsStream.node('a'), type_url: TypeUrl.ClusterLoadAssignment, resource_names: [V1] });
      b.send({ node: RawAdsStream.node('b'), type_url: TypeUrl.ClusterLoadAssignment, resource_names: [V2] });
      for (const s of [a, b]) {
        const r = await s.next();
        s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: names(r), version_info: r.version_info, response_nonce: r.nonce });
      }
      const before = { eds: await pushes('eds'), cds: await pushes('cds'), lds: await pushes('lds'), rds: await pushes('rds') };
      expect(cache.setSnapshot(GROUP, mesh({ v1: 2001, v2: 1002 }))).toEqual([TypeUrl.ClusterLoadAssignment]);
      const pushedToA = await a.next();
      expect(names(pushedToA)).toEqual([V1]);
      expect(pushedToA.resources).toMatchObject([{ endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { port_value: 2001 } } } }] }] }]);
      cache.setSnapshot(GROUP, mesh({ v1: 2001, v2: 2002 }));
      expect(names(await b.next())).toEqual([V2]);
      expect(a.pending).toBe(0);
      expect({ eds: await pushes('eds'), cds: await pushes('cds'), lds: await pushes('lds'), rds: await pushes('rds') }).toEqual({ ...before, eds: before.eds + 2 });
    });

    it('records a NACK, keeps the last ACKed version, and ignores requests with a stale nonce', async () => {
      const s = open();
      s.send({ node: RawAdsStream.node('n'), type_url: TypeUrl.Cluster });
      const r1 = await s.next();
      s.send({ type_url: TypeUrl.Cluster, version_info: r1.version_info, response_nonce: r1.nonce });
      await until('the ACK', () => events.some((e) => e.event === 'ack'));
      cache.setSnapshot(GROUP, mesh({ v1: 1001, v2: 1002, v3: 1003 }));
      const r2 = await s.next();
      s.send({ type_url: TypeUrl.Cluster, version_info: r1.version_info, response_nonce: r2.nonce, error_detail: { code: 3, message: 'cluster v3: bad lb_policy' } });
      // stale: the nonce of r1 again, with another subscription; must change nothing
      s.send({ type_url: TypeUrl.Cluster, resource_names: ['nope'], version_info: r1.version_info, response_nonce: r1.nonce });
      await until('the NACK', () => events.some((e) => e.event === 'nack'));
      // the stale request was sent before the NACK was seen; let one more round trip pass
      await new Promise((r) => setTimeout(r, 20));
      cache.setSnapshot(GROUP, mesh({ v1: 1001, v2: 1002 }));
      const r3 = await s.next();
      expect(names(r3)).toEqual([V1, V2]);

      const nack = events.find((e) => e.event === 'nack')!;
      expect(nack).toMatchObject({ typeUrl: TypeUrl.Cluster, version: r2.version_info, nonce: r2.nonce, error: 'cluster v3: bad lb_policy' });
      const cds = server.proxies().find((p) => p.proxy.id === 'n')!.types[0]!;
      expect(cds).toMatchObject({ subscribed: ['*'], ackedVersion: r1.version_info, sentVersion: r3.version_info, lastNack: { version: r2.version_info, error: 'cluster v3: bad lb_policy' } });
      s.send({ type_url: TypeUrl.Cluster, version_info: r3.version_info, response_nonce: r3.nonce });
      s.send({ type_url: TypeUrl.Cluster, version_info: r3.version_info, response_nonce: r3.nonce });
      await until('the ACK of r3', () => server.proxies().find((p) => p.proxy.id === 'n')!.types[0]!.ackedVersion === r3.version_info);
    });

    it('ends a stream whose first request has no valid node with INVALID_ARGUMENT and ignores unknown type URLs', async () => {
      const bad = open();
      bad.send({ type_url: TypeUrl.Cluster });
      expect((await bad.closedWith()).code).toBe(grpc.status.INVALID_ARGUMENT);
      const s = open();
      s.send({ node: RawAdsStream.node('client-x', { KIND: 'proxyless' }), type_url: typeUrlOf('envoy.api.v2.Cluster') });
      s.send({ type_url: TypeUrl.Listener });
      expect((await s.next()).type_url).toBe(TypeUrl.Listener);
      expect(server.proxies().find((p) => p.proxy.id === 'client-x')?.proxy.kind).toBe('proxyless');
    });
  });

  describe('delta', () => {
    const NODE = RawAdsStream.node('d');
    const ack = (s: RawAdsStream, r: CanonicalMessage) => s.send({ type_url: r.type_url, response_nonce: r.nonce });

    it('sends per-resource versions, only differences, and removals', async () => {
      const s = open(true);
      s.send({ node: NODE, type_url: TypeUrl.Cluster });
      const cds = await s.next();
      expect(cds.type_url).toBe(TypeUrl.Cluster);
      expect(cds.system_version_info).toBe(cache.getSnapshot(GROUP)!.version(TypeUrl.Cluster));
      expect((cds.resources as CanonicalMessage[]).map((r) => [r.name, r.version])).toEqual(
        [V1, V2].map((n) => [n, cache.getSnapshot(GROUP)!.get(TypeUrl.Cluster, n)!.version]),
      );
      expect((cds.resources as CanonicalMessage[])[0]!.resource).toMatchObject({ '@type': TypeUrl.Cluster, name: V1 });
      ack(s, cds);

      s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [V1, 'missing'] });
      const eds = await s.next();
      expect(names(eds)).toEqual([V1]);
      expect(eds.removed_resources).toEqual(['missing']);
      ack(s, eds);

      await until('the EDS ACK', () => events.filter((e) => e.event === 'ack').length === 2);
      cache.setSnapshot(GROUP, mesh({ v1: 3001, v2: 1002 }));
      const edsChange = await s.next();
      expect(edsChange.type_url).toBe(TypeUrl.ClusterLoadAssignment);
      expect(names(edsChange)).toEqual([V1]);
      ack(s, edsChange);
      await until('the second EDS ACK', () => events.filter((e) => e.event === 'ack').length === 3);

      cache.setSnapshot(GROUP, mesh({ v1: 3001 }, { v1: 100 }));
      const removal = await s.next();
      expect(removal).toMatchObject({ type_url: TypeUrl.Cluster, removed_resources: [V2] });
      expect(removal.resources).toBeUndefined();
      s.send({ type_url: TypeUrl.Cluster, response_nonce: removal.nonce, error_detail: { code: 13, message: 'rejected removal' } });
      await until('the NACK', () => events.some((e) => e.event === 'nack'));

      // unsubscribed: a change to v1's endpoints is not pushed; re-subscribing gets the newest
      s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_unsubscribe: [V1] });
      const edsSubscription = () => server.proxies().find((p) => p.proxy.id === 'd')!.types.find((t) => t.typeUrl === TypeUrl.ClusterLoadAssignment)!.subscribed;
      await until('the unsubscribe', () => !edsSubscription().includes(V1));
      cache.setSnapshot(GROUP, mesh({ v1: 3002 }, { v1: 100 }));
      s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [V1] });
      const again = await s.next();
      expect(again.resources).toMatchObject([{ name: V1, resource: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { port_value: 3002 } } } }] }] } }]);

      const status = server.proxies().find((p) => p.proxy.id === 'd')!;
      expect(status.protocol).toBe('delta');
      const cdsStatus = status.types.find((t) => t.typeUrl === TypeUrl.Cluster)!;
      expect(cdsStatus.lastNack?.error).toBe('rejected removal');
      expect(cdsStatus.ackedVersion).toBe(cds.system_version_info);
      expect(status.types.find((t) => t.typeUrl === TypeUrl.ClusterLoadAssignment)!.subscribed).toEqual(['missing', V1]);
    });

    it('on reconnect, initial_resource_versions avoid resending what the proxy holds', async () => {
      const snapshot = cache.getSnapshot(GROUP)!;
      const current = snapshot.get(TypeUrl.Cluster, V1)!.version;
      const same = open(true);
      same.send({ node: NODE, type_url: TypeUrl.Cluster, initial_resource_versions: { [V1]: current, [V2]: snapshot.get(TypeUrl.Cluster, V2)!.version } });
      const r = await same.next();
      expect(r.resources).toBeUndefined();
      expect(r.removed_resources).toBeUndefined();

      const stale = open(true);
      stale.send({ node: NODE, type_url: TypeUrl.Cluster, initial_resource_versions: { [V1]: 'old', gone: 'x' } });
      const r2 = await stale.next();
      expect(names(r2)).toEqual([V1, V2]);
      // The proxy's routes may still name `gone`: it goes once the proxy ACKed this stream's first routes (make-before-break).
      expect(r2.removed_resources).toBeUndefined();
      ack(stale, r2);
      stale.send({ type_url: TypeUrl.Listener });
      const lds = await stale.next();
      expect(lds.type_url).toBe(TypeUrl.Listener);
      ack(stale, lds);
      const removal = await stale.next();
      expect(removal).toMatchObject({ type_url: TypeUrl.Cluster, removed_resources: ['gone'] });
    });
  });
});
