/**
 * Two pilot replicas (Discovery as pilot wires it: the KV config store wrapped in
 * `announcingChanges`) on a 3-node NATS JetStream cluster, each connected to a different node:
 * both serve a proxy the same config, a write through either reaches proxies on both, and the
 * change is announced once however many replicas see it.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { announcingChanges, KvConfigStore, type ConfigStore } from '@aviary/config-store';
import type { StoredObject } from '@aviary/mesh-api';
import { Bus } from '@aviary/events';
import { NatsCluster } from '@aviary/nats-runner';
import { RawAdsStream } from '@aviary/testing';
import { TypeUrl } from '@aviary/xds-api';
import type { CanonicalMessage } from '@aviary/xds-protos';
import { Discovery } from './discovery';

const logger = pino({ level: 'silent' });
const HOST = 'reviews.default.svc.cluster.local';
const SIDECAR = 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local';
const NODE = RawAdsStream.node(SIDECAR, { LABELS: { app: 'reviews', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-reviews' });
const bookinfo: StoredObject[] = parseAllDocuments(readFileSync(new URL('./__fixtures__/bookinfo.yaml', import.meta.url), 'utf8'))
  .map((d) => d.toJS() as StoredObject)
  .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? 'default' } }));

interface Replica {
  readonly bus: Bus;
  readonly store: ConfigStore;
  readonly discovery: Discovery;
  readonly port: number;
}

let cluster: NatsCluster;
const replicas: Replica[] = [];
const streams: RawAdsStream[] = [];

async function replica(id: string, node: number): Promise<Replica> {
  const urls = cluster.nodes.map((n) => n.url);
  const bus = await Bus.connect({ url: [...urls.slice(node), ...urls.slice(0, node)].join(','), source: 'pilot', logger, registry: new Registry(), replicas: 3 });
  await bus.ensureStreams();
  const store = announcingChanges(await KvConfigStore.open(bus, { bucket: 'replicas_spec' }), bus, () => undefined);
  const discovery = new Discovery({ store, bus, logger, registry: new Registry(), trustDomain: 'cluster.local', debounce: { quietMs: 0, maxDelayMs: 0 }, controlPlaneId: id });
  await discovery.start();
  const port = await discovery.listen('127.0.0.1', 0);
  const r = { bus, store, discovery, port };
  replicas.push(r);
  return r;
}

function open(port: number): RawAdsStream {
  const s = new RawAdsStream(port, false);
  streams.push(s);
  return s;
}

async function subscribe(s: RawAdsStream, typeUrl: string, node?: object): Promise<CanonicalMessage> {
  s.send({ ...(node && { node }), type_url: typeUrl, resource_names: [] });
  const r = await s.next();
  s.send({ type_url: typeUrl, resource_names: [], version_info: r.version_info, response_nonce: r.nonce });
  return r;
}

beforeAll(async () => {
  cluster = await NatsCluster.start({ size: 3 });
}, 60_000);

afterEach(() => {
  for (const s of streams.splice(0)) s.close();
});

afterAll(async () => {
  for (const r of replicas) {
    await r.discovery.stop();
    await r.bus.close();
  }
  await cluster?.stop();
});

describe('two pilot replicas on one NATS cluster', () => {
  it('serve identical config, see each other\'s writes, and announce each change once', async () => {
    const a = await replica('pilot-a', 0);
    for (const o of bookinfo) await a.store.apply(o);
    const b = await replica('pilot-b', 1);

    const fromA = open(a.port);
    const fromB = open(b.port);
    for (const type of [TypeUrl.Cluster, TypeUrl.Listener]) {
      const [ra, rb] = [await subscribe(fromA, type, type === TypeUrl.Cluster ? NODE : undefined), await subscribe(fromB, type, type === TypeUrl.Cluster ? NODE : undefined)];
      expect(ra.resources).toEqual(rb.resources);
      expect(ra.version_info).toBe(rb.version_info);
      expect([(ra.control_plane as { identifier?: string }).identifier, (rb.control_plane as { identifier?: string }).identifier]).toEqual(['pilot-a', 'pilot-b']);
    }

    const jsm = await a.bus.manager();
    /** Messages in AVIARY_CONFIG (a JetStream API call may time out while an R3 stream elects its leader on a loaded machine). */
    const announced = async (): Promise<number> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return (await jsm.streams.info('AVIARY_CONFIG')).state.messages;
        } catch (err) {
          if (attempt >= 10) throw err;
        }
      }
    };
    const announcedBefore = await announced();

    // A write through replica B (a new subset) reaches the proxy connected to replica A, and the
    // one on B, with the same clusters.
    const dr = bookinfo.find((o) => o.kind === 'DestinationRule' && (o.spec as { host?: string }).host === HOST)!;
    const spec = dr.spec as { subsets: { name: string; labels: Record<string, string> }[] };
    const withV9 = { ...dr, spec: { ...spec, subsets: [...spec.subsets, { name: 'v9', labels: { version: 'v9' } }] } };
    await b.store.apply(withV9);
    const [pa, pb] = [await fromA.next(), await fromB.next()];
    expect(pa.type_url).toBe(TypeUrl.Cluster);
    expect(JSON.stringify(pa.resources)).toContain(`outbound|9080|v9|${HOST}`);
    expect(pa.resources).toEqual(pb.resources);

    // Both replicas watched the change; JetStream's duplicate window kept one announcement.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await announced()) - announcedBefore < 1) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // let a second, duplicate announcement land if there were one
    expect((await announced()) - announcedBefore).toBe(1);

    // And a write through A is seen by B's store at once (same KV, revision-checked).
    const current = await b.store.get({ kind: 'DestinationRule', namespace: dr.metadata.namespace, name: dr.metadata.name });
    await expect(a.store.apply({ ...withV9, metadata: { ...withV9.metadata, resourceVersion: String(Number(current!.metadata.resourceVersion) - 1) } })).rejects.toThrow(/resourceVersion|conflict/i);
  }, 60_000);
});
