import { LineCounter, parseAllDocuments } from 'yaml';

/** Limits applied to every manifest a user sends, before anything is interpreted. */
export interface ManifestLimits {
  readonly maxDocuments: number;
  readonly maxDepth: number;
  /** YAML aliases expanded per document; a billion-laughs document stops here. */
  readonly maxAliases: number;
}

export const defaultManifestLimits: ManifestLimits = { maxDocuments: 500, maxDepth: 64, maxAliases: 64 };

export interface ManifestDocument {
  /** Position among the non-empty documents, from 0. */
  readonly index: number;
  /** 1-based line where the document starts. */
  readonly line: number;
  readonly value: unknown;
}

export interface ManifestProblem {
  readonly document: number;
  readonly line?: number;
  readonly path: string;
  readonly message: string;
}

export type ParseResult =
  | { readonly ok: true; readonly documents: readonly ManifestDocument[] }
  | { readonly ok: false; readonly code: 'MANIFEST_INVALID' | 'TOO_MANY_DOCUMENTS'; readonly problems: readonly ManifestProblem[] };

function depthOf(value: unknown, max: number): number {
  // Iterative to stay safe on hostile input.
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, d);
    if (deepest > max) return deepest;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d + 1]);
  }
  return deepest;
}

/** Flattens a Kubernetes `List` (or a bare JSON array) into its items. */
function items(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value !== null && typeof value === 'object' && (value as { kind?: unknown }).kind === 'List' && Array.isArray((value as { items?: unknown }).items)) {
    return (value as { items: unknown[] }).items;
  }
  return [value];
}

/**
 * Parses multi-document YAML (JSON is YAML) into documents, refusing excessive documents,
 * alias expansion and nesting before anything is interpreted. Problems carry the document
 * index and line.
 */
export function parseManifests(text: string, limits: ManifestLimits = defaultManifestLimits): ParseResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true, stringKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  const problems: ManifestProblem[] = [];
  const documents: ManifestDocument[] = [];
  let index = 0;
  for (const doc of list) {
    const start = (doc.contents as { range?: [number, number, number] } | null)?.range?.[0] ?? doc.range[0];
    const line = lineCounter.linePos(start).line;
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        problems.push({ document: index, line: lineCounter.linePos(err.pos[0]).line, path: '', message: err.message.split('\n')[0] ?? 'invalid YAML' });
      }
      index++;
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: limits.maxAliases });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      problems.push({
        document: index,
        line,
        path: '',
        message: /alias/i.test(message) ? `too many YAML aliases (at most ${limits.maxAliases} per document are expanded)` : message,
      });
      index++;
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document between separators
    if (depthOf(value, limits.maxDepth) > limits.maxDepth) {
      problems.push({ document: index, line, path: '', message: `document nests deeper than ${limits.maxDepth} levels` });
      index++;
      continue;
    }
    for (const item of items(value)) {
      documents.push({ index, line, value: item });
      index++;
      if (index > limits.maxDocuments) {
        return { ok: false, code: 'TOO_MANY_DOCUMENTS', problems: [{ document: index - 1, line, path: '', message: `more than ${limits.maxDocuments} documents in one request` }] };
      }
    }
  }
  return problems.length > 0 ? { ok: false, code: 'MANIFEST_INVALID', problems } : { ok: true, documents };
}
