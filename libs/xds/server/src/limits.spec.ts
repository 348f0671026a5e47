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
