import fc from 'fast-check';
import protobuf from 'protobufjs';
import { ExtensionTypeUrl, TypeUrl, typeNameOf } from '@aviary/xds-api';

/**
 * Random messages of a type, built from its schema: every scalar type with its full range
 * (int64 up to the safe integers, NaN and ±0 doubles, non-ASCII strings), enums by name and by
 * unknown number, repeated (packed or not) and map fields, nested Anys of a loaded type (with
 * `@type`) and of an unknown one (type_url and bytes). Nesting stops at `depth`.
 */
export type MessageArbitrary = (type: protobuf.Type, depth: number) => fc.Arbitrary<Record<string, unknown>>;

export const anyArbitrary: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ '@type': fc.constant(ExtensionTypeUrl.TcpProxy), stat_prefix: fc.string({ unit: 'grapheme' }), cluster: fc.string() }, { requiredKeys: ['@type'] }),
  fc.record({ '@type': fc.constant(ExtensionTypeUrl.Router), suppress_envoy_headers: fc.boolean() }, { requiredKeys: ['@type'] }),
  fc.record({ type_url: fc.constant('type.googleapis.com/aviary.test.Unknown'), value: fc.uint8Array({ maxLength: 20 }) }, { requiredKeys: ['type_url'] }),
);

function scalarArbitrary(field: protobuf.Field): fc.Arbitrary<unknown> {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) return fc.oneof(fc.constantFrom(...Object.keys(resolved.values)), fc.integer({ min: -5, max: 1_000 }));
  switch (field.type) {
    case 'string':
      return fc.string({ unit: 'grapheme', maxLength: 80 });
    case 'bool':
      return fc.boolean();
    case 'double':
      return fc.double();
    case 'float':
      return fc.float();
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'uint32':
    case 'fixed32':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return fc.maxSafeInteger();
    case 'uint64':
    case 'fixed64':
      return fc.maxSafeNat();
    case 'bytes':
      return fc.uint8Array({ maxLength: 40 });
    default:
      throw new Error(`no arbitrary for ${field.type}`);
  }
}

/** Random canonical messages whose nested Anys come from `anys`. */
export function messageArbitraries(anys: fc.Arbitrary<Record<string, unknown>> = anyArbitrary): MessageArbitrary {
  const arbitraries = new Map<string, fc.Arbitrary<Record<string, unknown>>>();
  const messageArbitrary: MessageArbitrary = (type, depth) => {
    if (type.fullName === '.google.protobuf.Any') return anys;
    const key = `${type.fullName}@${depth}`;
    const known = arbitraries.get(key);
    if (known) return known;
    const fields: Record<string, fc.Arbitrary<unknown>> = {};
    for (const field of type.fieldsArray) {
      field.resolve();
      const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
      if (nested && depth === 0) continue;
      const one = nested ? messageArbitrary(nested, depth - 1) : scalarArbitrary(field);
      if (field instanceof protobuf.MapField) {
        const keys = field.keyType === 'string' ? fc.string({ maxLength: 8 }) : field.keyType === 'bool' ? fc.constantFrom('true', 'false') : fc.nat(1_000).map(String);
        fields[field.name] = fc.dictionary(keys, one, { maxKeys: 3 });
      } else if (field.repeated) fields[field.name] = fc.array(one, { maxLength: 3 });
      else fields[field.name] = one;
    }
    const arbitrary = fc.record(fields, { requiredKeys: [] });
    arbitraries.set(key, arbitrary);
    return arbitrary;
  };
  return messageArbitrary;
}

/** The message types pilot sends, and Struct (recursive, maps). */
export const sentTypeNames: readonly string[] = [
  ...[TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Secret].map((url) => typeNameOf(url)),
  typeNameOf(ExtensionTypeUrl.HttpConnectionManager),
  'google.protobuf.Struct',
];
