import type { CST } from 'yaml';

/** Limits applied to every manifest a user sends, before anything is interpreted. */
export interface ManifestLimits {
  /** Largest request text, in UTF-16 code units (≈ bytes for YAML). */
  readonly maxBytes: number;
  readonly maxDocuments: number;
  /** Mapping keys in the whole request (every nesting level, every document). */
  readonly maxKeys: number;
  readonly maxDepth: number;
  /** YAML aliases per document (both written and expanded); a billion-laughs document stops here. */
  readonly maxAliases: number;
}

export const defaultManifestLimits: ManifestLimits = { maxBytes: 1024 * 1024, maxDocuments: 500, maxKeys: 20_000, maxDepth: 64, maxAliases: 64 };

/** Which limit a request broke; `bytes`, `documents` and `keys` are size limits (HTTP 413), the others shape limits (400). */
export type LimitName = 'bytes' | 'documents' | 'keys' | 'depth' | 'aliases';

export interface LimitBreach {
  readonly limit: LimitName;
  /** Offset in the text where the limit was crossed. */
  readonly offset: number;
  /** Index of the document it was crossed in, when known. */
  readonly document?: number;
  readonly message: string;
}

/** Counters that run across the documents of one request. */
export interface ScanBudget {
  keys: number;
}

type Item = { key?: CST.Token | null; sep?: CST.SourceToken[]; value?: CST.Token; start: CST.SourceToken[] };

/**
 * Counts keys, aliases and nesting of one document's concrete syntax tree (what the tokenizer
 * produced, before any node is built, any alias resolved or any key compared). Iterative and
 * linear in the number of tokens, so hostile input cannot exhaust the stack or the clock here.
 */
export function scanDocument(doc: CST.Document, limits: ManifestLimits, budget: ScanBudget): LimitBreach | undefined {
  let aliases = 0;
  const stack: Array<[CST.Token, number]> = [];
  if (doc.value !== undefined) stack.push([doc.value, 1]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    switch (token.type) {
      case 'alias':
        if (++aliases > limits.maxAliases) {
          return { limit: 'aliases', offset: token.offset, message: `too many YAML aliases (at most ${limits.maxAliases} per document)` };
        }
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection': {
        if (depth > limits.maxDepth) return { limit: 'depth', offset: token.offset, message: `document nests deeper than ${limits.maxDepth} levels` };
        const isMap = token.type === 'block-map' || (token.type === 'flow-collection' && token.start.type === 'flow-map-start');
        for (const item of token.items as Item[]) {
          const pair = isMap || item.key !== undefined || (item.sep?.some((t) => t.type === 'map-value-ind') ?? false);
          if (pair && ++budget.keys > limits.maxKeys) {
            return { limit: 'keys', offset: (item.key ?? undefined)?.offset ?? item.start[0]?.offset ?? token.offset, message: `more than ${limits.maxKeys} mapping keys in one request` };
          }
          if (item.key !== undefined && item.key !== null) stack.push([item.key, depth + 1]);
          if (item.value !== undefined) stack.push([item.value, depth + 1]);
        }
        break;
      }
      default:
        break;
    }
  }
  return undefined;
}

const isBlank = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || Number.isNaN(c);

/**
 * One pass over the raw characters before the tokenizer runs (whose time and memory grow with
 * the input): counts mapping keys, documents and flow nesting, and refuses a text that is
 * certainly over a limit. Quoted strings, comments and block scalars (`|`, `>`) are skipped.
 * Every count is a lower bound of what the parser will see (a `: ` outside those is always a
 * mapping indicator, a `---` at a line start always a document start; keys without a value are
 * not counted), so a text within the limits is never refused here; the exact counts are taken
 * again on the token tree. Flow nesting is an upper bound (a `[`/`{` counts where a collection
 * may start), which for a depth limit of 64 no real manifest reaches.
 */
export function prescan(text: string, limits: ManifestLimits): LimitBreach | undefined {
  let keys = 0;
  let documents = 1;
  let depth = 0;
  let canOpen = true;
  let lineStart = 0;
  let lineIndent = 0;
  let atIndent = true;
  let blockIndent = -1; // > -1: inside a block scalar whose parent line has this indentation
  let quoteClosedAt = -2; // where the last quoted scalar ended (JSON's `"a":1` has no blank after the colon)
  let docHasContent = false; // an empty document (only comments) is not counted, as the parser skips it
  for (let i = text.startsWith('---') && isBlank(text.charCodeAt(3)) ? 3 : 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x23) docHasContent = true;
    if (atIndent && c !== 0x20) {
      atIndent = false;
      lineIndent = i - lineStart;
      if (blockIndent >= 0) {
        if (lineIndent > blockIndent || c === 0x0a || c === 0x0d) {
          // Block scalar content: skip the line.
          while (i < text.length && text.charCodeAt(i) !== 0x0a) i++;
          lineStart = i + 1;
          atIndent = true;
          continue;
        }
        blockIndent = -1;
      }
    }
    switch (c) {
      case 0x0a: // newline
        lineStart = i + 1;
        atIndent = true;
        canOpen = true;
        if (text.startsWith('---', i + 1) && isBlank(text.charCodeAt(i + 4))) {
          if (docHasContent && ++documents > limits.maxDocuments) {
            return { limit: 'documents', offset: i + 1, document: documents - 1, message: `more than ${limits.maxDocuments} documents in one request` };
          }
          docHasContent = false;
          i += 3; // past the marker; the rest of its line is at indentation 0
          atIndent = false;
          lineIndent = 0;
        }
        break;
      case 0x5b: // [
      case 0x7b: // {
        if (canOpen) {
          if (++depth > limits.maxDepth) return { limit: 'depth', offset: i, document: documents - 1, message: `document nests deeper than ${limits.maxDepth} levels` };
        } else canOpen = false;
        break;
      case 0x5d: // ]
      case 0x7d: // }
        if (depth > 0) depth--;
        canOpen = false;
        break;
      case 0x22: // " starts a quoted scalar only where a node starts; inside a plain scalar it is a character
        if (canOpen) {
          for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
          quoteClosedAt = i;
        }
        canOpen = false;
        break;
      case 0x27: // ' likewise; '' inside is an escaped quote
        if (canOpen) {
          for (i++; i < text.length; i++) {
            if (text.charCodeAt(i) !== 0x27) continue;
            if (text.charCodeAt(i + 1) === 0x27) i++;
            else break;
          }
          quoteClosedAt = i;
        }
        canOpen = false;
        break;
      case 0x23: // # starts a comment after whitespace or at line start
        if (i === 0 || isBlank(text.charCodeAt(i - 1))) while (i + 1 < text.length && text.charCodeAt(i + 1) !== 0x0a) i++;
        else canOpen = false;
        break;
      case 0x3a: // :
        if (isBlank(text.charCodeAt(i + 1)) || quoteClosedAt === i - 1) {
          if (++keys > limits.maxKeys) return { limit: 'keys', offset: i, document: documents - 1, message: `more than ${limits.maxKeys} mapping keys in one request` };
          canOpen = true;
        } else if (depth > 0) canOpen = true; // `{a:[` in flow context
        else canOpen = false;
        break;
      case 0x7c: // |
      case 0x3e: // >
        if (canOpen && depth === 0) blockIndent = lineIndent;
        canOpen = false;
        break;
      case 0x2d: // - and ? are indicators only before a blank; `-{` is a plain scalar
      case 0x3f: // ?
        canOpen = canOpen && isBlank(text.charCodeAt(i + 1));
        break;
      case 0x2c: // ,
        canOpen = depth > 0;
        break;
      case 0x20: // space
      case 0x09: // tab
      case 0x0d: // CR
        break;
      default:
        canOpen = false;
    }
  }
  return undefined;
}
