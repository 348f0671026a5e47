import protobuf from 'protobufjs';
import { AviaryError } from '@aviary/errors';
import { typeNameOf } from '@aviary/xds-api';
import { ANY } from './canonical';
import type { CanonicalMessage } from './canonical';
import { lookupType } from './root';
import {
  SHORT_STRING,
  base64Length,
  int32Size,
  int64Size,
  sint64Size,
  utf8ShortLength,
  varint32Size,
  writeDouble,
  writeFixed32,
  writeFixed64,
  writeFloat,
  writeInt32,
  writeInt64,
  writeShortString,
  writeSint64,
  writeVarint32,
} from './wire';

/**
 * Writing canonical form straight to the wire, in two passes over the message: the first
 * counts the bytes of every length-delimited part, the second writes them into one buffer of
 * exactly that size. Per message type, a plan of its fields in number order says how each is
 * written. The bytes are those protobufjs's Writer gave `type.encode(type.fromObject(toWire(…)))`
 * for a canonical object. Field presence is protobufjs's: a field is written when it is set
 * (also to its default), a repeated field or map when it has an element.
 */

/** How one value of a field is written: a scalar type of protobufjs, or a message. */
const enum Kind {
  Double,
  Float,
  Int32,
  Uint32,
  Sint32,
  Fixed32,
  Int64,
  Sint64,
  Fixed64,
  Bool,
  String,
  Bytes,
  Enum,
  Message,
}

const kindOfScalar: Record<string, Kind> = {
  double: Kind.Double,
  float: Kind.Float,
  int32: Kind.Int32,
  uint32: Kind.Uint32,
  sint32: Kind.Sint32,
  fixed32: Kind.Fixed32,
  sfixed32: Kind.Fixed32,
  int64: Kind.Int64,
  uint64: Kind.Int64,
  sint64: Kind.Sint64,
  fixed64: Kind.Fixed64,
  sfixed64: Kind.Fixed64,
  bool: Kind.Bool,
  string: Kind.String,
  bytes: Kind.Bytes,
};

const enum Shape {
  Single,
  Repeated,
  /** A repeated scalar as one length-delimited run of values. */
  Packed,
  /** Entries `{ 1: key, 2: value }`, each length-delimited. */
  Map,
}

interface PlannedField {
  readonly name: string;
  readonly shape: Shape;
  readonly kind: Kind;
  /** The tag before each value (length-delimited for a packed run, a map entry, a message). */
  readonly tag: number;
  readonly tagSize: number;
  readonly enumValues: Readonly<Record<string, number>> | undefined;
  readonly messageType: protobuf.Type | undefined;
  /** The message type's plan, made on first use: types nest themselves (Struct, Value). */
  messagePlan: Plan | undefined;
  readonly keyKind: Kind;
  /** A map key's tag: field 1 with the key's wire type. */
  readonly keyTag: number;
  /** A map value's tag: field 2 with the value's wire type. */
  readonly valueTag: number;
}

interface Plan {
  readonly isAny: boolean;
  readonly fields: readonly PlannedField[];
}

const plans = new WeakMap<protobuf.Type, Plan>();
/** Inner bytes of canonical `{ '@type', … }` Anys; those from `canonicalAny`'s cache are shared by many resources. */
const anyValues = new WeakMap<CanonicalMessage, Uint8Array>();

function planField(field: protobuf.Field): PlannedField {
  field.resolve();
  const resolved = field.resolvedType;
  const messageType = resolved instanceof protobuf.Type ? resolved : undefined;
  const enumValues = resolved instanceof protobuf.Enum ? resolved.values : undefined;
  const wireName = enumValues ? 'int32' : field.type;
  const wireType = messageType ? 2 : (protobuf.types.basic as Record<string, number>)[wireName]!;
  const kind = messageType ? Kind.Message : enumValues ? Kind.Enum : kindOfScalar[field.type]!;
  const map = field instanceof protobuf.MapField;
  const packed = field.repeated && !messageType && field.packed && (protobuf.types.packed as Record<string, number | undefined>)[wireName] !== undefined;
  const shape = map ? Shape.Map : packed ? Shape.Packed : field.repeated ? Shape.Repeated : Shape.Single;
  const tag = ((field.id << 3) | (shape === Shape.Single || shape === Shape.Repeated ? wireType : 2)) >>> 0;
  return {
    name: field.name,
    shape,
    kind,
    tag,
    tagSize: varint32Size(tag),
    enumValues,
    messageType,
    messagePlan: undefined,
    keyKind: map ? kindOfScalar[field.keyType]! : Kind.String,
    keyTag: map ? 8 | (protobuf.types.mapKey as Record<string, number>)[field.keyType]! : 0,
    valueTag: 16 | wireType,
  };
}

function planOf(type: protobuf.Type): Plan {
  let plan = plans.get(type);
  if (!plan) {
    plan = { isAny: type === lookupType(ANY), fields: [...type.fieldsArray].sort((a, b) => a.id - b.id).map(planField) };
    plans.set(type, plan);
  }
  return plan;
}

function messagePlanOf(field: PlannedField): Plan {
  return (field.messagePlan ??= planOf(field.messageType!));
}

/*
 * The sizes the first pass counts, in the order the second pass needs them: the body of each
 * nested message and map entry (its slot taken before its fields are counted), the byte length
 * of each long string and of each base64 string. One stack for all encodes: an Any's inner
 * message, encoded during the outer message's first pass, takes its sizes above the outer ones
 * and gives them back when done. The second pass never encodes (the Anys' bytes are cached by
 * then), so one read cursor serves.
 */
let sizes = new Int32Array(4096);
let top = 0;
let cursor = 0;

function reserve(): number {
  if (top === sizes.length) {
    const grown = new Int32Array(sizes.length * 2);
    grown.set(sizes);
    sizes = grown;
  }
  return top++;
}

function push(size: number): void {
  sizes[reserve()] = size;
}

/** The Any's inner message, encoded once per canonical Any object. */
function anyBytesOf(value: CanonicalMessage, atType: string): Uint8Array {
  let inner = anyValues.get(value);
  if (!inner) {
    // The inner message's plan skips the `@type` key: it is no field of that message.
    inner = encode(planOf(lookupType(typeNameOf(atType))), value);
    anyValues.set(value, inner);
  }
  return inner;
}

function stringSize(s: string): number {
  if (s.length < SHORT_STRING) return 1 + utf8ShortLength(s);
  const n = Buffer.byteLength(s);
  push(n);
  return varint32Size(n) + n;
}

/** The bytes of a scalar value without its tag (with its length prefix for a string or bytes). */
function scalarSize(kind: Kind, v: unknown, enumValues: PlannedField['enumValues']): number {
  switch (kind) {
    case Kind.Double:
    case Kind.Fixed64:
      return 8;
    case Kind.Float:
    case Kind.Fixed32:
      return 4;
    case Kind.Int32:
      return int32Size((v as number) | 0);
    case Kind.Enum:
      return int32Size((typeof v === 'number' ? v : enumValues![v as string]!) | 0);
    case Kind.Uint32:
      return varint32Size((v as number) >>> 0);
    case Kind.Sint32:
      return varint32Size((((v as number) << 1) ^ ((v as number) >> 31)) >>> 0);
    case Kind.Int64:
      return int64Size(v);
    case Kind.Sint64:
      return sint64Size(v);
    case Kind.Bool:
      return 1;
    case Kind.String:
      return stringSize(v as string);
    case Kind.Bytes: {
      let n: number;
      if (typeof v === 'string') push((n = base64Length(v)));
      else n = (v as ArrayLike<number>).length >>> 0;
      return varint32Size(n) + n;
    }
    case Kind.Message:
      throw new AviaryError('INTERNAL', 'XDS_ENCODE_FAILED', 'a message is not a scalar');
  }
}

function writeScalar(kind: Kind, v: unknown, enumValues: PlannedField['enumValues'], buf: Buffer, pos: number): number {
  switch (kind) {
    case Kind.Double:
      return writeDouble(buf, pos, v as number);
    case Kind.Float:
      return writeFloat(buf, pos, v as number);
    case Kind.Int32:
      return writeInt32(buf, pos, (v as number) | 0);
    case Kind.Enum:
      return writeInt32(buf, pos, (typeof v === 'number' ? v : enumValues![v as string]!) | 0);
    case Kind.Uint32:
      return writeVarint32(buf, pos, (v as number) >>> 0);
    case Kind.Sint32:
      return writeVarint32(buf, pos, (((v as number) << 1) ^ ((v as number) >> 31)) >>> 0);
    case Kind.Fixed32:
      return writeFixed32(buf, pos, (v as number) >>> 0);
    case Kind.Int64:
      return writeInt64(buf, pos, v);
    case Kind.Sint64:
      return writeSint64(buf, pos, v);
    case Kind.Fixed64:
      return writeFixed64(buf, pos, v);
    case Kind.Bool:
      buf[pos] = v ? 1 : 0;
      return pos + 1;
    case Kind.String: {
      const s = v as string;
      if (s.length < SHORT_STRING) return writeShortString(buf, pos, s);
      const n = sizes[cursor++]!;
      pos = writeVarint32(buf, pos, n);
      return pos + buf.write(s, pos, n, 'utf8');
    }
    case Kind.Bytes: {
      if (typeof v === 'string') {
        const n = sizes[cursor++]!;
        pos = writeVarint32(buf, pos, n);
        return pos + buf.write(v, pos, n, 'base64');
      }
      const bytes = v as ArrayLike<number>;
      pos = writeVarint32(buf, pos, bytes.length >>> 0);
      buf.set(bytes, pos);
      return pos + (bytes.length >>> 0);
    }
    case Kind.Message:
      throw new AviaryError('INTERNAL', 'XDS_ENCODE_FAILED', 'a message is not a scalar');
  }
}

/** Pass 1: the bytes of a value without its tag; a message's body size goes to its slot. */
function valueSize(field: PlannedField, v: unknown): number {
  if (field.kind !== Kind.Message) return scalarSize(field.kind, v, field.enumValues);
  const slot = reserve();
  const body = messageSize(messagePlanOf(field), v as CanonicalMessage);
  sizes[slot] = body;
  return varint32Size(body) + body;
}

function messageSize(plan: Plan, value: CanonicalMessage): number {
  if (plan.isAny) {
    const atType = value['@type'];
    if (typeof atType === 'string') {
      const typeUrl = 1 + stringSize(atType);
      const inner = anyBytesOf(value, atType).length;
      return typeUrl + 1 + varint32Size(inner) + inner;
    }
  }
  let size = 0;
  const fields = plan.fields;
  for (let f = 0; f < fields.length; f++) {
    const field = fields[f]!;
    const v = value[field.name];
    if (v === undefined || v === null) continue;
    switch (field.shape) {
      case Shape.Single:
        size += field.tagSize + valueSize(field, v);
        break;
      case Shape.Repeated: {
        const list = v as readonly unknown[];
        for (let i = 0; i < list.length; i++) size += field.tagSize + valueSize(field, list[i]);
        break;
      }
      case Shape.Packed: {
        const list = v as readonly unknown[];
        if (list.length === 0) break;
        const slot = reserve();
        let body = 0;
        for (let i = 0; i < list.length; i++) body += scalarSize(field.kind, list[i], field.enumValues);
        sizes[slot] = body;
        size += field.tagSize + varint32Size(body) + body;
        break;
      }
      case Shape.Map: {
        const map = v as Record<string, unknown>;
        for (const k of Object.keys(map)) {
          const slot = reserve();
          const body = 1 + scalarSize(field.keyKind, k, undefined) + 1 + valueSize(field, map[k]);
          sizes[slot] = body;
          size += field.tagSize + varint32Size(body) + body;
        }
        break;
      }
    }
  }
  return size;
}

/** Pass 2: writes a value with its tag at `pos`; returns the position after it. */
function writeValue(field: PlannedField, tag: number, v: unknown, buf: Buffer, pos: number): number {
  pos = writeVarint32(buf, pos, tag);
  if (field.kind !== Kind.Message) return writeScalar(field.kind, v, field.enumValues, buf, pos);
  pos = writeVarint32(buf, pos, sizes[cursor++]!);
  return writeMessage(messagePlanOf(field), v as CanonicalMessage, buf, pos);
}

function writeMessage(plan: Plan, value: CanonicalMessage, buf: Buffer, pos: number): number {
  if (plan.isAny) {
    const atType = value['@type'];
    if (typeof atType === 'string') {
      buf[pos++] = 10;
      pos = writeScalar(Kind.String, atType, undefined, buf, pos);
      const inner = anyValues.get(value)!;
      buf[pos++] = 18;
      pos = writeVarint32(buf, pos, inner.length);
      buf.set(inner, pos);
      return pos + inner.length;
    }
  }
  const fields = plan.fields;
  for (let f = 0; f < fields.length; f++) {
    const field = fields[f]!;
    const v = value[field.name];
    if (v === undefined || v === null) continue;
    switch (field.shape) {
      case Shape.Single:
        pos = writeValue(field, field.tag, v, buf, pos);
        break;
      case Shape.Repeated: {
        const list = v as readonly unknown[];
        for (let i = 0; i < list.length; i++) pos = writeValue(field, field.tag, list[i], buf, pos);
        break;
      }
      case Shape.Packed: {
        const list = v as readonly unknown[];
        if (list.length === 0) break;
        pos = writeVarint32(buf, writeVarint32(buf, pos, field.tag), sizes[cursor++]!);
        for (let i = 0; i < list.length; i++) pos = writeScalar(field.kind, list[i], field.enumValues, buf, pos);
        break;
      }
      case Shape.Map: {
        const map = v as Record<string, unknown>;
        for (const k of Object.keys(map)) {
          pos = writeVarint32(buf, writeVarint32(buf, pos, field.tag), sizes[cursor++]!);
          buf[pos++] = field.keyTag;
          pos = writeScalar(field.keyKind, k, undefined, buf, pos);
          pos = writeValue(field, field.valueTag, map[k], buf, pos);
        }
        break;
      }
    }
  }
  return pos;
}

/**
 * Both passes over one message, its bytes in a buffer of their own (the caller may keep them),
 * after `headroom(size)` bytes left for the caller.
 */
function encode(plan: Plan, value: CanonicalMessage, headroom?: (size: number) => number): Buffer {
  const base = top;
  const size = messageSize(plan, value);
  const counted = top;
  const start = headroom === undefined ? 0 : headroom(size);
  const buf = Buffer.allocUnsafe(start + size);
  cursor = base;
  const end = writeMessage(plan, value, buf, start);
  top = base;
  if (end !== start + size || cursor !== counted) throw new AviaryError('INTERNAL', 'XDS_ENCODE_FAILED', `counted ${size} bytes, wrote ${end - start}`);
  return buf;
}

/**
 * Encodes a message of `typeName` (full name) that is already canonical, e.g. what
 * `canonicalResource` returned, without verifying it again. The bytes are those of
 * `encodeMessageOf(typeName, canonical)`; anything else (a translator's raw output) must go
 * through `encodeMessageOf`, which rejects what is not canonical.
 */
export function encodeCanonical(typeName: string, canonical: CanonicalMessage): Uint8Array {
  // Not re-entered (only `encode` is, for an Any): the stack starts empty, also after a throw.
  top = 0;
  return encode(planOf(lookupType(typeName)), canonical);
}

/**
 * `encodeCanonical` into a buffer that leaves `headroom(size)` bytes before the message for the
 * caller to fill (a header that depends on the message's size): one buffer, no copy. The
 * message's bytes are the buffer's tail.
 */
export function encodeCanonicalAfter(typeName: string, canonical: CanonicalMessage, headroom: (size: number) => number): Buffer {
  top = 0;
  return encode(planOf(lookupType(typeName)), canonical, headroom);
}
