import type { V1TokenReviewStatus } from '@kubernetes/client-node';
import { isAviaryError } from '@aviary/errors';
import { describe, expect, it } from 'vitest';
import { jwtExpiry, parseServiceAccountUser, TokenReviewValidator, type ReviewToken } from './token-review';

function jwt(claims: Record<string, unknown>): string {
  const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'RS256' })}.${b(claims)}.c2ln`;
}

/** What the API server answers for our test tokens: the `sub`/`aud` claims, taken at face value. */
const reviewer =
  (calls: string[][]): ReviewToken =>
  async (token, audiences) => {
    calls.push([...audiences]);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string[] };
    const aud = claims.aud.filter((a) => audiences.includes(a));
    const status: V1TokenReviewStatus =
      aud.length === 0 ? { authenticated: false, error: '[invalid bearer token, token audiences ["other"] is invalid for the target audiences ["istio-ca"]]' } : { authenticated: true, audiences: aud, user: { username: claims.sub } };
    return status;
  };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isAviaryError(err) ? `${err.kind}/${err.code}` : String(err);
  }
}

describe('TokenReviewValidator', () => {
  const now = 1_800_000_000_000;
  it('accepts a service-account token for istio-ca and caches it until exp', async () => {
    const calls: string[][] = [];
    let clock = now;
    const v = new TokenReviewValidator(reviewer(calls), { now: () => clock });
    const token = jwt({ sub: 'system:serviceaccount:shop:reviews', aud: ['istio-ca'], exp: now / 1000 + 600 });
    const id = await v.validate(token);
    expect(id).toEqual({ namespace: 'shop', serviceAccount: 'reviews', expiresAt: new Date(now + 600_000) });
    await v.validate(token);
    expect(calls).toEqual([['istio-ca']]);
    clock = now + 601_000;
    expect(await codeOf(v.validate(token))).toBe('UNAUTHENTICATED/TOKEN_EXPIRED');
    expect(v.cacheSize).toBe(0);
  });

  it('refuses other audiences, non-service-account users and bad names, and caches no refusal', async () => {
    const calls: string[][] = [];
    const v = new TokenReviewValidator(reviewer(calls), { now: () => now });
    const exp = now / 1000 + 600;
    const other = jwt({ sub: 'system:serviceaccount:shop:reviews', aud: ['other'], exp });
    expect(await codeOf(v.validate(other))).toBe('UNAUTHENTICATED/TOKEN_AUDIENCE_MISMATCH');
    expect(await codeOf(v.validate(other))).toBe('UNAUTHENTICATED/TOKEN_AUDIENCE_MISMATCH');
    expect(calls).toHaveLength(2);
    expect(await codeOf(v.validate(jwt({ sub: 'alice', aud: ['istio-ca'], exp })))).toBe('UNAUTHENTICATED/TOKEN_AUDIENCE_MISMATCH');
    expect(await codeOf(v.validate(jwt({ sub: 'system:serviceaccount:Bad_NS:x', aud: ['istio-ca'], exp })))).toBe('INVALID_ARGUMENT/IDENTITY_INVALID');
    expect(await codeOf(v.validate(''))).toBe('UNAUTHENTICATED/TOKEN_MISSING');
  });

  it('keeps the cache bounded', async () => {
    const v = new TokenReviewValidator(reviewer([]), { now: () => now, maxCacheEntries: 3 });
    for (let i = 0; i < 10; i++) await v.validate(jwt({ sub: `system:serviceaccount:shop:sa-${i}`, aud: ['istio-ca'], exp: now / 1000 + 600 }));
    expect(v.cacheSize).toBe(3);
  });

  it('parses exp and service-account users', () => {
    expect(jwtExpiry(jwt({ exp: 42 }))).toBe(42);
    expect(jwtExpiry('not-a-jwt')).toBeUndefined();
    expect(parseServiceAccountUser('system:serviceaccount:ns:sa')).toEqual({ namespace: 'ns', serviceAccount: 'sa' });
    expect(parseServiceAccountUser('system:serviceaccount:ns')).toBeUndefined();
    expect(parseServiceAccountUser('system:node:n1')).toBeUndefined();
  });
});
