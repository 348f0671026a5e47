import { createHash } from 'node:crypto';
import { AuthenticationV1Api, type KubeConfig, type V1TokenReview } from '@kubernetes/client-node';
import { assertIdentityNames, caError, type Identity, type TokenValidator } from '@aviary/ca';
import { AviaryError } from '@aviary/errors';
import { messageOf, statusOf } from './kube-config';

/** The audience Istio's CA asks tokens to be minted for (`kubectl create token <sa> --audience istio-ca`). */
export const ISTIO_CA_AUDIENCE = 'istio-ca';
const SA_PREFIX = 'system:serviceaccount:';
const MAX_TOKEN_LENGTH = 16 * 1024;

/** The `TokenReview` call, as a function so the validator can be exercised without an API server. */
export type ReviewToken = (token: string, audiences: readonly string[]) => Promise<V1TokenReview['status']>;

export interface TokenReviewValidatorOptions {
  readonly audience?: string;
  /** Most cached reviews; the oldest are evicted first. */
  readonly maxCacheEntries?: number;
  /** How long a review of a token without `exp` (legacy Secret tokens) is cached. */
  readonly noExpiryCacheMs?: number;
  readonly now?: () => number;
}

/** The `exp` claim (seconds) of a JWT, read without verifying it (the API server verifies); undefined if absent or unreadable. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

/** `system:serviceaccount:<ns>:<sa>` → its parts; undefined for any other user. */
export function parseServiceAccountUser(username: string | undefined): { namespace: string; serviceAccount: string } | undefined {
  if (username === undefined || !username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(':');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return undefined;
  return { namespace: parts[0]!, serviceAccount: parts[1]! };
}

/** A TokenReview through the API server (needs `create tokenreviews.authentication.k8s.io`). */
export function tokenReviewer(kc: KubeConfig): ReviewToken {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token, audiences) => {
    try {
      const review = await api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...audiences] } } });
      return review.status;
    } catch (err) {
      throw new AviaryError('UNAVAILABLE', 'TOKEN_REVIEW_FAILED', `TokenReview failed (${statusOf(err) ?? 'no response'}): ${messageOf(err)}`, undefined, { cause: err });
    }
  };
}

/**
 * Citadel's TokenValidator for Kubernetes service-account tokens (linkerd2
 * `controller/identity/validator.go`): a TokenReview with audience `istio-ca`; the token must be
 * authenticated, for that audience, and a service account's. Accepted reviews are cached (by
 * SHA-256 of the token, never the token) until the token's `exp`, in a bounded cache; refusals
 * are not cached.
 */
export class TokenReviewValidator implements TokenValidator {
  private readonly cache = new Map<string, Identity>();
  private readonly audience: string;
  private readonly now: () => number;
  /** TokenReviews sent (cache misses), for tests and metrics. */
  reviews = 0;

  constructor(
    private readonly review: ReviewToken,
    private readonly opts: TokenReviewValidatorOptions = {},
  ) {
    this.audience = opts.audience ?? ISTIO_CA_AUDIENCE;
    this.now = opts.now ?? Date.now;
  }

  async validate(token: string): Promise<Identity> {
    if (token.length === 0) throw caError('TOKEN_MISSING', 'a bearer token is required');
    if (token.length > MAX_TOKEN_LENGTH) throw caError('TOKEN_MALFORMED', 'the token is too long');
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      if (cached.expiresAt.getTime() > this.now()) return cached;
      this.cache.delete(key);
    }
    const exp = jwtExpiry(token);
    if (exp !== undefined && exp * 1000 <= this.now()) throw caError('TOKEN_EXPIRED', 'the token has expired');

    this.reviews += 1;
    const status = await this.review(token, [this.audience]);
    if (status?.authenticated !== true) {
      const reason = status?.error ?? 'not authenticated';
      if (/audience/i.test(reason)) throw caError('TOKEN_AUDIENCE_MISMATCH', `the token is not for audience ${this.audience}: ${reason}`);
      throw caError('TOKEN_SIGNATURE_INVALID', `the API server did not authenticate the token: ${reason}`);
    }
    if (!(status.audiences ?? []).includes(this.audience)) {
      throw caError('TOKEN_AUDIENCE_MISMATCH', `the token is not for audience ${this.audience} (reviewed audiences: ${(status.audiences ?? []).join(',') || 'none'})`);
    }
    const who = parseServiceAccountUser(status.user?.username);
    if (who === undefined) throw caError('TOKEN_AUDIENCE_MISMATCH', `the token is not a service account's (user ${JSON.stringify(status.user?.username ?? '')})`);
    assertIdentityNames(who.namespace, who.serviceAccount);
    const expiresAt = new Date(exp !== undefined ? exp * 1000 : this.now() + (this.opts.noExpiryCacheMs ?? 300_000));
    const identity: Identity = { namespace: who.namespace, serviceAccount: who.serviceAccount, expiresAt };
    this.remember(key, identity);
    return identity;
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  private remember(key: string, identity: Identity): void {
    const max = this.opts.maxCacheEntries ?? 10_000;
    if (this.cache.size >= max) {
      const now = this.now();
      for (const [k, v] of this.cache) if (v.expiresAt.getTime() <= now) this.cache.delete(k);
      while (this.cache.size >= max) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(key, identity);
  }
}

/**
 * Join tokens (issuer `aviary-citadel`) keep working beside service-account tokens: a token
 * whose unverified `iss` is the join-token issuer goes to `join`, every other one to `other`.
 * Each validator still verifies its token fully.
 */
export function joinTokensOr(join: TokenValidator, other: TokenValidator, joinIssuer: string): TokenValidator {
  return {
    validate: (token) => {
      const payload = token.split('.')[1];
      let iss: unknown;
      try {
        iss = payload === undefined ? undefined : (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss?: unknown }).iss;
      } catch {
        iss = undefined;
      }
      return iss === joinIssuer ? join.validate(token) : other.validate(token);
    },
  };
}
