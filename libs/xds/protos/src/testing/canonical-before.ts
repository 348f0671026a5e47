import protobuf from 'protobufjs';
import { AviaryError } from '@aviary/errors';
import { TYPE_URL_PREFIX, typeNameOf } from '@aviary/xds-api';
import { anyKey, deepFreeze } from '../canonical';
import type { CanonicalMessage } from '../canonical';
import { lookupType } from '../root';

/*
 * `canonicalMessage` as it was before the per-type plans of canonical.ts (codec.ts at 4229337),
 * kept verbatim for canonical.spec.ts, which checks that the planned one returns the same
 * canonical objects and throws the same errors. Not exported from the library; not for use
 * outside specs. Its Any caches are its own; the pure helpers that key and freeze them
 * (`anyKey`, `deepFreeze`) are canonical.ts's, unchanged.
 */

const ANY = 'google.protobuf.Any';

function fail(path: string, reason: string): never {
  throw new AviaryError('INVALID_ARGUMENT', 'XDS_RESOURCE_INVALID', `${path}: ${reason}`, { path, reason });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/**
 * protobufjs's `Type.fullName` is a getter that rebuilds the dotted name by walking the parents
 * on every read; the loaded root is never mutated, so the name of a type is cached here.
 */
const fullNames = new WeakMap<protobuf.Type, string>();

function fullNameOf(type: protobuf.Type): string {
  let name = fullNames.get(type);
  if (name === undefined) {
    name = type.fullName.slice(1);
    fullNames.set(type, name);
  }
  return name;
}

const int32 = new Set(['int32', 'sint32', 'sfixed32']);
const uint32 = new Set(['uint32', 'fixed32']);
const int64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);

function scalar(field: protobuf.Field, value: unknown, path: string): unknown {
  const t = field.type;
  if (t === 'string') {
    if (typeof value !== 'string') fail(path, `expected a string, got ${typeof value}`);
    return value;
  }
  if (t === 'bool') {
    if (typeof value !== 'boolean') fail(path, `expected a boolean, got ${typeof value}`);
    return value;
  }
  if (t === 'double' || t === 'float') {
    if (typeof value !== 'number') fail(path, `expected a number, got ${typeof value}`);
    return t === 'float' ? Math.fround(value) : value;
  }
  if (int32.has(t) || uint32.has(t)) {
    if (typeof value !== 'number' || !Number.isInteger(value)) fail(path, `expected an integer, got ${JSON.stringify(value)}`);
    const [min, max] = int32.has(t) ? [-0x80000000, 0x7fffffff] : [0, 0xffffffff];
    if (value < min || value > max) fail(path, `${value} is out of range for ${t}`);
    return value;
  }
  if (int64.has(t)) {
    let n: number;
    if (typeof value === 'number') n = value;
    else if (typeof value === 'string' && /^-?\d+$/.test(value)) n = Number(value);
    else if (typeof value === 'object' && value !== null && typeof (value as { toNumber?: unknown }).toNumber === 'function') n = (value as { toNumber(): number }).toNumber();
    else fail(path, `expected an integer, got ${JSON.stringify(value)}`);
    if (!Number.isSafeInteger(n)) fail(path, `${String(value)} is not a safe integer`);
    if (t.startsWith('u') || t.startsWith('fixed')) {
      if (n < 0) fail(path, `${n} is out of range for ${t}`);
    }
    return n;
  }
  if (t === 'bytes') {
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
    if (typeof value === 'string') return value;
    fail(path, 'expected bytes (Uint8Array or base64 string)');
  }
  return fail(path, `unsupported scalar type ${t}`);
}

function enumValue(en: protobuf.Enum, value: unknown, path: string): string | number {
  if (typeof value === 'string') {
    if (!(value in en.values)) fail(path, `unknown ${en.name} value ${value}`);
    return value;
  }
  if (typeof value === 'number' && Number.isInteger(value)) {
    return en.valuesById[value] ?? value;
  }
  return fail(path, `expected an enum name or number for ${en.name}`);
}

function single(field: protobuf.Field, value: unknown, path: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return canonicalMessageBefore(resolved, value, path);
  if (resolved instanceof protobuf.Enum) return enumValue(resolved, value, path);
  return scalar(field, value, path);
}

/** Verifies `value` against `type` and returns its canonical form. Unknown fields are errors. */
export function canonicalMessageBefore(type: protobuf.Type, value: unknown, path = type.name): CanonicalMessage {
  if (!isPlainObject(value)) fail(path, `expected a ${fullNameOf(type)} object`);
  if (fullNameOf(type) === ANY) return canonicalAny(value, path);
  const out: CanonicalMessage = {};
  for (const key of Object.keys(value)) {
    const raw = value[key];
    if (raw === undefined || raw === null) continue;
    const field = type.fields[key];
    if (!field) {
      const hint = Object.keys(type.fields).find((f) => protobuf.util.camelCase(f) === key);
      fail(`${path}.${key}`, `unknown field of ${fullNameOf(type)}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    const fieldPath = `${path}.${key}`;
    if (field instanceof protobuf.MapField) {
      if (!isPlainObject(raw)) fail(fieldPath, 'expected a map object');
      const entries = Object.entries(raw).filter(([, v]) => v !== undefined && v !== null);
      if (entries.length === 0) continue;
      const map: Record<string, unknown> = {};
      for (const [k, v] of entries) map[k] = single(field, v, `${fieldPath}[${k}]`);
      out[key] = map;
    } else if (field.repeated) {
      if (!Array.isArray(raw)) fail(fieldPath, 'expected an array');
      if (raw.length === 0) continue;
      out[key] = raw.map((v: unknown, i: number) => {
        if (v === undefined || v === null) fail(`${fieldPath}[${i}]`, 'null element');
        return single(field, v, `${fieldPath}[${i}]`);
      });
    } else {
      out[key] = single(field, raw, fieldPath);
    }
  }
  return out;
}

/**
 * Canonical forms of `{ '@type', ...fields }` Anys by their JSON text, and the wire form of
 * each such canonical object. Translators repeat the same nested messages (TLS contexts,
 * filters) in many resources; this verifies and encodes each once. JSON stands for the input
 * only when it has no `null` (which may be NaN or Infinity) and does not throw (BigInt); a
 * canonical object from here is deep-frozen because resources share it.
 */
const anyByJson = new Map<string, CanonicalMessage>();
const ANY_CACHE_MAX = 2048;

/**
 * Canonical forms of `{ '@type', ... }` Anys by the input object, whatever their size: a
 * translator puts one object in several places (an HttpConnectionManager in the mTLS and the
 * plaintext filter chain of a port), and like every input to the encoder it does not change.
 */
const anyByObject = new WeakMap<Record<string, unknown>, CanonicalMessage>();

function canonicalAny(value: Record<string, unknown>, path: string): CanonicalMessage {
  if (value['@type'] === undefined) return canonicalAnyOnce(value, path);
  const seen = anyByObject.get(value);
  if (seen) return seen;
  const key = anyKey(value);
  let canonical: CanonicalMessage | undefined;
  if (key === undefined) {
    canonical = canonicalAnyOnce(value, path);
  } else {
    canonical = anyByJson.get(key);
    if (!canonical) {
      canonical = deepFreeze(canonicalAnyOnce(value, path));
      if (anyByJson.size >= ANY_CACHE_MAX) anyByJson.clear();
      anyByJson.set(key, canonical);
    }
  }
  anyByObject.set(value, canonical);
  return canonical;
}

function canonicalAnyOnce(value: Record<string, unknown>, path: string): CanonicalMessage {
  const atType = value['@type'];
  let typeUrl: unknown;
  let inner: Record<string, unknown> | undefined;
  if (atType !== undefined) {
    typeUrl = atType;
    inner = Object.fromEntries(Object.entries(value).filter(([k]) => k !== '@type'));
  } else {
    for (const key of Object.keys(value)) {
      if (key !== 'type_url' && key !== 'value' && value[key] !== undefined) fail(`${path}.${key}`, 'unknown field of google.protobuf.Any');
    }
    typeUrl = value.type_url;
  }
  if (typeof typeUrl !== 'string' || !typeUrl.startsWith(TYPE_URL_PREFIX) || typeUrl.length === TYPE_URL_PREFIX.length) {
    fail(path, `an Any needs a type URL of the form ${TYPE_URL_PREFIX}<full.Name>, got ${JSON.stringify(typeUrl)}`);
  }
  let type: protobuf.Type | undefined;
  try {
    type = lookupType(typeNameOf(typeUrl));
  } catch {
    type = undefined;
  }
  if (inner) {
    if (!type) fail(path, `cannot pack ${typeUrl}: its proto is not loaded`);
    return { '@type': typeUrl, ...canonicalMessageBefore(type, inner, `${path}<${type.name}>`) };
  }
  const bytes = value.value ?? new Uint8Array(0);
  if (!(bytes instanceof Uint8Array) && typeof bytes !== 'string') fail(`${path}.value`, 'expected bytes');
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'base64') : bytes;
  if (!type) return { type_url: typeUrl, value: Buffer.from(buf).toString('base64') };
  let decoded: protobuf.Message;
  try {
    decoded = type.decode(buf);
  } catch (cause) {
    return fail(path, `the packed ${type.name} does not decode: ${(cause as Error).message}`);
  }
  return { '@type': typeUrl, ...canonicalMessageBefore(type, decoded, `${path}<${type.name}>`) };
}
