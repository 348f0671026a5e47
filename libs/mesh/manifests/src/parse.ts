import { Composer, LineCounter, Parser, type CST, type Document } from 'yaml';
import { findDuplicateKey } from './duplicates';
import { defaultManifestLimits, prescan, scanDocument, type LimitName, type ManifestLimits, type ScanBudget } from './limits';

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

/** At most this many problems are reported for one request (the count of the rest is kept). */
export const maxReportedProblems = 20;

export type ParseResult =
  | { readonly ok: true; readonly documents: readonly ManifestDocument[] }
  | { readonly ok: false; readonly code: 'MANIFEST_INVALID'; readonly problems: readonly ManifestProblem[]; readonly omitted: number }
  | { readonly ok: false; readonly code: 'MANIFEST_LIMIT'; readonly limit: LimitName; readonly problems: readonly ManifestProblem[]; readonly omitted: 0 };

/** YAML 1.2 core schema, strings as keys, no merge keys; duplicate keys are checked by findDuplicateKey. */
const composeOptions = { uniqueKeys: false, prettyErrors: false, strict: true, stringKeys: true, merge: false } as const;

/** Flattens a Kubernetes `List` (or a bare JSON array) into its items. */
function items(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value !== null && typeof value === 'object' && (value as { kind?: unknown }).kind === 'List' && Array.isArray((value as { items?: unknown }).items)) {
    return (value as { items: unknown[] }).items;
  }
  return [value];
}

class LimitExceeded extends Error {
  constructor(
    readonly limit: LimitName,
    readonly document: number,
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Hands the tokenizer's documents to the composer one at a time, counting documents, keys,
 * aliases and depth on each document's syntax tree first: nothing is composed, resolved or
 * compared for a document that breaks a limit.
 */
function* checked(tokens: Iterable<CST.Token>, limits: ManifestLimits): Generator<CST.Token> {
  const budget: ScanBudget = { keys: 0 };
  let documents = 0;
  for (const token of tokens) {
    if (token.type === 'document' && token.value !== undefined) { // an empty document is skipped, not counted
      if (++documents > limits.maxDocuments) throw new LimitExceeded('documents', documents - 1, token.offset, `more than ${limits.maxDocuments} documents in one request`);
      const breach = scanDocument(token, limits, budget);
      if (breach !== undefined) throw new LimitExceeded(breach.limit, documents - 1, breach.offset, breach.message);
    }
    yield token;
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? 'invalid YAML';
}

/**
 * Parses multi-document YAML (JSON is YAML) into documents. Every limit (size, documents, keys,
 * depth, aliases) is checked before the part it protects runs, and every step is linear in the
 * size of the text: size first; then, on the token tree, documents, keys, depth and aliases; then
 * composition without the library's quadratic unique-key check, a one-pass duplicate-key check,
 * and conversion with alias expansion capped. Problems carry the document index, line and path.
 */
export function parseManifests(text: string, limits: ManifestLimits = defaultManifestLimits): ParseResult {
  if (text.length > limits.maxBytes) {
    return { ok: false, code: 'MANIFEST_LIMIT', limit: 'bytes', omitted: 0, problems: [{ document: 0, path: '', message: `the manifest is ${text.length} bytes; the limit is ${limits.maxBytes}` }] };
  }
  const lineCounter = new LineCounter();
  const lineOf = (offset: number): number => lineCounter.linePos(offset).line;
  const early = prescan(text, limits);
  if (early !== undefined) {
    let line = 1;
    for (let i = text.indexOf('\n'); i !== -1 && i < early.offset; i = text.indexOf('\n', i + 1)) line++;
    return { ok: false, code: 'MANIFEST_LIMIT', limit: early.limit, omitted: 0, problems: [{ document: early.document ?? 0, line, path: '', message: early.message }] };
  }
  let docs: Document.Parsed[];
  try {
    const composer = new Composer(composeOptions);
    docs = Array.from(composer.compose(checked(new Parser(lineCounter.addNewLine).parse(text), limits), true, text.length)) as Document.Parsed[];
  } catch (err) {
    if (!(err instanceof LimitExceeded)) throw err;
    return { ok: false, code: 'MANIFEST_LIMIT', limit: err.limit, omitted: 0, problems: [{ document: err.document, line: lineOf(err.offset), path: '', message: err.message }] };
  }

  const problems: ManifestProblem[] = [];
  let omitted = 0;
  const report = (p: ManifestProblem): void => {
    if (problems.length < maxReportedProblems) problems.push(p);
    else omitted++;
  };
  const documents: ManifestDocument[] = [];
  let index = 0;
  for (const doc of docs) {
    const start = (doc.contents as { range?: [number, number, number] } | null)?.range?.[0] ?? doc.range[0];
    const line = lineOf(start);
    if (doc.errors.length > 0) {
      for (const err of doc.errors) report({ document: index, line: lineOf(err.pos[0]), path: '', message: firstLine(err.message) });
      index++;
      continue;
    }
    const duplicate = findDuplicateKey(doc);
    if (duplicate !== undefined) {
      report({ document: index, line: lineOf(duplicate.offset), path: duplicate.path, message: duplicate.message });
      index++;
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: limits.maxAliases });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      report({ document: index, line, path: '', message: /alias/i.test(message) ? `too many YAML aliases (at most ${limits.maxAliases} per document are expanded)` : message });
      index++;
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document between separators
    for (const item of items(value)) {
      documents.push({ index, line, value: item });
      index++;
      if (index > limits.maxDocuments) {
        return { ok: false, code: 'MANIFEST_LIMIT', limit: 'documents', omitted: 0, problems: [{ document: index - 1, line, path: '', message: `more than ${limits.maxDocuments} documents in one request` }] };
      }
    }
  }
  return problems.length > 0 ? { ok: false, code: 'MANIFEST_INVALID', problems, omitted } : { ok: true, documents };
}
