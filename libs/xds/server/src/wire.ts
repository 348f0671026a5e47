import { hash } from 'node:crypto';
import protobuf, { type IConversionOptions } from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { AdsService, MessageName } from '@aviary/xds-api';
import type { EncodedResource } from '@aviary/xds-cache';
import { lookupType, structToJs, varint32Size, writeVarint32 } from '@aviary/xds-protos';

/**
 * Wire codecs of the ADS service. Requests are decoded with protobufjs; responses are written
 * by hand so each resource's bytes (encoded once in the cache) are copied in as they are, once.
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

const toObjectOptions: IConversionOptions = { longs: Number, enums: String, bytes: String, defaults: false, arrays: true, objects: true };

/** A decoded Node's metadata (a Struct) as plain JSON. */
function plainNode(node: Record<string, unknown> | undefined): void {
  if (node?.metadata) node.metadata = structToJs(node.metadata as Parameters<typeof structToJs>[0]);
}

/** protobufjs's decode and conversion to a plain object; `nodeOf` names the Node in it, whose metadata becomes plain JSON. */
function decodeWith<T>(typeName: string, nodeOf = (obj: Record<string, unknown>): unknown => obj.node): (buf: Uint8Array) => T {
  const type = lookupType(typeName);
  return (buf) => {
    const obj = type.toObject(type.decode(buf), toObjectOptions) as Record<string, unknown>;
    plainNode(nodeOf(obj) as Record<string, unknown> | undefined);
    return obj as T;
  };
}

export const decodeDeltaDiscoveryRequest = decodeWith<DeltaDiscoveryRequest>(AdsService.delta.request);
/** The DiscoveryRequest decoder `decodeDiscoveryRequest` must agree with (its spec compares them). */
export const decodeDiscoveryRequestWithProtobufjs = decodeWith<DiscoveryRequest>(AdsService.sotw.request);
const decodeNode = decodeWith<WireNode>(MessageName.Node, (node) => node);
const decodeStatus = decodeWith<ErrorDetail>('google.rpc.Status');

/**
 * Resource name lists of SotW requests by their encoded bytes. Every ACK repeats the names of
 * the request before it, and proxies alike (the sidecars of one namespace under one Sidecar)
 * subscribe to the same ~100 names, so most requests' lists were decoded before: one hash of the
 * encoded list finds the frozen array, instead of a string per name. Bounded in entries and per
 * entry; emptied when full.
 */
const nameLists = new Map<string, { readonly bytes: Buffer; readonly names: readonly string[] }>();
const NAME_LISTS_MAX = 1024;
const NAME_LIST_MAX_BYTES = 64 * 1024;

/**
 * The names in `buf[start, end)`: from the first name's field key to the end of the last name.
 * Those bytes decide the names (keys and lengths are part of them, and so is any other field
 * between two names), so a list is found by their SHA-256 and taken after comparing the bytes.
 */
function nameList(buf: Buffer, start: number, end: number): readonly string[] {
  if (end - start > NAME_LIST_MAX_BYTES) return namesIn(buf, start, end);
  const key = hash('sha256', buf.subarray(start, end), 'base64');
  const known = nameLists.get(key);
  if (known !== undefined && known.bytes.compare(buf, start, end) === 0) return known.names;
  const names = Object.freeze(namesIn(buf, start, end));
  if (nameLists.size >= NAME_LISTS_MAX) nameLists.clear();
  nameLists.set(key, { bytes: Buffer.from(buf.subarray(start, end)), names });
  return names;
}

/** Reads the names between `start` and `end` (other fields there were read by the caller). */
function namesIn(buf: Buffer, start: number, end: number): string[] {
  const reader = protobuf.Reader.create(buf);
  reader.pos = start;
  reader.len = end;
  const names: string[] = [];
  while (reader.pos < end) {
    const key = reader.uint32();
    if (key === RESOURCE_NAME_KEY) names.push(reader.string());
    else reader.skipType(key & 7);
  }
  return names;
}

const RESOURCE_NAME_KEY = (3 << 3) | 2;

/**
 * A DiscoveryRequest as plain data, as `decodeDiscoveryRequestWithProtobufjs` gives it (unset
 * fields absent, `resource_names` always an array, Node metadata as plain JSON), read field by
 * field: the names through `nameList`; a Node (the first request of a stream) and an error
 * detail (a NACK) by protobufjs; `resource_locators` (7, dynamic parameters, which pilot does not
 * serve) skipped. The array may be shared and is frozen. A known field with another wire type
 * than its own is an error, where protobufjs reads it as its own type anyway.
 */
export function decodeDiscoveryRequest(buf: Buffer): DiscoveryRequest {
  const reader = protobuf.Reader.create(buf);
  const out: { -readonly [K in keyof DiscoveryRequest]: DiscoveryRequest[K] } = {};
  let namesStart = -1;
  let namesEnd = -1;
  while (reader.pos < reader.len) {
    const at = reader.pos;
    const key = reader.uint32();
    const field = key >>> 3;
    if (field >= 1 && field <= 7 && (key & 7) !== 2) throw new Error(`DiscoveryRequest field ${field} has wire type ${key & 7}, want 2 (length-delimited)`);
    switch (field) {
      case 1:
        out.version_info = reader.string();
        break;
      case 2:
        out.node = decodeNode(reader.bytes());
        break;
      case 3:
        if (namesStart < 0) namesStart = at;
        reader.skip(reader.uint32());
        namesEnd = reader.pos;
        break;
      case 4:
        out.type_url = reader.string();
        break;
      case 5:
        out.response_nonce = reader.string();
        break;
      case 6:
        out.error_detail = decodeStatus(reader.bytes());
        break;
      default:
        reader.skipType(key & 7);
    }
  }
  out.resource_names = (namesStart < 0 ? [] : nameList(buf, namesStart, namesEnd)) as string[];
  return out;
}

export interface ResponseParts {
  readonly version: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly EncodedResource[];
  readonly controlPlaneId?: string;
}

export interface DeltaResponseParts extends ResponseParts {
  readonly removed: readonly string[];
}

/**
 * What a stream writes to grpc-js: the parts of a response, not its bytes. The service's
 * `responseSerialize` encodes it when grpc-js frames it (see `serializeResponse`), so a queued
 * response holds references to the cached resource bytes rather than a copy of them.
 */
export type PendingResponse = (ResponseParts & { readonly protocol: 'sotw' }) | (DeltaResponseParts & { readonly protocol: 'delta' });

/** The bytes of a response's resources: most of its size, without encoding it. */
export function resourceBytes(r: ResponseParts): number {
  let n = 0;
  for (const resource of r.resources) n += resource.bytes.byteLength;
  return n;
}

/** Size of a length-delimited field (tag < 16) whose value is `length` bytes long. */
function fieldSize(length: number): number {
  return 1 + varint32Size(length) + length;
}

/** Writes the key and length of a length-delimited field (tag < 16); returns where its value goes. */
function putHeader(buf: Buffer, pos: number, tag: number, length: number): number {
  buf[pos++] = (tag << 3) | 2;
  return writeVarint32(buf, pos, length);
}

/** `byteLength` is the string's UTF-8 length; equal to its length only when every character is ASCII. */
function putString(buf: Buffer, pos: number, tag: number, value: string, byteLength: number): number {
  pos = putHeader(buf, pos, tag, byteLength);
  if (byteLength === value.length && byteLength < 64) {
    for (let i = 0; i < byteLength; i++) buf[pos + i] = value.charCodeAt(i);
    return pos + byteLength;
  }
  return pos + buf.write(value, pos, byteLength, 'utf8');
}

function putBytes(buf: Buffer, pos: number, tag: number, value: Uint8Array): number {
  pos = putHeader(buf, pos, tag, value.byteLength);
  buf.set(value, pos);
  return pos + value.byteLength;
}

/** UTF-8 lengths of the type URLs (a handful of constants). */
const typeUrlLengths = new Map<string, number>();

function typeUrlLength(typeUrl: string): number {
  let length = typeUrlLengths.get(typeUrl);
  if (length === undefined) {
    length = Buffer.byteLength(typeUrl);
    if (typeUrlLengths.size < 64) typeUrlLengths.set(typeUrl, length);
  }
  return length;
}

/** google.protobuf.Any { type_url = 1; value = 2 } of a resource: the length of its body. */
function anySize(r: EncodedResource): number {
  return fieldSize(typeUrlLength(r.typeUrl)) + fieldSize(r.bytes.byteLength);
}

/** A resource as field 2 holding its Any: the response's `resources` element, a delta Resource's `resource`. */
function entrySize(r: EncodedResource): number {
  return r.entry !== undefined ? r.entry.length : fieldSize(anySize(r));
}

function putEntry(buf: Buffer, pos: number, r: EncodedResource): number {
  const entry = r.entry;
  if (entry !== undefined) {
    buf.set(entry, pos);
    return pos + entry.length;
  }
  pos = putHeader(buf, pos, 2, anySize(r));
  pos = putString(buf, pos, 1, r.typeUrl, typeUrlLength(r.typeUrl));
  return putBytes(buf, pos, 2, r.bytes);
}

/** UTF-8 lengths of a response's strings, measured once and read back in the same order when writing. */
class Lengths {
  private readonly values: number[] = [];
  private next = 0;

  measure(value: string): number {
    const length = Buffer.byteLength(value);
    this.values.push(length);
    return length;
  }

  take(): number {
    return this.values[this.next++]!;
  }
}

/** config.core.v3.ControlPlane { identifier = 1 }, as field `tag`. */
function controlPlaneSize(identifier: string | undefined, lengths: Lengths): number {
  return identifier ? fieldSize(fieldSize(lengths.measure(identifier))) : 0;
}

function putControlPlane(buf: Buffer, pos: number, tag: number, identifier: string | undefined, lengths: Lengths): number {
  if (!identifier) return pos;
  const length = lengths.take();
  pos = putHeader(buf, pos, tag, fieldSize(length));
  return putString(buf, pos, 1, identifier, length);
}

/**
 * envoy.service.discovery.v3.DiscoveryResponse, fields in number order as protobufjs writes
 * them: version_info 1, resources 2 (each an Any), type_url 4, nonce 5, control_plane 6. Each
 * resource's entry (its Any as field 2) is copied once, straight from the cache.
 */
function sotwSize(p: ResponseParts, lengths: Lengths): number {
  let size = fieldSize(lengths.measure(p.version));
  for (const r of p.resources) size += entrySize(r);
  size += fieldSize(lengths.measure(p.typeUrl)) + fieldSize(lengths.measure(p.nonce));
  return size + controlPlaneSize(p.controlPlaneId, lengths);
}

function putSotw(buf: Buffer, start: number, p: ResponseParts, lengths: Lengths): number {
  let pos = putString(buf, start, 1, p.version, lengths.take());
  for (const r of p.resources) pos = putEntry(buf, pos, r);
  pos = putString(buf, pos, 4, p.typeUrl, lengths.take());
  pos = putString(buf, pos, 5, p.nonce, lengths.take());
  return putControlPlane(buf, pos, 6, p.controlPlaneId, lengths);
}

/**
 * envoy.service.discovery.v3.DeltaDiscoveryResponse: system_version_info 1, resources 2 (each a
 * Resource { version 1, resource 2 (Any), name 3 }), type_url 4, nonce 5, removed_resources 6,
 * control_plane 7.
 */
function deltaSize(p: DeltaResponseParts, lengths: Lengths): number {
  let size = fieldSize(lengths.measure(p.version));
  for (const r of p.resources) size += fieldSize(fieldSize(lengths.measure(r.version)) + entrySize(r) + fieldSize(lengths.measure(r.name)));
  size += fieldSize(lengths.measure(p.typeUrl)) + fieldSize(lengths.measure(p.nonce));
  for (const name of p.removed) size += fieldSize(lengths.measure(name));
  return size + controlPlaneSize(p.controlPlaneId, lengths);
}

function putDelta(buf: Buffer, start: number, p: DeltaResponseParts, lengths: Lengths): number {
  let pos = putString(buf, start, 1, p.version, lengths.take());
  for (const r of p.resources) {
    const versionLength = lengths.take();
    const nameLength = lengths.take();
    pos = putHeader(buf, pos, 2, fieldSize(versionLength) + entrySize(r) + fieldSize(nameLength));
    pos = putString(buf, pos, 1, r.version, versionLength);
    pos = putEntry(buf, pos, r);
    pos = putString(buf, pos, 3, r.name, nameLength);
  }
  pos = putString(buf, pos, 4, p.typeUrl, lengths.take());
  pos = putString(buf, pos, 5, p.nonce, lengths.take());
  for (const name of p.removed) pos = putString(buf, pos, 6, name, lengths.take());
  return putControlPlane(buf, pos, 7, p.controlPlaneId, lengths);
}

/** envoy.service.discovery.v3.DiscoveryResponse in a buffer of its own. */
export function encodeDiscoveryResponse(p: ResponseParts): Buffer {
  const lengths = new Lengths();
  const buf = Buffer.allocUnsafe(sotwSize(p, lengths));
  putSotw(buf, 0, p, lengths);
  return buf;
}

/** envoy.service.discovery.v3.DeltaDiscoveryResponse in a buffer of its own. */
export function encodeDeltaDiscoveryResponse(p: DeltaResponseParts): Buffer {
  const lengths = new Lengths();
  const buf = Buffer.allocUnsafe(deltaSize(p, lengths));
  putDelta(buf, 0, p, lengths);
  return buf;
}

/**
 * Encodes a pending response into a buffer of at least `offset` + its size, got from `allocate`,
 * starting at `offset` (the bytes before are the caller's, e.g. gRPC's 5-byte message prefix);
 * returns the buffer's view up to the response's end.
 */
export function encodeResponse(r: PendingResponse, offset: number, allocate: (length: number) => Buffer): Buffer {
  const lengths = new Lengths();
  const size = r.protocol === 'sotw' ? sotwSize(r, lengths) : deltaSize(r, lengths);
  const buf = allocate(offset + size);
  const end = r.protocol === 'sotw' ? putSotw(buf, offset, r, lengths) : putDelta(buf, offset, r, lengths);
  return buf.subarray(0, end);
}

/** The scratch buffer is kept up to this size; a larger response gets a buffer of its own. */
const SCRATCH_MAX = 16 * 1024 * 1024;
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

function scratchOf(size: number): Buffer {
  if (size > SCRATCH_MAX) return Buffer.allocUnsafe(size);
  if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(size, scratch.length * 2)));
  return scratch;
}

/**
 * Encodes a pending response into one shared scratch buffer and returns a view of it, valid
 * until the next call. This is the ADS service's `responseSerialize`: grpc-js (1.14,
 * `BaseServerInterceptingCall.serializeMessage`) calls it synchronously and copies the result
 * into its own 5-byte-framed buffer before it returns. `installResponseFraming` (framing.ts)
 * replaces that copy for the ADS service; this is the path when it could not be installed.
 */
export function serializeResponse(r: PendingResponse): Buffer {
  return encodeResponse(r, 0, scratchOf);
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
      responseSerialize: serializeResponse,
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
      responseSerialize: serializeResponse,
      responseDeserialize: identity,
      originalName: 'deltaAggregatedResources',
    },
  };
}
