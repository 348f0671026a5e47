import protobuf from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { AdsService } from '@aviary/xds-api';
import type { EncodedResource } from '@aviary/xds-cache';
import { lookupType, structToJs } from '@aviary/xds-protos';

/**
 * Wire codecs of the ADS service. Requests are decoded with protobufjs; responses are written
 * by hand so each resource's bytes (encoded once in the cache) are copied in as they are.
 */

export interface WireNode {
  readonly id?: string;
  readonly cluster?: string;
  readonly metadata?: Record<string, unknown>;
  readonly locality?: { region?: string; zone?: string; sub_zone?: string };
  readonly user_agent_name?: string;
}

export interface ErrorDetail {
  readonly code?: number;
  readonly message?: string;
}

export interface DiscoveryRequest {
  readonly version_info?: string;
  readonly node?: WireNode;
  readonly resource_names?: string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: ErrorDetail;
}

export interface DeltaDiscoveryRequest {
  readonly node?: WireNode;
  readonly type_url?: string;
  readonly resource_names_subscribe?: string[];
  readonly resource_names_unsubscribe?: string[];
  readonly initial_resource_versions?: Record<string, string>;
  readonly response_nonce?: string;
  readonly error_detail?: ErrorDetail;
}

const toObjectOptions: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: String, defaults: false, arrays: true, objects: true };

function decodeWith<T>(typeName: string): (buf: Buffer) => T {
  const type = lookupType(typeName);
  return (buf) => {
    const obj = type.toObject(type.decode(buf), toObjectOptions) as Record<string, unknown>;
    const node = obj.node as Record<string, unknown> | undefined;
    if (node?.metadata) node.metadata = structToJs(node.metadata as Parameters<typeof structToJs>[0]);
    return obj as T;
  };
}

export const decodeDiscoveryRequest = decodeWith<DiscoveryRequest>(AdsService.sotw.request);
export const decodeDeltaDiscoveryRequest = decodeWith<DeltaDiscoveryRequest>(AdsService.delta.request);

const anyCache = new WeakMap<EncodedResource, Uint8Array>();

/** The Any of a resource, encoded once per resource version. */
export function anyBytesOf(resource: EncodedResource): Uint8Array {
  let bytes = anyCache.get(resource);
  if (!bytes) {
    bytes = protobuf.Writer.create().uint32(10).string(resource.typeUrl).uint32(18).bytes(resource.bytes).finish();
    anyCache.set(resource, bytes);
  }
  return bytes;
}

/** The writer's output as a Buffer without copying it (protobufjs already gives a Buffer on Node). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function controlPlane(w: protobuf.Writer, field: number, identifier: string | undefined): void {
  if (identifier) w.uint32((field << 3) | 2).fork().uint32(10).string(identifier).ldelim();
}

export interface ResponseParts {
  readonly version: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly EncodedResource[];
  readonly controlPlaneId?: string;
}

function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n >>>= 7;
    size++;
  }
  return size;
}

function putVarint(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Length-delimited fields (tag < 16) in order: strings as UTF-8, bytes as they are, nested messages. */
interface Field {
  readonly tag: number;
  readonly value: string | Uint8Array | readonly Field[];
}

/** Sizes of the values of `fields` (and of nested fields), in the order `writeFields` visits them. */
function measure(fields: readonly Field[], sizes: number[]): number {
  let total = 0;
  for (const { value } of fields) {
    const at = sizes.length;
    sizes.push(0);
    const length = typeof value === 'string' ? Buffer.byteLength(value) : value instanceof Uint8Array ? value.byteLength : measure(value, sizes);
    sizes[at] = length;
    total += 1 + varintSize(length) + length;
  }
  return total;
}

function writeFields(buf: Buffer, pos: number, fields: readonly Field[], sizes: readonly number[], next: { i: number }): number {
  for (const { tag, value } of fields) {
    buf[pos++] = (tag << 3) | 2;
    pos = putVarint(buf, pos, sizes[next.i++]!);
    if (typeof value === 'string') pos += buf.write(value, pos, 'utf8');
    else if (value instanceof Uint8Array) {
      buf.set(value, pos);
      pos += value.byteLength;
    } else pos = writeFields(buf, pos, value, sizes, next);
  }
  return pos;
}

/**
 * Writes length-delimited fields into one buffer sized up front: a response copies every
 * resource's bytes exactly once, straight from the cache (a protobufjs Writer records an
 * operation per field and copies again when it finishes; wrapping each resource in an Any
 * first would keep a second copy of its bytes).
 */
function encodeFields(fields: readonly Field[]): Buffer {
  const sizes: number[] = [];
  const buf = Buffer.allocUnsafe(measure(fields, sizes));
  writeFields(buf, 0, fields, sizes, { i: 0 });
  return buf;
}

/** envoy.service.discovery.v3.DiscoveryResponse */
export function encodeDiscoveryResponse(p: ResponseParts): Buffer {
  const fields: Field[] = [{ tag: 1, value: p.version }];
  for (const r of p.resources) {
    fields.push({
      tag: 2,
      value: [
        { tag: 1, value: r.typeUrl },
        { tag: 2, value: r.bytes },
      ],
    });
  }
  fields.push({ tag: 4, value: p.typeUrl }, { tag: 5, value: p.nonce });
  if (p.controlPlaneId) fields.push({ tag: 6, value: [{ tag: 1, value: p.controlPlaneId }] });
  return encodeFields(fields);
}

/** envoy.service.discovery.v3.DeltaDiscoveryResponse */
export function encodeDeltaDiscoveryResponse(p: ResponseParts & { readonly removed: readonly string[] }): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(10).string(p.version);
  for (const r of p.resources) {
    w.uint32(18).fork();
    w.uint32(10).string(r.version);
    w.uint32(18).bytes(anyBytesOf(r));
    w.uint32(26).string(r.name);
    w.ldelim();
  }
  w.uint32(34).string(p.typeUrl);
  w.uint32(42).string(p.nonce);
  for (const name of p.removed) w.uint32(50).string(name);
  controlPlane(w, 7, p.controlPlaneId);
  return asBuffer(w.finish());
}

const identity = (b: Buffer): Buffer => b;

/** grpc-js definition of the ADS service (ads.proto; names from @aviary/xds-api). */
export function adsServiceDefinition(): ServiceDefinition {
  return {
    StreamAggregatedResources: {
      path: AdsService.sotw.path,
      requestStream: true,
      responseStream: true,
      requestSerialize: () => {
        throw new Error('server side only');
      },
      requestDeserialize: decodeDiscoveryRequest,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: 'streamAggregatedResources',
    },
    DeltaAggregatedResources: {
      path: AdsService.delta.path,
      requestStream: true,
      responseStream: true,
      requestSerialize: () => {
        throw new Error('server side only');
      },
      requestDeserialize: decodeDeltaDiscoveryRequest,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: 'deltaAggregatedResources',
    },
  };
}
