import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KvConfigStore } from '@aviary/config-store';
import type { StoredObject } from '@aviary/mesh-api';
import { Bus, Subjects, type EventData } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { RawAdsStream } from '@aviary/testing';
import { TypeUrl } from '@aviary/xds-api';
import type { CanonicalMessage } from '@aviary/xds-protos';
import { Discovery } from './discovery';

// Discovery against its real peers: nats-server (the KV config store and the status events) and
// raw ADS streams (SotW and delta) over gRPC.
const logger = pino({ level: 'silent' });
const HOST = 'reviews.default.svc.cluster.local';
const V1 = `outbound|9080|v1|${HOST}`;
const V2 = `outbound|9080|v2|${HOST}`;
const ALL = `outbound|9080||${HOST}`;
const SIDECAR = 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local';
const bookinfo: StoredObject[] = parseAllDocuments(readFileSync(new URL('./__fixtures__/bookinfo.yaml', import.meta.url), 'utf8'))
  .map((d) => d.toJS() as StoredObject)
  .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? 'default' } }));
const workloadEntry = (name: string, address: string, port: number): StoredObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: 'default' },
  spec: { address, ports: { http: port }, labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'bookinfo-reviews' },
});

let nats: NatsServer;
let bus: Bus;
let store: KvConfigStore;
let discovery: Discovery;
let port: number;
const status: EventData<typeof Subjects.xdsStatus>[] = [];
const streams: RawAdsStream[] = [];

const names = (r: CanonicalMessage): string[] =>
  ((r.resources as CanonicalMessage[] | undefined) ?? []).map((x) => (x.name ?? x.cluster_name ?? (x.resource as CanonicalMessage | undefined)?.name) as string).sort();

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function open(delta = false): RawAdsStream {
  const s = new RawAdsStream(port, delta);
  streams.push(s);
  return s;
}

/** SotW: subscribes to `typeUrl` (with the node on the stream's first request), takes the response and ACKs it. */
async function subscribe(s: RawAdsStream, typeUrl: string, resourceNames: string[], node?: object): Promise<CanonicalMessage> {
  s.send({ ...(node && { node }), type_url: typeUrl, resource_names: resourceNames });
  const r = await s.next();
  s.send({ type_url: typeUrl, resource_names: resourceNames, version_info: r.version_info, response_nonce: r.nonce });
  return r;
}

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'discovery-spec', logger, registry: new Registry() });
  bus.subscribe(Subjects.xdsStatus, (e) => void status.push(e.data));
  store = await KvConfigStore.open(bus, { bucket: 'discovery-spec' });
  for (const o of bookinfo) await store.apply(o);
  discovery = new Discovery({
    store,
    bus,
    logger,
    registry: new Registry(),
    trustDomain: 'example.org',
    debounce: { quietMs: 0, maxDelayMs: 0 },
    status: { flushMs: 20, ackIntervalMs: 0 },
  });
  expect(discovery.ready).toBe(false);
  await discovery.start();
  port = await discovery.listen('127.0.0.1', 0);
  expect(discovery.ready).toBe(true);
});

afterEach(() => {
  for (const s of streams.splice(0)) s.close();
});

afterAll(async () => {
  await discovery?.stop();
  await bus?.close();
  await nats?.stop();
});

describe('Discovery', () => {
  it('serves a sidecar the translation of the stored config and publishes its status on NATS', async () => {
    const s = open();
    const cds = await subscribe(s, TypeUrl.Cluster, [], RawAdsStream.node(SIDECAR, { LABELS: { app: 'reviews', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-reviews' }));
    expect(names(cds)).toEqual(expect.arrayContaining([ALL, V1, V2]));
    const eds = await subscribe(s, TypeUrl.ClusterLoadAssignment, [V1, V2]);
    expect(names(eds)).toEqual([V1, V2]);
    expect(JSON.stringify(eds.resources)).toContain('"port_value":19081');

    const proxy = discovery.server.proxies().find((p) => p.proxy.id === SIDECAR)?.proxy;
    expect(proxy).toMatchObject({ kind: 'sidecar', ip: '127.0.0.1', namespace: 'default', identity: 'spiffe://example.org/ns/default/sa/bookinfo-reviews' });
    await until('connected and ACK events on NATS', () =>
      status.some((e) => e.proxyId === SIDECAR && e.event === 'connected') &&
      status.some((e) => e.proxyId === SIDECAR && e.event === 'ack' && e.typeUrl === TypeUrl.ClusterLoadAssignment && e.version === eds.version_info),
    );
  });

  it('pushes only EDS to a proxy elsewhere when an endpoint is added, and everything to the proxy at its address', async () => {
    const elsewhere = open();
    await subscribe(elsewhere, TypeUrl.Cluster, [], RawAdsStream.node('client-1', { NAMESPACE: 'default' }));
    await subscribe(elsewhere, TypeUrl.ClusterLoadAssignment, [V1]);
    const at = open();
    await subscribe(at, TypeUrl.Cluster, [], RawAdsStream.node('sidecar~127.0.0.7~reviews-v3.default~default.svc.cluster.local', { LABELS: { app: 'reviews', version: 'v1' } }));
    const atListeners = await subscribe(at, TypeUrl.Listener, []);

    await store.apply(workloadEntry('reviews-v1b', '127.0.0.7', 19083));
    const pushed = await elsewhere.next();
    expect(pushed.type_url).toBe(TypeUrl.ClusterLoadAssignment);
    expect(JSON.stringify(pushed.resources)).toContain('"port_value":19083');
    elsewhere.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [V1], version_info: pushed.version_info, response_nonce: pushed.nonce });
    // the proxy at the new endpoint's address gets its inbound side re-translated: a new inbound
    // cluster, then, once it ACKed that (make-before-break), the listeners that name it
    const inboundClusters = await at.next();
    expect(inboundClusters.type_url).toBe(TypeUrl.Cluster);
    expect(names(inboundClusters)).toContain('inbound|19083||');
    at.send({ type_url: TypeUrl.Cluster, resource_names: [], version_info: inboundClusters.version_info, response_nonce: inboundClusters.nonce });
    const inbound = await at.next();
    expect(inbound.type_url).toBe(TypeUrl.Listener);
    expect(inbound.version_info).not.toBe(atListeners.version_info);
    await new Promise((r) => setTimeout(r, 300));
    expect(elsewhere.pending).toBe(0);
  });

  it('pushes CDS when a config change adds a subset (delta protocol)', async () => {
    const s = open(true);
    s.send({ node: RawAdsStream.node('client-2', { NAMESPACE: 'default' }), type_url: TypeUrl.Cluster, resource_names_subscribe: ['*'] });
    const first = await s.next();
    s.send({ type_url: TypeUrl.Cluster, response_nonce: first.nonce });
    expect(names(first)).not.toContain(`outbound|9080|v3|${HOST}`);

    const dr = bookinfo.find((o) => o.kind === 'DestinationRule')!;
    const spec = dr.spec as { subsets: unknown[] };
    await store.apply({ ...dr, spec: { ...spec, subsets: [...spec.subsets, { name: 'v3', labels: { version: 'v3' } }] } });
    const changed = await s.next();
    expect(changed.type_url).toBe(TypeUrl.Cluster);
    expect(names(changed)).toContain(`outbound|9080|v3|${HOST}`);
  });

  it('reads nodes leniently: a plain id is a proxyless client, a malformed Istio id is refused', async () => {
    const bad = open();
    bad.send({ node: RawAdsStream.node('gateway~1.2.3.4~a.default~default.svc.cluster.local'), type_url: TypeUrl.Cluster });
    expect((await bad.closedWith()).code).toBe(grpc.status.INVALID_ARGUMENT);
    const plain = open();
    await subscribe(plain, TypeUrl.Cluster, [], RawAdsStream.node('client-3'));
    expect(discovery.server.proxies().find((p) => p.proxy.id === 'client-3')?.proxy.kind).toBe('proxyless');
  });

  it('publishes disconnected when a stream ends', async () => {
    const s = open();
    await subscribe(s, TypeUrl.Cluster, [], RawAdsStream.node('client-4'));
    s.close();
    await until('the disconnected event', () => status.some((e) => e.proxyId === 'client-4' && e.event === 'disconnected'));
  });
});
