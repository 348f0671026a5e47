/**
 * Property-based fuzzing of pilot's JWKS intake (what an issuer's jwksUri returns): any text is
 * either a key set, re-serialized as compact JSON that Envoy's jwt_authn gets inline, or refused
 * with an Error naming the problem. The run count is recorded in docs/security.md.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeJwks } from './jwks';

const fuzzRuns = { text: 3000, shaped: 3000 } as const;

function intake(text: string): void {
  let out: string;
  try {
    out = normalizeJwks(text);
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^JWKS /);
    return;
  }
  const parsed = JSON.parse(out) as { keys: Array<{ kty: unknown }> };
  expect(parsed.keys.length).toBeGreaterThan(0);
  expect(parsed.keys.every((k) => typeof k.kty === 'string')).toBe(true);
  expect(out.length).toBeLessThanOrEqual(text.length);
}

const key = fc.record({ kty: fc.oneof(fc.constantFrom('RSA', 'EC', 'oct'), fc.jsonValue()), kid: fc.string(), n: fc.base64String(), e: fc.constantFrom('AQAB', ''), crv: fc.string() }, { requiredKeys: [] });

describe('JWKS intake, fuzzed', () => {
  it('takes any text to a key set or an error', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 2000 }), fc.json({ maxDepth: 4 })), intake), { numRuns: fuzzRuns.text });
  });

  it('takes key-set-shaped JSON to a key set or an error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.record({ keys: fc.array(fc.oneof(key, fc.jsonValue()), { maxLength: 8 }) }), fc.record({ keys: fc.jsonValue() })), (doc) => intake(JSON.stringify(doc, null, 1))),
      { numRuns: fuzzRuns.shaped },
    );
  });
});
