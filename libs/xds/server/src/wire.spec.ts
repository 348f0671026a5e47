import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageName } from '@aviary/xds-api';
import { ResourceEncoder, Snapshot, type EncodedResource } from '@aviary/xds-cache';
import { decodeResource, jsToStruct, lookupType, TypeUrl } from '@aviary/xds-protos';
import {
  decodeDiscoveryRequest,
  decodeDiscoveryRequestWithProtobufjs,
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryResponse,
  serializeResponse,
  type DeltaResponseParts,
  type DiscoveryRequest,
  type ResponseParts,
} from './wire';

const long = 'x'.repeat(300);

function clusters(...names: string[]): EncodedResource[] {
  const snapshot = Snapshot.build({ [TypeUrl.Cluster]: names.map((name) => ({ name, type: 'STATIC' })) }, { encoder: new ResourceEncoder() });
  return [...snapshot.resources(TypeUrl.Cluster).values()];
}

const sotwType = lookupType(MessageName.DiscoveryResponse);
const deltaType = lookupType(MessageName.DeltaDiscoveryResponse);

/** What protobufjs writes for the same DiscoveryResponse. */
function protobufjsSotw(p: ResponseParts): Buffer {
  const message = sotwType.fromObject({
    version_info: p.version,
    resources: p.resources.map((r) => ({ type_url: r.typeUrl, value: r.bytes })),
    type_url: p.typeUrl,
    nonce: p.nonce,
    ...(p.controlPlaneId && { control_plane: { identifier: p.controlPlaneId } }),
  });
  return Buffer.from(sotwType.encode(message).finish());
}

/** What protobufjs writes for the same DeltaDiscoveryResponse. */
function protobufjsDelta(p: DeltaResponseParts): Buffer {
  const message = deltaType.fromObject({
    system_version_info: p.version,
    resources: p.resources.map((r) => ({ version: r.version, resource: { type_url: r.typeUrl, value: r.bytes }, name: r.name })),
    type_url: p.typeUrl,
    nonce: p.nonce,
    removed_resources: p.removed,
    ...(p.controlPlaneId && { control_plane: { identifier: p.controlPlaneId } }),
  });
  return Buffer.from(deltaType.encode(message).finish());
}

const sotwParts: ResponseParts = { version: 'v1-é', typeUrl: TypeUrl.Cluster, nonce: '7-1', resources: clusters('a', `b-${long}`), controlPlaneId: 'pilot-é' };
const deltaParts: DeltaResponseParts = { ...sotwParts, removed: ['gone', `gone-é-${long}`] };
const { controlPlaneId: _dropped, ...withoutId } = sotwParts;

describe('encodeDiscoveryResponse', () => {
  it('writes exactly what protobufjs writes for the same DiscoveryResponse', () => {
    expect(encodeDiscoveryResponse(sotwParts).equals(protobufjsSotw(sotwParts))).toBe(true);
    expect(encodeDiscoveryResponse(withoutId).equals(protobufjsSotw(withoutId))).toBe(true);
    const decoded = sotwType.decode(encodeDiscoveryResponse(sotwParts)) as unknown as { resources: { type_url: string; value: Uint8Array }[] };
    expect(decoded.resources.map((a) => decodeResource(a.type_url, a.value).name)).toEqual(['a', `b-${long}`]);
  });
});

/** The same resources without their entries: framed when sent, as a resource not from an encoder is. */
const unframed = (resources: readonly EncodedResource[]): EncodedResource[] => resources.map(({ typeUrl, name, version, resource, bytes }) => ({ typeUrl, name, version, resource, bytes }));
/** Lengths of one, two and three bytes as varints, for the Any's value and for the entry around it. */
const sized = clusters('s', `m-${long}`, `l-${'y'.repeat(20_000)}`);

describe('EncodedResource.entry', () => {
  it("is field 2 holding the Any of the resource's type URL and bytes, its bytes a view of its tail", () => {
    const anyType = lookupType('google.protobuf.Any');
    for (const r of sized) {
      const entry = r.entry!;
      expect(entry[0]).toBe(0x12);
      const any = Buffer.from(anyType.encode(anyType.fromObject({ type_url: r.typeUrl, value: r.bytes })).finish());
      expect(Buffer.from(entry.subarray(entry.length - any.length)).equals(any)).toBe(true);
      expect(entry.length - any.length).toBe(1 + (any.length < 128 ? 1 : any.length < 16_384 ? 2 : 3));
      expect(r.bytes.buffer).toBe(entry.buffer);
      expect(r.bytes.byteOffset + r.bytes.length).toBe(entry.byteOffset + entry.length);
    }
  });

  it('gives the same responses as framing each resource when sent, also with both kinds in one response', () => {
    const mixed = [sized[0]!, ...unframed([sized[1]!]), sized[2]!];
    for (const resources of [sized, unframed(sized), mixed]) {
      const sotw: ResponseParts = { ...sotwParts, resources };
      expect(encodeDiscoveryResponse(sotw).equals(protobufjsSotw(sotw))).toBe(true);
      const delta: DeltaResponseParts = { ...deltaParts, resources };
      expect(encodeDeltaDiscoveryResponse(delta).equals(protobufjsDelta(delta))).toBe(true);
    }
  });
});

describe('encodeDeltaDiscoveryResponse', () => {
  it('writes exactly what protobufjs writes for the same DeltaDiscoveryResponse', () => {
    expect(encodeDeltaDiscoveryResponse(deltaParts).equals(protobufjsDelta(deltaParts))).toBe(true);
    const bare: DeltaResponseParts = { version: '', typeUrl: TypeUrl.Cluster, nonce: '1', resources: [], removed: [] };
    expect(encodeDeltaDiscoveryResponse(bare).equals(protobufjsDelta(bare))).toBe(true);
    const decoded = deltaType.toObject(deltaType.decode(encodeDeltaDiscoveryResponse(deltaParts)), { longs: Number }) as {
      resources: { name: string; version: string; resource: { type_url: string; value: Uint8Array } }[];
      removed_resources: string[];
    };
    expect(decoded.resources.map((r) => [r.name, r.version, decodeResource(r.resource.type_url, r.resource.value).name])).toEqual(deltaParts.resources.map((r) => [r.name, r.version, r.name]));
    expect(decoded.removed_resources).toEqual(deltaParts.removed);
  });
});

describe('serializeResponse (the ADS service responseSerialize)', () => {
  it('gives the bytes of the response it is handed, SotW and delta', () => {
    expect(Buffer.from(serializeResponse({ protocol: 'sotw', ...sotwParts })).equals(protobufjsSotw(sotwParts))).toBe(true);
    expect(Buffer.from(serializeResponse({ protocol: 'sotw', ...withoutId })).equals(protobufjsSotw(withoutId))).toBe(true);
    expect(Buffer.from(serializeResponse({ protocol: 'delta', ...deltaParts })).equals(protobufjsDelta(deltaParts))).toBe(true);
  });

  it('a copy taken before the next call (as grpc-js takes it) is not changed by that call', () => {
    const first = Buffer.from(serializeResponse({ protocol: 'sotw', ...sotwParts }));
    const small: ResponseParts = { version: 'v2', typeUrl: TypeUrl.Cluster, nonce: '7-2', resources: clusters('c') };
    const second = Buffer.from(serializeResponse({ protocol: 'sotw', ...small }));
    expect(first.equals(protobufjsSotw(sotwParts))).toBe(true);
    expect(second.equals(protobufjsSotw(small))).toBe(true);
  });

  it('grows for a response larger than any before it and still encodes the smaller ones after it', () => {
    const many = clusters(...Array.from({ length: 400 }, (_, i) => `c-${i}-${long}`));
    const big: ResponseParts = { version: 'v3', typeUrl: TypeUrl.Cluster, nonce: '9-1', resources: many };
    const bigBytes = Buffer.from(serializeResponse({ protocol: 'sotw', ...big }));
    expect(bigBytes.length).toBeGreaterThan(64 * 1024);
    expect(bigBytes.equals(protobufjsSotw(big))).toBe(true);
    expect(Buffer.from(serializeResponse({ protocol: 'delta', ...deltaParts })).equals(protobufjsDelta(deltaParts))).toBe(true);
  });
});

describe('decodeDiscoveryRequest', () => {
  const requestType = lookupType(MessageName.DiscoveryRequest);
  const encodeRequest = (r: Record<string, unknown>): Buffer => Buffer.from(requestType.encode(requestType.fromObject(r)).finish());
  /** The fields a DiscoveryRequest's reader uses (protobufjs's conversion also lists `resource_locators`). */
  const used = (r: DiscoveryRequest) => ({
    version_info: r.version_info,
    node: r.node,
    resource_names: [...(r.resource_names ?? [])],
    type_url: r.type_url,
    response_nonce: r.response_nonce,
    error_detail: r.error_detail,
  });
  const name = fc.oneof(fc.constantFrom('outbound|8080||a.ns.svc.cluster.local', 'b', '', '*'), fc.string({ unit: 'grapheme', maxLength: 200 }));
  const request = fc.record(
    {
      version_info: fc.string({ unit: 'grapheme' }),
      node: fc.record({ id: fc.string(), cluster: fc.string(), metadata: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.boolean(), fc.double({ noNaN: true }))).map(jsToStruct) }, { requiredKeys: [] }),
      resource_names: fc.array(name, { maxLength: 40 }),
      resource_locators: fc.array(fc.record({ name }), { maxLength: 2 }),
      type_url: fc.constantFrom(TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, 'type.googleapis.com/x.Unknown'),
      response_nonce: fc.string(),
      error_detail: fc.record({ code: fc.integer({ min: 0, max: 16 }), message: fc.string({ unit: 'grapheme' }) }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  );

  it('gives what protobufjs gives, for random requests and for random bytes', () => {
    fc.assert(
      fc.property(request, (r) => {
        const buf = encodeRequest(r);
        expect(used(decodeDiscoveryRequest(buf))).toEqual(used(decodeDiscoveryRequestWithProtobufjs(buf)));
        // Once more: the second decode of the same names comes from the list cache.
        expect(used(decodeDiscoveryRequest(buf))).toEqual(used(decodeDiscoveryRequestWithProtobufjs(buf)));
      }),
      { numRuns: 300 },
    );
    const outcome = (decode: (b: Buffer) => DiscoveryRequest, b: Buffer) => {
      try {
        return used(decode(b));
      } catch {
        return 'throws';
      }
    };
    // Malformed bytes: where both decode them, the same request. They may differ on refusing
    // them: a known field with a wire type not its own is an error here (protobufjs reads it as
    // its own type), and resource_locators are skipped unread (protobufjs may fail on them).
    let both = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const b = Buffer.from(bytes);
        const ours = outcome(decodeDiscoveryRequest, b);
        const theirs = outcome(decodeDiscoveryRequestWithProtobufjs, b);
        if (ours === 'throws' || theirs === 'throws') return;
        both++;
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 2000 },
    );
    expect(both).toBeGreaterThan(200);
    expect(() => decodeDiscoveryRequest(Buffer.from([8, 0]))).toThrow(/field 1 has wire type 0/);
  });

  it('shares one frozen array between requests with the same names, and never between different names', () => {
    const names = ['outbound|8080||a.ns.svc.cluster.local', 'outbound|8080||b.ns.svc.cluster.local'];
    const a = decodeDiscoveryRequest(encodeRequest({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: names, response_nonce: '1' }));
    const b = decodeDiscoveryRequest(encodeRequest({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: names, version_info: 'v2', response_nonce: '2' }));
    expect(a.resource_names).toEqual(names);
    expect(b.resource_names).toBe(a.resource_names);
    expect(Object.isFrozen(a.resource_names)).toBe(true);
    // The same bytes after the first name's key: "ab" then "c", or one name "ab\x1a\x01c".
    expect(decodeDiscoveryRequest(encodeRequest({ resource_names: ['ab', 'c'] })).resource_names).toEqual(['ab', 'c']);
    expect(decodeDiscoveryRequest(encodeRequest({ resource_names: ['ab\x1a\x01c'] })).resource_names).toEqual(['ab\x1a\x01c']);
  });

  it('reads names that other fields interleave', () => {
    const key = (field: number) => Buffer.from([(field << 3) | 2]);
    const str = (field: number, s: string) => Buffer.concat([key(field), Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
    const buf = Buffer.concat([str(3, 'a'), str(4, TypeUrl.Cluster), str(3, 'b'), str(5, 'n')]);
    expect(used(decodeDiscoveryRequest(buf))).toEqual(used(decodeDiscoveryRequestWithProtobufjs(buf)));
    expect(decodeDiscoveryRequest(buf).resource_names).toEqual(['a', 'b']);
  });
});
