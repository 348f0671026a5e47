import fastJsonPatch from 'fast-json-patch';
import type { StoredObject } from '@aviary/mesh-api';

export interface FieldChange {
  /** Field path in the style of validation messages: `spec.http[0].route[1].weight`. */
  readonly path: string;
  readonly op: 'added' | 'removed' | 'changed';
  readonly from?: unknown;
  readonly to?: unknown;
}

/** The parts of an object a user owns; server-set metadata is left out of comparisons. */
export function userContent(object: StoredObject): unknown {
  const { labels, annotations } = object.metadata;
  return {
    apiVersion: object.apiVersion,
    metadata: { ...(labels === undefined ? {} : { labels }), ...(annotations === undefined ? {} : { annotations }) },
    spec: object.spec,
  };
}

export function sameContent(a: StoredObject, b: StoredObject): boolean {
  return fastJsonPatch.compare(userContent(a) as object, userContent(b) as object).length === 0;
}

function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(token) ? `[${token}]` : /^[A-Za-z_$][\w$]*$/.test(token) ? `${out === '' ? '' : '.'}${token}` : `[${JSON.stringify(token)}]`;
  }
  return out;
}

function at(root: unknown, pointer: string): unknown {
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

/** Field-level differences between the stored object and a candidate. */
export function diffObjects(before: StoredObject, after: StoredObject): FieldChange[] {
  const a = userContent(before);
  const b = userContent(after);
  const changes: FieldChange[] = fastJsonPatch.compare(a as object, b as object).map((op) => {
    const path = pointerToPath(op.path);
    if (op.op === 'add') return { path, op: 'added', to: op.value as unknown };
    if (op.op === 'remove') return { path, op: 'removed', from: at(a, op.path) };
    return { path, op: 'changed', from: at(a, op.path), to: (op as { value?: unknown }).value };
  });
  return changes.sort((x, y) => x.path.localeCompare(y.path, 'en', { numeric: true }));
}
