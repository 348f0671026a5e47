import protobuf from 'protobufjs';
import { AviaryError } from '@aviary/errors';
import { TYPE_URL_PREFIX, typeNameOf } from '@aviary/xds-api';
import { ANY, canonicalMessage, fail, fullNameOf, isPlainObject } from './canonical';
import type { CanonicalMessage } from './canonical';
import { lookupType } from './root';

/** An Any on the wire: what a resource's `typed_config` becomes after packing. */
export interface PackedAny {
  readonly type_url: string;
  readonly value: Uint8Array;
}

/** Wire forms of canonical `{ '@type', ... }` Anys (shared ones come from `canonicalMessage`'s cache). */
const wireOfAny = new WeakMap<CanonicalMessage, Record<string, unknown>>();

/** Converts canonical form into what protobufjs `fromObject` takes: nested Anys packed. */
function toWire(type: protobuf.Type, value: CanonicalMessage): Record<string, unknown> {
  if (fullNameOf(type) === ANY) {
    const atType = value['@type'];
    if (typeof atType !== 'string') return value;
    const known = wireOfAny.get(value);
    if (known) return known;
    const inner = lookupType(typeNameOf(atType));
    const rest = Object.fromEntries(Object.entries(value).filter(([k]) => k !== '@type'));
    const wire = { type_url: atType, value: encodeMessage(inner, rest) };
    wireOfAny.set(value, wire);
    return wire;
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    const resolved = field?.resolvedType;
    if (!(resolved instanceof protobuf.Type)) {
      out[key] = v;
    } else if (field instanceof protobuf.MapField) {
      out[key] = Object.fromEntries(Object.entries(v as Record<string, CanonicalMessage>).map(([k, m]) => [k, toWire(resolved, m)]));
    } else if (field?.repeated) {
      out[key] = (v as CanonicalMessage[]).map((m) => toWire(resolved, m));
    } else {
      out[key] = toWire(resolved, v as CanonicalMessage);
    }
  }
  return out;
}

function encodeMessage(type: protobuf.Type, canonical: CanonicalMessage): Uint8Array {
  return type.encode(type.fromObject(toWire(type, canonical))).finish();
}

/** Verifies and encodes a message of `typeName` (full name). */
export function encodeMessageOf(typeName: string, obj: unknown): Uint8Array {
  const type = lookupType(typeName);
  return encodeMessage(type, canonicalMessage(type, obj));
}

/**
 * Packs `obj` as an Any of `typeName` (`envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`).
 * Unknown fields, wrong scalar types and unknown enum names are errors (protobufjs `fromObject`
 * would drop or coerce them silently). Nested Anys may be given as `{ '@type', ...fields }`.
 */
export function packAny(typeName: string, obj: unknown): PackedAny {
  const name = typeNameOf(typeName);
  return { type_url: TYPE_URL_PREFIX + name, value: encodeMessageOf(name, obj) };
}

/** Verifies and encodes a resource of a type URL. */
export function encodeResource(typeUrl: string, obj: unknown): Uint8Array {
  return encodeMessageOf(typeNameOf(typeUrl), obj);
}

/** Decodes a resource into canonical form (nested Anys expanded). */
export function decodeResource(typeUrl: string, bytes: Uint8Array): CanonicalMessage {
  return decodeMessageOf(typeNameOf(typeUrl), bytes);
}

export function decodeMessageOf(typeName: string, bytes: Uint8Array): CanonicalMessage {
  const type = lookupType(typeName);
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (cause) {
    throw new AviaryError('INVALID_ARGUMENT', 'XDS_DECODE_FAILED', `cannot decode ${typeName}: ${(cause as Error).message}`, { type: typeName });
  }
  return canonicalMessage(type, message);
}

/** Unpacks an Any (packed or canonical) into canonical form of its inner message. */
export function unpackAny(any: unknown): { typeUrl: string; message: CanonicalMessage } {
  const canonical = canonicalMessage(lookupType(ANY), any, 'Any');
  const typeUrl = (canonical['@type'] ?? canonical.type_url) as string;
  if (canonical['@type'] === undefined) fail('Any', `cannot unpack ${typeUrl}: its proto is not loaded`);
  const { '@type': _drop, ...message } = canonical;
  return { typeUrl, message };
}

/** Canonical form of a resource without encoding it. */
export function canonicalResource(typeUrl: string, obj: unknown): CanonicalMessage {
  return canonicalMessage(lookupType(typeNameOf(typeUrl)), obj);
}

function firstDifference(a: unknown, b: unknown, path: string): string | undefined {
  if (Object.is(a, b)) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: length ${a.length} ≠ ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) {
      const d = firstDifference(a[k], b[k], `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return `${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
}

/**
 * Encodes `obj`, decodes the bytes and compares with the canonical form of `obj`; throws
 * `XDS_ROUND_TRIP_MISMATCH` naming the first differing path. Returns the encoded bytes.
 */
export function assertRoundTrip(typeUrl: string, obj: unknown): Uint8Array {
  const canonical = canonicalResource(typeUrl, obj);
  const bytes = encodeMessage(lookupType(typeNameOf(typeUrl)), canonical);
  const decoded = decodeResource(typeUrl, bytes);
  const diff = firstDifference(canonical, decoded, typeNameOf(typeUrl));
  if (diff) throw new AviaryError('INTERNAL', 'XDS_ROUND_TRIP_MISMATCH', `resource does not round-trip: ${diff}`, { typeUrl, diff });
  return bytes;
}
