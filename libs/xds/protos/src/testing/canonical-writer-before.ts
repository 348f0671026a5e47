import protobuf from 'protobufjs';
import { typeNameOf } from '@aviary/xds-api';
import { ANY } from '../canonical';
import type { CanonicalMessage } from '../canonical';
import { lookupType } from '../root';

/*
 * `encodeCanonical` as it was before the two-pass writer of ../canonical-writer.ts (at c294738),
 * on protobufjs's Writer: kept verbatim for canonical-writer-bench.ts, which times and weighs the
 * two, and for the spec's cases where the old writer, not encodeMessageOf, is the reference.
 * Not exported from the library. Its Any cache is its own.
 */

/**
 * Writing canonical form straight to the wire: per message type, a plan of its fields in number
 * order, each with a writer made once. It does what `type.encode(type.fromObject(toWire(…)))`
 * does for a canonical object (the same protobufjs Writer calls in the same order), without the
 * intermediate objects. Field presence is protobufjs's: a field is written when it is set (also
 * to its default), a repeated field or map when it has an element.
 */
type FieldWriter = (w: protobuf.Writer, value: unknown) => void;

interface PlannedField {
  readonly name: string;
  readonly write: FieldWriter;
}

type ScalarMethod = 'double' | 'float' | 'int32' | 'uint32' | 'sint32' | 'fixed32' | 'sfixed32' | 'int64' | 'uint64' | 'sint64' | 'fixed64' | 'sfixed64' | 'bool' | 'string' | 'bytes';

const plans = new WeakMap<protobuf.Type, readonly PlannedField[]>();
/** Inner bytes of canonical `{ '@type', … }` Anys; those from `canonicalAny`'s cache are shared by many resources. */
const anyValues = new WeakMap<CanonicalMessage, Uint8Array>();

function scalarWriter(field: protobuf.Field): (w: protobuf.Writer, value: unknown) => protobuf.Writer {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const byName = resolved.values;
    return (w, v) => w.int32(typeof v === 'number' ? v : byName[v as string]!);
  }
  const method = field.type as ScalarMethod;
  return (w, v) => (w[method] as (value: unknown) => protobuf.Writer)(v);
}

function planField(field: protobuf.Field): PlannedField {
  field.resolve();
  const resolved = field.resolvedType;
  const message = resolved instanceof protobuf.Type ? resolved : undefined;
  const wireName = resolved instanceof protobuf.Enum ? 'int32' : field.type;
  const wireType = (protobuf.types.basic as Record<string, number | undefined>)[wireName];
  const lengthDelimited = ((field.id << 3) | 2) >>> 0;
  const scalar = message ? undefined : scalarWriter(field);
  const one: FieldWriter = message
    ? (w, v) => {
        writeMessage(message, v as CanonicalMessage, w.uint32(lengthDelimited).fork());
        w.ldelim();
      }
    : (w, v) => scalar!(w.uint32(((field.id << 3) | wireType!) >>> 0), v);
  if (field instanceof protobuf.MapField) {
    const keyTag = 8 | (protobuf.types.mapKey as Record<string, number>)[field.keyType]!;
    const key = field.keyType as ScalarMethod;
    const valueTag = 16 | (wireType ?? 2);
    const write: FieldWriter = (w, v) => {
      const map = v as Record<string, unknown>;
      for (const k of Object.keys(map)) {
        (w.uint32(lengthDelimited).fork().uint32(keyTag)[key] as (value: unknown) => protobuf.Writer)(k);
        if (message) writeMessage(message, map[k] as CanonicalMessage, w.uint32(18).fork()).ldelim();
        else scalar!(w.uint32(valueTag), map[k]);
        w.ldelim();
      }
    };
    return { name: field.name, write };
  }
  if (field.repeated) {
    const packed = !message && field.packed && (protobuf.types.packed as Record<string, number | undefined>)[wireName] !== undefined;
    const write: FieldWriter = (w, v) => {
      const list = v as readonly unknown[];
      if (list.length === 0) return;
      if (packed) {
        w.uint32(lengthDelimited).fork();
        for (const x of list) scalar!(w, x);
        w.ldelim();
      } else for (const x of list) one(w, x);
    };
    return { name: field.name, write };
  }
  return { name: field.name, write: one };
}

function planOf(type: protobuf.Type): readonly PlannedField[] {
  let plan = plans.get(type);
  if (!plan) {
    plan = [...type.fieldsArray].sort((a, b) => a.id - b.id).map(planField);
    plans.set(type, plan);
  }
  return plan;
}

function writeMessage(type: protobuf.Type, value: CanonicalMessage, w: protobuf.Writer): protobuf.Writer {
  const atType = value['@type'];
  if (typeof atType === 'string' && type.name === 'Any' && type === lookupType(ANY)) {
    let inner = anyValues.get(value);
    if (!inner) {
      // The inner message's plan skips the `@type` key: it is no field of that message.
      inner = writeMessage(lookupType(typeNameOf(atType)), value, protobuf.Writer.create()).finish();
      anyValues.set(value, inner);
    }
    return w.uint32(10).string(atType).uint32(18).bytes(inner);
  }
  for (const field of planOf(type)) {
    const v = value[field.name];
    if (v !== undefined && v !== null) field.write(w, v);
  }
  return w;
}

export function encodeCanonicalBefore(typeName: string, canonical: CanonicalMessage): Uint8Array {
  return writeMessage(lookupType(typeName), canonical, protobuf.Writer.create()).finish();
}
