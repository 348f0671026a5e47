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

/**
 * An upper bound of flow-collection nesting (`[`/`{`), read from the raw text before the
 * tokenizer runs: the tokenizer's own cost grows with nesting, so `[[[[…` is refused here, in
 * one pass over the characters. Quoted strings and comments are skipped; a bracket counts as an
 * opener only where a flow collection may start (line start, after `:`, `-`, `?`, `,` or another
 * opener). The count only over-estimates, so a document within the limit is never refused here.
 */
export function flowDepthBreach(text: string, maxDepth: number): LimitBreach | undefined {
  let depth = 0;
  let canOpen = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    switch (c) {
      case 0x5b: // [
      case 0x7b: // {
        if (canOpen) {
          if (++depth > maxDepth) return { limit: 'depth', offset: i, message: `document nests deeper than ${maxDepth} levels` };
        } else canOpen = false;
        break;
      case 0x5d: // ]
      case 0x7d: // }
        if (depth > 0) depth--;
        canOpen = false;
        break;
      case 0x22: // "
        for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
        canOpen = false;
        break;
      case 0x27: // '
        while (++i < text.length && text.charCodeAt(i) !== 0x27);
        canOpen = false;
        break;
      case 0x23: // # starts a comment after whitespace or at line start
        if (i === 0 || /\s/.test(text[i - 1]!)) while (i + 1 < text.length && text.charCodeAt(i + 1) !== 0x0a) i++;
        else canOpen = false;
        break;
      case 0x0a: // newline
      case 0x3a: // :
      case 0x2d: // -
      case 0x3f: // ?
      case 0x2c: // ,
        canOpen = true;
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
