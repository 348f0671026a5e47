import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml';

export interface DuplicateKey {
  /** Field path of the second occurrence, in validation style: `spec.http[0].route`. */
  readonly path: string;
  /** Offset of the second occurrence in the text. */
  readonly offset: number;
  readonly message: string;
}

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

/**
 * Finds the first mapping key that appears twice in one mapping, in a single pass over the
 * composed document (a hash set per mapping: linear in the number of keys). The `yaml` library's
 * own `uniqueKeys` check compares every pair of keys and is quadratic, so it is turned off and
 * this runs instead. Aliases are not followed (they point at nodes visited where they are defined).
 * Keys are compared as strings, the way Kubernetes and JSON see them.
 */
export function findDuplicateKey(doc: Document.Parsed): DuplicateKey | undefined {
  const stack: Array<[Node, string]> = [];
  if (doc.contents !== null) stack.push([doc.contents, '']);
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : pair.key === null ? '' : undefined;
        const keyNode = pair.key as Node | null;
        const offset = keyNode?.range?.[0] ?? node.range?.[0] ?? 0;
        if (key === undefined) return { path, offset, message: 'mapping keys must be plain strings' };
        if (seen.has(key)) return { path: child(path, key), offset, message: `duplicate key ${JSON.stringify(key)}` };
        seen.add(key);
        if (pair.value !== null && (isMap(pair.value) || isSeq(pair.value))) stack.push([pair.value, child(path, key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        if (isMap(item) || isSeq(item)) stack.push([item, child(path, i)]);
      });
    }
  }
  return undefined;
}
