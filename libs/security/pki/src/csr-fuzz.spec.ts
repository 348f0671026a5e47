import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { createCsr, parseCsr } from './csr';
import { generatePrivateKey } from './keys';
import { toPem } from './pem';

// Property-based fuzzing of the CSR parser (citadel's untrusted input). Run counts are recorded
// in docs/security.md; change both together.
const fuzzRuns = { bytes: 3000, mutatedDer: 3000, mutatedPem: 1000 } as const;

const valid = [generatePrivateKey('ecdsa-p256'), generatePrivateKey('rsa-2048')].map((k) => createCsr(k, { dnsNames: ['a.example'] }));
const validDer = valid.map((pem) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64'));

/** The parser either returns a verified CSR or throws a typed PKI error: nothing else. */
function parsesOrRefuses(input: string | Buffer): 'parsed' | 'refused' {
  try {
    const csr = parseCsr(input);
    expect(csr.spki.length).toBeGreaterThan(0);
    return 'parsed';
  } catch (err) {
    expect(isAviaryError(err), String(err)).toBe(true);
    if (isAviaryError(err)) expect(err.kind).toBe('INVALID_ARGUMENT');
    return 'refused';
  }
}

describe('CSR parser under fuzzing', () => {
  it('parses the valid requests it is fuzzed from', () => {
    for (const pem of valid) expect(parsesOrRefuses(pem)).toBe('parsed');
  });

  it('refuses arbitrary bytes and text with a typed error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)), fc.string({ maxLength: 2048 })), (input) => {
        expect(parsesOrRefuses(input)).toBe('refused');
      }),
      { numRuns: fuzzRuns.bytes },
    );
  });

  it('never accepts a CSR with a changed byte (its signature no longer verifies) and never crashes', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (which, at, xor, truncate) => {
        const der = Buffer.from(validDer[which]!);
        const i = at % der.length;
        const mutated = truncate ? der.subarray(0, i) : (der[i] = der[i]! ^ xor, der);
        const outcome = parsesOrRefuses(mutated);
        // A flipped bit may land in a place DER ignores only in theory; every byte here is signed or structural.
        expect(outcome).toBe('refused');
      }),
      { numRuns: fuzzRuns.mutatedDer },
    );
  });

  it('handles mangled PEM armour', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.nat(), fc.string({ maxLength: 8 }), (which, at, insert) => {
        const pem = toPem('CERTIFICATE REQUEST', validDer[which]!);
        const i = at % pem.length;
        parsesOrRefuses(pem.slice(0, i) + insert + pem.slice(i + 1));
      }),
      { numRuns: fuzzRuns.mutatedPem },
    );
  });
});
