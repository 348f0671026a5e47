/**
 * Property-based fuzzing of xDS request handling over real gRPC streams (SotW and delta): raw
 * bytes that are not protobuf, bit-flipped valid requests, and well-formed requests with hostile
 * contents (any type URL, thousands of resource names, stale or foreign nonces, NACKs, odd nodes),
 * several per stream. The server must never crash or hang: after every case a fresh, valid
 * stream still gets its resources. The run counts are recorded in docs/security.md.
 */
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { AdsService } from '@aviary/xds-api';
import { Snapshot } from '@aviary/xds-cache';
import { encodeMessageOf, jsToStruct, resourceTypeUrls, TypeUrl, type JsonValue } from '@aviary/xds-protos';
import { RawAdsStream, SnapshotCache } from '@aviary/testing';
import { XdsServer } from './index';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './wire';
import { echoMesh } from './testing/echo-mesh';
import { testKinds, testPeer, type TestPeer } from './testing/peer';

const fuzzRuns = { decodeBytes: 2000, bitFlips: 2000, streams: 300 } as const;

let server: XdsServer<TestPeer>;
let port: number;

beforeAll(async () => {
  const cache = new SnapshotCache<TestPeer>({ groupOf: () => 'g' });
  cache.setSnapshot('g', Snapshot.build(echoMesh({ backends: { v1: ['10.0.0.1', 1001] }, weights: { v1: 100 } })));
  server = new XdsServer({ source: cache, nodeParser: testPeer, kinds: testKinds, metrics: new Registry(), debounce: { quietMs: 0, maxDelayMs: 0 } });
  port = await server.listen('127.0.0.1:0');
});

afterAll(async () => {
  await server?.stop(100);
});

const typeUrl = fc.oneof(fc.constantFrom(...resourceTypeUrls, TypeUrl.Listener, ''), fc.string({ maxLength: 300 }));
const jsonish: fc.Arbitrary<JsonValue> = fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<JsonValue>;
const node = fc.record(
  {
    id: fc.oneof(fc.constant('sidecar~10.0.0.9~fuzz.default~default.svc.cluster.local'), fc.string({ maxLength: 2000 })),
    cluster: fc.string({ maxLength: 100 }),
    metadata: fc.dictionary(fc.string({ maxLength: 20 }), jsonish, { maxKeys: 8 }).map((m) => jsToStruct(m)),
  },
  { requiredKeys: [] },
);
const names = (max: number) => fc.array(fc.string({ maxLength: 100 }), { maxLength: max });
const nack = fc.record({ code: fc.integer({ min: -5, max: 20 }), message: fc.string({ maxLength: 500 }) });
const request = (delta: boolean) =>
  delta
    ? fc.record(
        { node, type_url: typeUrl, resource_names_subscribe: names(2000), resource_names_unsubscribe: names(200), response_nonce: fc.string({ maxLength: 100 }), error_detail: nack },
        { requiredKeys: [] },
      )
    : fc.record({ node, type_url: typeUrl, resource_names: names(2000), version_info: fc.string({ maxLength: 100 }), response_nonce: fc.string({ maxLength: 100 }), error_detail: nack }, { requiredKeys: [] });

function validRequest(delta: boolean): Uint8Array {
  const rpc = delta ? AdsService.delta : AdsService.sotw;
  return encodeMessageOf(rpc.request, { node: RawAdsStream.node('sidecar~10.0.0.1~a.default~default.svc.cluster.local'), type_url: TypeUrl.Cluster, ...(delta ? {} : { resource_names: [] }) });
}

/** A stream that sends bytes as they are (no protobuf encoding on the client side). */
function rawStream(delta: boolean): grpc.ClientDuplexStream<Buffer, Buffer> & { client: grpc.Client } {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const rpc = delta ? AdsService.delta : AdsService.sotw;
  const stream = client.makeBidiStreamRequest(rpc.path, (b: Buffer) => b, (b: Buffer) => b);
  stream.on('error', () => undefined);
  stream.on('data', () => undefined);
  return Object.assign(stream, { client });
}

/** A fresh, valid client still gets CDS: the server survived what came before. */
async function serverStillServes(delta: boolean): Promise<void> {
  const s = new RawAdsStream(port, delta);
  try {
    s.send({ node: RawAdsStream.node('sidecar~10.0.0.2~probe.default~default.svc.cluster.local'), type_url: TypeUrl.Cluster, ...(delta ? {} : { resource_names: [] }) });
    const r = await s.next(5_000);
    expect(r.type_url).toBe(TypeUrl.Cluster);
  } finally {
    s.close();
  }
}

describe('xDS request decoding, fuzzed', () => {
  it('turns any bytes into a request or an Error, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), (bytes, delta) => {
        try {
          const r = (delta ? decodeDeltaDiscoveryRequest : decodeDiscoveryRequest)(Buffer.from(bytes));
          expect(typeof r).toBe('object');
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      { numRuns: fuzzRuns.decodeBytes },
    );
  });

  it('survives bit flips and truncation of a valid request', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), fc.nat(), (delta, flips, cut) => {
        const bytes = Buffer.from(validRequest(delta));
        for (const f of flips) bytes[f % bytes.length] = (bytes[f % bytes.length] as number) ^ (1 << f % 8);
        try {
          (delta ? decodeDeltaDiscoveryRequest : decodeDiscoveryRequest)(bytes.subarray(0, bytes.length - (cut % 4)));
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      { numRuns: fuzzRuns.bitFlips },
    );
  });
});

describe('the ADS server under hostile streams, fuzzed', () => {
  it('never crashes or hangs: every case is followed by a valid stream that is served', async () => {
    const message = (delta: boolean) =>
      fc.oneof(
        fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
        request(delta).map((r) => Buffer.from(encodeMessageOf((delta ? AdsService.delta : AdsService.sotw).request, r))),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }).map((flips) => {
          const b = Buffer.from(validRequest(delta));
          for (const f of flips) b[f % b.length] = (b[f % b.length] as number) ^ (1 << f % 8);
          return b;
        }),
      );
    const streamCase = fc.boolean().chain((delta) => fc.tuple(fc.constant(delta), fc.array(message(delta), { minLength: 1, maxLength: 5 })));
    await fc.assert(
      fc.asyncProperty(streamCase, async ([delta, messages]) => {
        const s = rawStream(delta);
        for (const m of messages) s.write(m);
        await new Promise((r) => setTimeout(r, 5));
        s.cancel();
        s.client.close();
      }),
      { numRuns: fuzzRuns.streams },
    );
    await serverStillServes(false);
    await serverStillServes(true);
  });
});
