import { type TSchema } from 'typebox';

/**
 * Field paths of a schema, in the registry's pattern syntax: `spec.http[].corsPolicy` (`[]` after
 * an array field, `{}` after a map field, so `spec.portLevelMtls{}.mode`). Contract: walks the
 * TypeBox (JSON Schema) shape only — object `properties`, array `items`, map
 * `patternProperties`/`additionalProperties` — in declaration order, so output is stable.
 */
export function schemaPaths(schema: TSchema, prefix: string): string[] {
  const out: string[] = [];
  walk(schema as Node, prefix, out);
  return out;
}

interface Node {
  readonly type?: string;
  readonly properties?: Record<string, Node>;
  readonly items?: Node;
  readonly patternProperties?: Record<string, Node>;
  readonly additionalProperties?: Node | boolean;
  readonly anyOf?: readonly Node[];
}

function walk(node: Node, path: string, out: string[]): void {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const p = `${path}.${name}`;
    out.push(p);
    walkValue(child, p, out);
  }
}

function walkValue(node: Node, path: string, out: string[]): void {
  if (node.type === 'array' && node.items !== undefined) walkValue(node.items, `${path}[]`, out);
  else if (node.properties !== undefined) walk(node, path, out);
  else if (node.patternProperties !== undefined) for (const child of Object.values(node.patternProperties)) walkValue(child, `${path}{}`, out);
  else if (typeof node.additionalProperties === 'object') walkValue(node.additionalProperties, `${path}{}`, out);
  for (const alt of node.anyOf ?? []) walkValue(alt, path, out);
}

/** One concrete occurrence of a pattern in a resource: its field path (`spec.http[2].corsPolicy`) and value. */
export interface Occurrence {
  readonly path: string;
  readonly value: unknown;
}

const identifier = /^[A-Za-z_$][\w$]*$/;

/**
 * Every value in `root` at `pattern` (as produced by schemaPaths), with the concrete path each
 * was found at; absent fields yield nothing. Bounded by the size of the resource.
 */
export function occurrences(root: unknown, pattern: string): Occurrence[] {
  let current: Occurrence[] = [{ path: '', value: root }];
  for (const segment of pattern.split('.')) {
    const m = /^([^[{]+)((?:\[\]|\{\})*)$/.exec(segment);
    if (m === null) throw new Error(`bad field pattern ${pattern}`);
    const name = m[1]!;
    const suffixes = m[2]!.match(/\[\]|\{\}/g) ?? [];
    const next: Occurrence[] = [];
    for (const o of current) {
      if (typeof o.value !== 'object' || o.value === null || !Object.hasOwn(o.value, name)) continue;
      let level: Occurrence[] = [{ path: o.path === '' ? name : `${o.path}.${name}`, value: (o.value as Record<string, unknown>)[name] }];
      for (const s of suffixes) {
        level = level.flatMap((l) => {
          if (s === '[]') return Array.isArray(l.value) ? l.value.map((v, i) => ({ path: `${l.path}[${i}]`, value: v as unknown })) : [];
          if (typeof l.value !== 'object' || l.value === null || Array.isArray(l.value)) return [];
          return Object.entries(l.value as Record<string, unknown>).map(([k, v]) => ({ path: identifier.test(k) ? `${l.path}.${k}` : `${l.path}[${JSON.stringify(k)}]`, value: v }));
        });
      }
      for (const l of level) if (l.value !== undefined) next.push(l);
    }
    current = next;
  }
  return current;
}
