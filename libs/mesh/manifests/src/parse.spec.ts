import { describe, expect, it } from 'vitest';
import { defaultManifestLimits, prescan } from './limits';
import { maxReportedProblems, parseManifests } from './parse';

describe('parseManifests', () => {
  it('splits multi-document YAML with the line each document starts on', () => {
    const r = parseManifests('kind: A\nmetadata: {name: a}\n---\n---\nkind: B\n');
    expect(r).toEqual({ ok: true, documents: [{ index: 0, line: 1, value: { kind: 'A', metadata: { name: 'a' } } }, { index: 1, line: 5, value: { kind: 'B' } }] });
  });

  it('reads JSON, JSON arrays and Kubernetes Lists', () => {
    const r = parseManifests(JSON.stringify({ kind: 'List', items: [{ kind: 'A' }, { kind: 'B' }] }));
    expect(r.ok && r.documents.map((d) => d.value)).toEqual([{ kind: 'A' }, { kind: 'B' }]);
    const a = parseManifests('[{"kind":"A"}]');
    expect(a.ok && a.documents.map((d) => d.value)).toEqual([{ kind: 'A' }]);
  });

  it('reports syntax errors with document and line', () => {
    const r = parseManifests('kind: A\n---\nkind: B\n  bad: [\n');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]).toMatchObject({ document: 1, line: expect.any(Number) });
  });

  it('refuses duplicate keys with their line and field path', () => {
    const r = parseManifests('kind: A\nkind: B\n');
    expect(r).toMatchObject({ ok: false, code: 'MANIFEST_INVALID', problems: [{ document: 0, line: 2, path: 'kind', message: 'duplicate key "kind"' }] });
    const nested = parseManifests('kind: A\n---\nspec:\n  http:\n  - route:\n    - weight: 1\n      weight: 2\n');
    expect(nested).toMatchObject({ ok: false, problems: [{ document: 1, line: 7, path: 'spec.http[0].route[0].weight' }] });
    const flow = parseManifests('{"a": 1, "b": {"c": 1, "c": 2}}');
    expect(flow).toMatchObject({ ok: false, problems: [{ line: 1, path: 'b.c' }] });
  });

  it('parses 50,000 keys in linear time and still finds a duplicate at the end', () => {
    const lines = Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`);
    const limits = { ...defaultManifestLimits, maxKeys: 60_000 };
    const r = parseManifests(`${lines.join('\n')}\n`, limits);
    expect(r.ok && Object.keys(r.documents[0]!.value as object).length).toBe(50_000);
    const dup = parseManifests(`${lines.join('\n')}\nk00007: w\n`, limits);
    expect(dup).toMatchObject({ ok: false, problems: [{ line: 50_001, path: 'k00007', message: 'duplicate key "k00007"' }] });
  });

  it('refuses more keys, bytes or documents than the limits, naming the limit, before composing', () => {
    const lines = Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`).join('\n');
    const keys = parseManifests(lines);
    expect(keys).toMatchObject({ ok: false, code: 'MANIFEST_LIMIT', limit: 'keys', problems: [{ message: `more than ${defaultManifestLimits.maxKeys} mapping keys in one request` }] });
    const bytes = parseManifests(lines, { ...defaultManifestLimits, maxBytes: 1000 });
    expect(bytes).toMatchObject({ ok: false, limit: 'bytes', problems: [{ message: 'the manifest is 499999 bytes; the limit is 1000' }] });
    const docs = parseManifests('a: 1\n---\nb: 1\n---\nc: 1\n', { ...defaultManifestLimits, maxDocuments: 2 });
    expect(docs).toMatchObject({ ok: false, limit: 'documents', problems: [{ document: 2, line: 4 }] });
  });

  it('reports at most maxReportedProblems problems and counts the rest', () => {
    const r = parseManifests(Array.from({ length: 30 }, () => 'a: 1\na: 2').join('\n---\n'));
    expect(r).toMatchObject({ ok: false, code: 'MANIFEST_INVALID', omitted: 10 });
    expect(!r.ok && r.problems.length).toBe(maxReportedProblems);
  });

  it('refuses a billion-laughs document instead of expanding it', () => {
    const lol = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) lol.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const r = parseManifests(lol.join('\n'));
    expect(r).toMatchObject({ ok: false, code: 'MANIFEST_LIMIT', limit: 'aliases' });
    if (!r.ok) expect(r.problems[0]?.message).toContain('too many YAML aliases');
    // Under the written-alias limit, the expansion limit still stops it.
    const eight = ['a: &a [x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) eight.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(8).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const expanded = parseManifests(eight.join('\n'), { ...defaultManifestLimits, maxAliases: 64 });
    expect(expanded).toMatchObject({ ok: false, code: 'MANIFEST_INVALID', problems: [{ message: 'too many YAML aliases (at most 64 per document are expanded)' }] });
  });

  it('refuses deep nesting and too many documents', () => {
    const limits = { ...defaultManifestLimits, maxDocuments: 10, maxDepth: 64, maxAliases: 10 };
    const deep = parseManifests(`${'['.repeat(100)}${']'.repeat(100)}`, limits);
    expect(deep).toMatchObject({ ok: false, limit: 'depth' });
    expect(!deep.ok && deep.problems[0]?.message).toContain('deeper than 64');
    const block = parseManifests(`${Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')} 1\n`, limits);
    expect(block).toMatchObject({ ok: false, limit: 'depth' });
    // A nesting far beyond any stack is refused on the token tree, not by a stack overflow.
    const huge = parseManifests(`${'['.repeat(200_000)}${']'.repeat(200_000)}`, { ...limits, maxBytes: 1_000_000 });
    expect(huge).toMatchObject({ ok: false, limit: 'depth' });
    const many = parseManifests(Array(12).fill('kind: A').join('\n---\n'), limits);
    expect(!many.ok && many.code).toBe('MANIFEST_LIMIT');
    const list = parseManifests(JSON.stringify({ kind: 'List', items: Array(12).fill({ kind: 'A' }) }), limits);
    expect(list).toMatchObject({ ok: false, limit: 'documents' });
  });
});

describe('prescan (before the tokenizer)', () => {
  const limits = { ...defaultManifestLimits, maxKeys: 3, maxDocuments: 2 };
  it('counts keys outside quotes, comments and block scalars, and never more than the parser sees', () => {
    const text = 'a: 1\n# b: 2 c: 3 d: 4\nq: "x: y: z: w"\nr: |\n  e: 1\n  f: 2\n  g: 3\n';
    expect(prescan(text, limits)).toBeUndefined();
    expect(parseManifests(text, limits).ok).toBe(true);
    expect(prescan('{"a":1,"b":2,"c":3,"d":4}', limits)).toMatchObject({ limit: 'keys', document: 0 });
    expect(prescan('a: 1\n---\nb: 1\nc: 1\nd: 1\n', limits)).toMatchObject({ limit: 'keys', document: 1 });
    expect(prescan('a: 1\n---\nb: 1\n---\nc: 1\n', limits)).toMatchObject({ limit: 'documents', document: 2 });
    // Empty documents and a leading marker are not documents, here as in the parser.
    const empties = '---\n# c\n---\na: 1\n---\n---\nb: 1\n';
    expect(prescan(empties, limits)).toBeUndefined();
    expect(parseManifests(empties, limits)).toMatchObject({ ok: true, documents: [{ index: 0 }, { index: 1 }] });
  });

  it('refuses 50,000 keys from the raw text, naming the document and line', () => {
    const text = Array.from({ length: 50_000 }, (_, i) => `k${i}: v`).join('\n');
    expect(parseManifests(text)).toMatchObject({ ok: false, limit: 'keys', problems: [{ document: 0, line: defaultManifestLimits.maxKeys + 1 }] });
  });
});
