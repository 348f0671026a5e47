import { describe, expect, it } from 'vitest';
import { parseManifests } from './parse';

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

  it('refuses duplicate keys', () => {
    const r = parseManifests('kind: A\nkind: B\n');
    expect(r.ok).toBe(false);
  });

  it('refuses a billion-laughs document instead of expanding it', () => {
    const lol = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) lol.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const r = parseManifests(lol.join('\n'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]?.message).toContain('too many YAML aliases');
  });

  it('refuses deep nesting and too many documents', () => {
    const deep = parseManifests(`${'['.repeat(100)}${']'.repeat(100)}`, { maxDocuments: 10, maxDepth: 64, maxAliases: 10 });
    expect(!deep.ok && deep.problems[0]?.message).toContain('deeper than 64');
    const many = parseManifests(Array(12).fill('kind: A').join('\n---\n'), { maxDocuments: 10, maxDepth: 64, maxAliases: 10 });
    expect(!many.ok && many.code).toBe('TOO_MANY_DOCUMENTS');
  });
});
