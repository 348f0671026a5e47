/**
 * The real consumer: @grpc/grpc-js-xds (SotW ADS) against XdsServer over loopback, routing to
 * two real echo servers. The bootstrap is read once per process, so this file owns it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { SnapshotCache } from '@aviary/testing';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl, decodeResource, encodeResource, assertRoundTrip, resourceTypeUrls } from '@aviary/xds-protos';
import { XdsServer, type XdsStatusEvent } from './index';
import { callEcho, countCalls, echoClient, freePort, startEchoBackend, type EchoBackend, type EchoClient } from './testing/echo';
import { LISTENER, echoMesh } from './testing/echo-mesh';
import { testKinds, testPeer, type TestPeer } from './testing/peer';

const GROUP = 'proxyless';
const NODE_ID = 'sidecar~127.0.0.1~client-1.default~default.svc.cluster.local';

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<number> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

describe('XdsServer with the @grpc/grpc-js-xds client', () => {
  let v1: EchoBackend;
  let v2: EchoBackend;
  let port: number;
  let cache: SnapshotCache<TestPeer>;
  let server: XdsServer<TestPeer>;
  let registry: Registry;
  let client: EchoClient;
  const events: XdsStatusEvent<TestPeer>[] = [];
  const backends = (): Record<string, [string, number]> => ({ v1: ['127.0.0.1', v1.port], v2: ['127.0.0.1', v2.port] });

  async function startServer(): Promise<void> {
    registry = new Registry();
    server = new XdsServer({ source: cache, nodeParser: testPeer, kinds: testKinds, metrics: registry, debounce: { quietMs: 20, maxDelayMs: 200 }, controlPlaneId: 'aviary-test' });
    server.onStatus((e) => events.push(e));
    await server.listen(`127.0.0.1:${port}`);
  }

  beforeAll(async () => {
    [v1, v2] = await Promise.all([startEchoBackend('v1'), startEchoBackend('v2')]);
    port = await freePort();
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
      xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: NODE_ID, cluster: 'demo', locality: { region: 'local', zone: 'z1' }, metadata: { KIND: 'proxyless', NAMESPACE: 'default', SERVICE_ACCOUNT: 'client' } },
    });
    const xds = await import('@grpc/grpc-js-xds');
    xds.register();
    cache = new SnapshotCache<TestPeer>({ groupOf: () => GROUP });
    cache.setSnapshot(GROUP, Snapshot.build(echoMesh({ backends: backends(), weights: { v1: 80, v2: 20 } })));
    await startServer();
    client = echoClient(`xds:///${LISTENER}`);
  });

  afterAll(async () => {
    client?.close();
    await server?.stop(200);
    await Promise.all([v1?.stop(), v2?.stop()]);
  });

  it('every resource of the snapshot round-trips through the Envoy protos', () => {
    const input = echoMesh({ backends: backends(), weights: { v1: 80, v2: 20 } });
    for (const typeUrl of resourceTypeUrls) {
      for (const resource of input[typeUrl] ?? []) {
        assertRoundTrip(typeUrl, resource);
        expect(decodeResource(typeUrl, encodeResource(typeUrl, resource))).toEqual(resource);
      }
    }
  });

  it('splits 1,000 calls 80/20 within ±5 % and reports the proxy with all four types ACKed', async () => {
    const counts = await countCalls(client, 1000);
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(1000);
    expect(counts.v1).toBeGreaterThanOrEqual(750);
    expect(counts.v1).toBeLessThanOrEqual(850);

    const [status] = server.proxies();
    expect(status?.proxy).toMatchObject({ id: NODE_ID, kind: 'proxyless', namespace: 'default', metadata: { SERVICE_ACCOUNT: 'client' } });
    expect(status?.types.map((t) => t.typeUrl)).toEqual([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]);
    for (const t of status!.types) expect(t.ackedVersion).toBe(t.sentVersion);
    expect(status?.types.find((t) => t.typeUrl === TypeUrl.Listener)?.subscribed).toEqual([LISTENER]);
    expect(events.filter((e) => e.event === 'connected')).toHaveLength(1);
    const dump = server.configDump(NODE_ID);
    expect(dump?.find((d) => d.typeUrl === TypeUrl.RouteConfiguration)?.resources[0]).toMatchObject({ name: LISTENER });
  });

  it('follows a weight change within 2 s, and only RDS is pushed for it', async () => {
    const before = events.length;
    const pushesBefore = (await registry.getSingleMetric('aviary_xds_pushes_total')!.get()).values.map((v) => ({ ...v }));
    const changed = cache.setSnapshot(GROUP, Snapshot.build(echoMesh({ backends: backends(), weights: { v1: 20, v2: 80 } })));
    expect(changed).toEqual([TypeUrl.RouteConfiguration]);
    const elapsed = await (async () => {
      const start = Date.now();
      for (;;) {
        const counts = await countCalls(client, 100, 20);
        if ((counts.v2 ?? 0) >= 60) return Date.now() - start;
        if (Date.now() - start > 2000) throw new Error(`still ${JSON.stringify(counts)} after 2 s`);
      }
    })();
    expect(elapsed).toBeLessThan(2000);
    const counts = await countCalls(client, 1000);
    expect(counts.v2).toBeGreaterThanOrEqual(750);
    expect(counts.v2).toBeLessThanOrEqual(850);

    const acks = events.slice(before).filter((e) => e.event === 'ack');
    expect(acks.map((e) => e.typeUrl)).toEqual([TypeUrl.RouteConfiguration]);
    const pushesAfter = await registry.getSingleMetric('aviary_xds_pushes_total')!.get();
    const delta = (type: string) =>
      (pushesAfter.values.find((v) => v.labels.type === type)?.value ?? 0) - (pushesBefore.find((v) => v.labels.type === type)?.value ?? 0);
    expect([delta('rds'), delta('lds'), delta('cds'), delta('eds')]).toEqual([1, 0, 0, 0]);
    const convergence = await registry.getSingleMetric('aviary_xds_convergence_seconds')!.get();
    expect(convergence.values.find((v) => v.labels.type === 'rds' && (v as { metricName?: string }).metricName === 'aviary_xds_convergence_seconds_count')?.value).toBe(1);
  });

  it('records a NACK with the client error and keeps serving the last good config', async () => {
    const bad = echoMesh({ backends: { v1: ['localhost', v1.port], v2: ['127.0.0.1', v2.port] }, weights: { v1: 20, v2: 80 } });
    const before = events.length;
    cache.setSnapshot(GROUP, Snapshot.build(bad));
    await waitFor('a NACK', () => events.slice(before).some((e) => e.event === 'nack'));
    const nack = events.slice(before).find((e) => e.event === 'nack')!;
    expect(nack.typeUrl).toBe(TypeUrl.ClusterLoadAssignment);
    expect(nack.error).toContain('localhost');
    const eds = server.proxies()[0]!.types.find((t) => t.typeUrl === TypeUrl.ClusterLoadAssignment)!;
    expect(eds.lastNack?.error).toContain('localhost');
    expect(eds.ackedVersion).not.toBe(eds.sentVersion);
    const rejects = await registry.getSingleMetric('aviary_xds_rejects_total')!.get();
    expect(rejects.values.find((v) => v.labels.type === 'eds')?.value).toBe(1);

    const counts = await countCalls(client, 200, 20);
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(200);
    expect(counts.v1 ?? 0).toBeGreaterThan(0);

    const fixedAt = events.length;
    cache.setSnapshot(GROUP, Snapshot.build(echoMesh({ backends: backends(), weights: { v1: 20, v2: 80 } })));
    await waitFor('an EDS ACK of the fixed config', () => events.slice(fixedAt).some((e) => e.event === 'ack' && e.typeUrl === TypeUrl.ClusterLoadAssignment));
    const fixed = server.proxies()[0]!.types.find((t) => t.typeUrl === TypeUrl.ClusterLoadAssignment)!;
    expect(fixed.ackedVersion).toBe(fixed.sentVersion);
  });

  it('the client keeps working while the server is down and re-subscribes after a restart', async () => {
    server.kill();
    await waitFor('the disconnect', () => events.some((e) => e.event === 'disconnected'));
    const whileDown = await countCalls(client, 50, 10);
    expect((whileDown.v1 ?? 0) + (whileDown.v2 ?? 0)).toBe(50);

    const before = events.length;
    await startServer();
    await waitFor(
      'the client to re-subscribe and ACK all four types',
      () => new Set(events.slice(before).filter((e) => e.event === 'ack').map((e) => e.typeUrl)).size === 4,
      10_000,
    );
    expect(events.slice(before)[0]).toMatchObject({ event: 'connected', proxyId: NODE_ID });

    cache.setSnapshot(GROUP, Snapshot.build(echoMesh({ backends: backends(), weights: { v1: 100 } })));
    await waitFor('RDS ACK after the restart', () => events.slice(before).filter((e) => e.event === 'ack' && e.typeUrl === TypeUrl.RouteConfiguration).length >= 2);
    const results = await Promise.all(Array.from({ length: 20 }, () => callEcho(client)));
    expect(new Set(results)).toEqual(new Set(['v1']));
  });
});
