import { kindFor, kinds, kindsNamed, type KindInfo } from '@aviary/mesh-api';
import { Compile } from 'typebox/compile';
import { idx, key, type Report } from './finding';

type Validator = ReturnType<typeof Compile>;

const knownKinds = [...new Set((Object.values(kinds) as KindInfo[]).map((k) => k.apiKind))].join(', ');

/** Compiled once per kind, at module load. */
const validators = new Map<string, Validator>(Object.entries(kinds).map(([kind, info]) => [kind, Compile(info.schema)]));

export interface SchemaError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message: string;
}

/**
 * Checks envelope and schema. Returns the KindInfo when the resource is well-formed enough for
 * semantic rules to run (no schema errors), undefined otherwise.
 */
export function checkSchema(resource: unknown, report: Report): KindInfo | undefined {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    report.error('', 'resource must be an object');
    return undefined;
  }
  const r = resource as Record<string, unknown>;
  if (typeof r['kind'] !== 'string' || r['kind'] === '') {
    report.error('kind', 'kind is required');
    return undefined;
  }
  const named = kindsNamed(r['kind']);
  if (named.length === 0) {
    report.error('kind', `unknown kind ${JSON.stringify(r['kind'])}; known kinds: ${knownKinds}`);
    return undefined;
  }
  const info = kindFor(r['apiVersion'], r['kind']);
  if (info === undefined) {
    const served = named.flatMap((k) => k.versions.map((v) => `${k.group}/${v}`)).join(', ');
    report.error('apiVersion', `apiVersion ${JSON.stringify(r['apiVersion'] ?? '')} is not served for kind ${r['kind']}; use one of ${served}`);
    return undefined;
  }
  const errors = validators.get(info.kind)!.Errors(resource) as unknown as SchemaError[];
  let count = 0;
  for (const e of errors) count += reportSchemaError(resource, e, report);
  return count === 0 ? info : undefined;
}

/** Reports one TypeBox schema error at its field path; returns 1 when it counted as an error. */
export function reportSchemaError(root: unknown, e: SchemaError, report: Report): number {
  const path = toPath(root, e.instancePath);
  switch (e.keyword) {
    case 'boolean':
      return 0; // duplicate of the parent's additionalProperties error
    case 'additionalProperties':
      for (const name of (e.params['additionalProperties'] as string[] | undefined) ?? []) report.error(key(path, name), `unknown field ${JSON.stringify(name)}`);
      return 1;
    case 'required':
      for (const name of (e.params['requiredProperties'] as string[] | undefined) ?? []) report.error(key(path, name), 'required field is missing');
      return 1;
    case 'type':
      report.error(path, `must be ${article(String(e.params['type']))}, got ${describe(valueAt(root, e.instancePath))}`);
      return 1;
    case 'enum':
      report.error(path, `must be one of ${(e.params['allowedValues'] as unknown[]).join(', ')}, got ${JSON.stringify(valueAt(root, e.instancePath))}`);
      return 1;
    case 'const':
    case 'anyOf':
      report.error(path, `invalid value ${JSON.stringify(valueAt(root, e.instancePath))}`);
      return 1;
    default:
      report.error(path, e.message);
      return 1;
  }
}

function article(type: string): string {
  if (type === 'integer' || type === 'object' || type === 'array') return `an ${type}`;
  return `a ${type}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number' && !Number.isInteger(v)) return `the number ${v}`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function segments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function valueAt(root: unknown, pointer: string): unknown {
  let cur = root;
  for (const s of segments(pointer)) cur = (cur as Record<string, unknown> | undefined)?.[s];
  return cur;
}

/** JSON pointer → field path, using the value to tell array indexes from map keys. */
export function toPath(root: unknown, pointer: string): string {
  let cur = root;
  let path = '';
  for (const s of segments(pointer)) {
    path = Array.isArray(cur) ? idx(path, Number(s)) : key(path, s);
    cur = (cur as Record<string, unknown> | undefined)?.[s];
  }
  return path;
}
