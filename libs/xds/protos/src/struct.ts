/**
 * google.protobuf.Struct in canonical (snake_case) form ↔ plain JSON values. Node metadata
 * arrives as a Struct; this is how the server hands it to the node parser.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

interface StructValue {
  null_value?: unknown;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: { fields?: Record<string, StructValue> };
  list_value?: { values?: StructValue[] };
}

export function valueToJs(value: StructValue | undefined): JsonValue {
  if (!value) return null;
  if (value.string_value !== undefined) return value.string_value;
  if (value.number_value !== undefined) return value.number_value;
  if (value.bool_value !== undefined) return value.bool_value;
  if (value.struct_value !== undefined) return structToJs(value.struct_value);
  if (value.list_value !== undefined) return (value.list_value.values ?? []).map(valueToJs);
  return null;
}

export function structToJs(struct: { fields?: Record<string, StructValue> } | undefined): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = valueToJs(v);
  return out;
}

export function jsToValue(value: JsonValue): StructValue {
  if (value === null) return { null_value: 'NULL_VALUE' };
  if (typeof value === 'string') return { string_value: value };
  if (typeof value === 'number') return { number_value: value };
  if (typeof value === 'boolean') return { bool_value: value };
  if (Array.isArray(value)) return { list_value: { values: value.map(jsToValue) } };
  return { struct_value: jsToStruct(value) };
}

export function jsToStruct(obj: { [key: string]: JsonValue }): { fields: Record<string, StructValue> } {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, jsToValue(v)])) };
}
