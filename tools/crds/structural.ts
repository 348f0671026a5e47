import { type TSchema } from 'typebox';

/**
 * TypeBox (JSON Schema) → Kubernetes structural schema (apiextensions.k8s.io/v1).
 *
 * Contract: every node has a `type`; no `$ref`, `anyOf`, `patternProperties` or `const`; objects
 * carry either `properties` or `additionalProperties` (maps), and free-form values are marked
 * `x-kubernetes-preserve-unknown-fields`. `additionalProperties: false` is dropped because the API
 * server prunes unknown fields of structural schemas by itself. TypeBox-only keys are stripped
 * (only the keys below are kept).
 */
export type Structural = { [key: string]: unknown };

const kept = ['description', 'format', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'enum'] as const;

export function toStructural(schema: TSchema): Structural {
  const s = schema as Record<string, unknown>;
  const out: Structural = {};
  if (Array.isArray(s['anyOf'])) return fromAnyOf(s['anyOf'] as TSchema[], s);
  if (s['const'] !== undefined) {
    out['type'] = typeof s['const'];
    out['enum'] = [s['const']];
    return out;
  }
  let type = s['type'] as string | undefined;
  if (type === undefined && Array.isArray(s['enum'])) type = typeof (s['enum'] as unknown[])[0];
  if (type === undefined) return { 'x-kubernetes-preserve-unknown-fields': true };
  out['type'] = type;
  for (const k of kept) if (s[k] !== undefined) out[k] = s[k];
  if (type === 'array') out['items'] = toStructural(s['items'] as TSchema);
  if (type === 'object') {
    if (s['x-kubernetes-preserve-unknown-fields'] === true) {
      out['x-kubernetes-preserve-unknown-fields'] = true;
      return out;
    }
    const props = s['properties'] as Record<string, TSchema> | undefined;
    const pattern = s['patternProperties'] as Record<string, TSchema> | undefined;
    if (props !== undefined && Object.keys(props).length > 0) {
      out['properties'] = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toStructural(v)]));
      const required = s['required'] as string[] | undefined;
      if (required !== undefined && required.length > 0) out['required'] = [...required];
    } else if (pattern !== undefined) {
      const values = Object.values(pattern);
      out['additionalProperties'] = values.length === 1 ? toStructural(values[0]!) : { 'x-kubernetes-preserve-unknown-fields': true };
    } else if (typeof s['additionalProperties'] === 'object') {
      out['additionalProperties'] = toStructural(s['additionalProperties'] as TSchema);
    } else {
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
  }
  return out;
}

/** anyOf of string consts becomes an enum; `X | null` becomes nullable X; anything else is free-form. */
function fromAnyOf(options: TSchema[], parent: Record<string, unknown>): Structural {
  const opts = options as Record<string, unknown>[];
  if (opts.every((o) => o['const'] !== undefined && typeof o['const'] === 'string')) {
    return withDescription({ type: 'string', enum: opts.map((o) => o['const']) }, parent);
  }
  const nonNull = opts.filter((o) => o['type'] !== 'null');
  if (nonNull.length === 1) return withDescription({ ...toStructural(nonNull[0] as TSchema), nullable: true }, parent);
  return withDescription({ 'x-kubernetes-preserve-unknown-fields': true }, parent);
}

function withDescription(out: Structural, parent: Record<string, unknown>): Structural {
  return parent['description'] === undefined ? out : { ...out, description: parent['description'] };
}
