/**
 * Stream limits over real gRPC: a full replica refuses new streams with UNAVAILABLE (so the
 * client retries, elsewhere when it has elsewhere to go); a connection past its maximum age is
 * sent a GOAWAY and its ADS stream ends after the grace, so the proxy re-opens it on a new
 * connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { RawAdsStream, SnapshotCache } from '@aviary/testing';
import { XdsServer } from './index';
import { XdsMetrics } from './metrics';
import { echoMesh } from './testing/echo-mesh';
import { testKinds, testPeer, type TestPeer } from './testing/peer';

async function until(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!predicate()) throw new Error(`never happened: ${what}`);
}

describe('XdsServer stream limits', () => {
  const streams: RawAdsStream[] = [];
  let server: XdsServer<TestPeer> | undefined;

  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await server?.stop(100);
    server = undefined;
  });

  async function start(limits: ConstructorParameters<typeof XdsServer<TestPeer>>[0]['limits'], registry = new Registry()): Promise<number> {
    const cache = new SnapshotCache<TestPeer>({ groupOf: () => 'g' });
    cache.setSnapshot('g', Snapshot.build(echoMesh({ backends: { v1: ['10.0.0.1', 1001] }, weights: { v1: 100 } })));
    server = new XdsServer({ source: cache, nodeParser: testPeer, kinds: testKinds, metrics: registry, debounce: { quietMs: 0, maxDelayMs: 0 }, ...(limits && { limits }) });
    return server.listen('127.0.0.1:0');
  }

  function open(port: number, id: string): RawAdsStream {
    const s = new RawAdsStream(port, false);
    streams.push(s);
    s.send({ node: RawAdsStream.node(id), type_url: TypeUrl.Cluster, resource_names: [] });
    return s;
  }

  it('refuses a stream over maxStreams with UNAVAILABLE, counts it, and takes one again when a stream ends', async () => {
    const registry = new Registry();
    const port = await start({ maxStreams: 2 }, registry);
    const a = open(port, 'a');
    const b = open(port, 'b');
    await a.next();
    await b.next();
    const c = open(port, 'c');
    const refused = await c.closedWith();
    expect(refused.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused.details).toMatch(/full \(2 streams\)/);
    const metric = await registry.getSingleMetric('aviary_xds_streams_refused_total')!.get();
    expect(metric.values.find((v) => v.labels.reason === 'max_streams')?.value).toBe(1);
    expect(server!.openStreams).toBe(2);
    a.close();
    await until('the closed stream is released', () => server!.openStreams === 1);
    const d = open(port, 'd');
    const r = await d.next();
    expect(r.type_url).toBe(TypeUrl.Cluster);
  });

  it('shows the sending path in metrics: bytes held unwritten and responses waiting (none once written), idle framing buffers', async () => {
    const registry = new Registry();
    const port = await start(undefined, registry);
    const a = open(port, 'a');
    await a.next();
    const value = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;
    for (let i = 0; i < 200 && (await value('aviary_xds_send_held_bytes')) !== 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await value('aviary_xds_send_held_bytes')).toBe(0);
    expect(await value('aviary_xds_send_waiting_responses')).toBe(0);
    expect(await value('aviary_xds_frame_pool_idle_bytes')).toBeGreaterThanOrEqual(0);
  });

  it('reads the sending path when scraped', async () => {
    const registry = new Registry();
    const metrics = new XdsMetrics(registry);
    let state = { heldBytes: 0, waiting: 0, poolIdleBytes: 0 };
    metrics.observeSending(() => state);
    state = { heldBytes: 5_000_000, waiting: 3, poolIdleBytes: 1 << 20 };
    const text = await registry.metrics();
    expect(text).toMatch(/^aviary_xds_send_held_bytes 5000000$/m);
    expect(text).toMatch(/^aviary_xds_send_waiting_responses 3$/m);
    expect(text).toMatch(/^aviary_xds_frame_pool_idle_bytes 1048576$/m);
  });

  it('ends the streams of a connection past maxConnectionAgeMs after the grace, and the client reconnects', async () => {
    const port = await start({ maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 200 });
    const a = open(port, 'a');
    await a.next();
    const ended = await a.closedWith();
    expect([grpc.status.UNAVAILABLE, grpc.status.INTERNAL, grpc.status.CANCELLED]).toContain(ended.code);
    await until('the aged stream is released', () => server!.openStreams === 0);
    const b = open(port, 'a');
    expect((await b.next()).type_url).toBe(TypeUrl.Cluster);
  });
});
