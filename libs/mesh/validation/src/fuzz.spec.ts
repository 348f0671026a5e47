import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { kinds } from '@aviary/mesh-api';
import { defaultManifestLimits, maxReportedProblems, parseManifests, type ParseResult } from '@aviary/manifests';
import { loadFixtures } from './fixtures/load';
import { validate } from './validate';

// Property-based fuzzing of the config ingest path: manifest parser, then validator. The run
// counts are recorded in docs/security.md; change both together.
const fuzzRuns = { text: 3000, yamlRoundTrip: 1000, exactKeyLimit: 3000, duplicates: 500, resources: 3000, mutatedFixtures: 2000 } as const;

const fixtures = loadFixtures('valid').map((f) => stringify(f.doc));
const meshKinds = Object.values(kinds);

/** Every outcome is a result, never an exception, and a refusal is small and located. */
function wellFormed(r: ParseResult): void {
  if (r.ok) return;
  expect(r.problems.length).toBeGreaterThan(0);
  expect(r.problems.length).toBeLessThanOrEqual(maxReportedProblems);
  for (const p of r.problems) {
    expect(p.document).toBeGreaterThanOrEqual(0);
    if (p.line !== undefined) expect(p.line).toBeGreaterThanOrEqual(1);
    expect(typeof p.message).toBe('string');
    expect(p.message.length).toBeLessThan(2000);
  }
}

function validatesCleanly(value: unknown): void {
  const result = validate(value);
  for (const f of [...result.errors, ...result.warnings]) {
    expect(typeof f.path).toBe('string');
    expect(f.message.length).toBeGreaterThan(0);
  }
}

/** Text that looks like YAML: its structural characters, much more often than random text would have them. */
const yamlish = fc
  .array(fc.oneof(fc.constantFrom(':', ' ', '\n', '- ', '---\n', '[', ']', '{', '}', ',', '&a ', '*a', '&b ', '*b', '? ', '|', '>', '#', '"', "'", '!!str ', '<<: ', 'key', 'kind: ', '  '), fc.string({ maxLength: 4 })), { maxLength: 200 })
  .map((parts) => parts.join(''));

describe('manifest parser + validator under fuzzing', () => {
  it('answers any text with documents or located problems, never an exception', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), yamlish), (text) => {
        const r = parseManifests(text, { ...defaultManifestLimits, maxKeys: 200, maxAliases: 8, maxDepth: 16 });
        wellFormed(r);
        if (r.ok) for (const d of r.documents) validatesCleanly(d.value);
      }),
      { numRuns: fuzzRuns.text },
    );
  });

  it('reads back any JSON-like value written as YAML or JSON', () => {
    const value = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 4 }), { minKeys: 1, maxKeys: 8 });
    fc.assert(
      fc.property(value, fc.boolean(), (v, asJson) => {
        const r = parseManifests(asJson ? JSON.stringify(v) : stringify(v));
        expect(r.ok).toBe(true);
        // JSON drops -0 and YAML keeps it; compare as JSON sees both.
        if (r.ok) expect(JSON.parse(JSON.stringify(r.documents[0]!.value))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: fuzzRuns.yamlRoundTrip },
    );
  });

  it('accepts a value with exactly as many keys as the limit: the early raw-text count never over-counts', () => {
    const tricky = fc.string({ unit: fc.constantFrom('a', ':', ' ', '\n', '#', '"', "'", '|', '>', '-', '[', '{', '---'), maxLength: 30 });
    const leaf = fc.oneof(tricky, fc.integer(), fc.boolean(), fc.constant(null));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(tricky, tie('node'), { maxKeys: 4 })),
    })).node;
    const countKeys = (v: unknown): number =>
      Array.isArray(v) ? v.reduce((n: number, x) => n + countKeys(x), 0) : v !== null && typeof v === 'object' ? Object.values(v).reduce((n: number, x) => n + 1 + countKeys(x), 0) : 0;
    fc.assert(
      fc.property(fc.dictionary(tricky, value, { minKeys: 1, maxKeys: 6 }), fc.boolean(), (v, asJson) => {
        const r = parseManifests(asJson ? JSON.stringify(v) : stringify(v), { ...defaultManifestLimits, maxKeys: countKeys(v) });
        expect(r.ok, asJson ? JSON.stringify(v) : stringify(v)).toBe(true);
        // The same value as several documents, with empty ones and comments between: exactly maxDocuments.
        const docs = `---\n# leading\n---\n${stringify(v)}---\n---\n# empty\n---\n${stringify(v)}`;
        expect(parseManifests(docs, { ...defaultManifestLimits, maxKeys: 2 * countKeys(v), maxDocuments: 2 }).ok, docs).toBe(true);
      }),
      { numRuns: fuzzRuns.exactKeyLimit },
    );
  });

  it('finds a duplicated key wherever it is, with its line', () => {
    const keys = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), { minLength: 2, maxLength: 30 });
    fc.assert(
      fc.property(keys, fc.nat(), (ks, pick) => {
        const dup = ks[pick % ks.length]!;
        const lines = ks.map((k, i) => `${k}: ${i}`);
        const r = parseManifests(`${lines.join('\n')}\n${dup}: again\n`);
        expect(r).toMatchObject({ ok: false, code: 'MANIFEST_INVALID', problems: [{ line: ks.length + 1, path: dup, message: `duplicate key ${JSON.stringify(dup)}` }] });
      }),
      { numRuns: fuzzRuns.duplicates },
    );
  });

  it('validates any resource-shaped value without throwing, every finding with a path', () => {
    const resource = fc.record(
      {
        apiVersion: fc.oneof(fc.constantFrom(...meshKinds.flatMap((k) => k.versions.map((v) => `${k.group}/${v}`))), fc.string()),
        kind: fc.oneof(fc.constantFrom(...meshKinds.map((k) => k.kind)), fc.string()),
        metadata: fc.oneof(fc.record({ name: fc.string({ maxLength: 70 }), namespace: fc.string({ maxLength: 70 }) }, { requiredKeys: [] }), fc.anything()),
        spec: fc.anything({ maxDepth: 5 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(resource, validatesCleanly), { numRuns: fuzzRuns.resources });
  });

  it('survives any single-character change of a valid fixture', () => {
    fc.assert(
      fc.property(fc.constantFrom(...fixtures), fc.nat(), fc.string({ maxLength: 3 }), (text, at, insert) => {
        const i = at % (text.length + 1);
        const mutated = text.slice(0, i) + insert + text.slice(i + 1);
        const r = parseManifests(mutated);
        wellFormed(r);
        if (r.ok) for (const d of r.documents) validatesCleanly(d.value);
      }),
      { numRuns: fuzzRuns.mutatedFixtures },
    );
  });
});
