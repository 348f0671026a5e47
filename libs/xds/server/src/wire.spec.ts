import { describe, expect, it } from 'vitest';
import { MessageName } from '@aviary/xds-api';
import { ResourceEncoder, Snapshot, type EncodedResource } from '@aviary/xds-cache';
import { decodeResource, lookupType, TypeUrl } from '@aviary/xds-protos';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse, serializeResponse, type DeltaResponseParts, type ResponseParts } from './wire';

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
