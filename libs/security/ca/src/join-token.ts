import { createHash, createPublicKey, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { caError } from './errors';
import { assertIdentityNames, type Identity } from './identity';
import type { TokenValidator } from './token-validator';

/** Issuer (`iss`) of join tokens, and their default audience (`aud`). */
export const JOIN_TOKEN_ISSUER = 'aviary-citadel';
export const JOIN_TOKEN_AUDIENCE = 'istio-ca';
export const MAX_JOIN_TOKEN_TTL_SECONDS = 30 * 86_400;
const MAX_TOKEN_LENGTH = 8 * 1024;

export interface JoinTokenClaims {
  readonly iss: string;
  readonly aud: string;
  readonly ns: string;
  readonly sa: string;
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** The key id of a join-token signing key: the first 16 hex digits of SHA-256(SPKI). */
export function joinTokenKeyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/**
 * Mints a join token: a compact JWS (ES256) that proves one namespace/service account until
 * `exp`. `key` must be a P-256 private key owned by citadel.
 */
export function mintJoinToken(
  key: KeyObject,
  opts: { namespace: string; serviceAccount: string; ttlSeconds: number; audience?: string; now?: Date },
): { token: string; expiresAt: Date } {
  assertIdentityNames(opts.namespace, opts.serviceAccount);
  if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds < 1 || opts.ttlSeconds > MAX_JOIN_TOKEN_TTL_SECONDS) {
    throw caError('TTL_INVALID', `token ttl must be an integer between 1 and ${MAX_JOIN_TOKEN_TTL_SECONDS} seconds`);
  }
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const claims: JoinTokenClaims = {
    iss: JOIN_TOKEN_ISSUER,
    aud: opts.audience ?? JOIN_TOKEN_AUDIENCE,
    ns: opts.namespace,
    sa: opts.serviceAccount,
    iat,
    exp: iat + opts.ttlSeconds,
    jti: randomUUID(),
  };
  const input = `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: joinTokenKeyId(key) }))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return { token: `${input}.${b64url(sig)}`, expiresAt: new Date(claims.exp * 1000) };
}

/**
 * Validates join tokens minted by `mintJoinToken` with one of `keys` (public or private; several
 * so that a signing key can be replaced without invalidating live tokens).
 */
export class JoinTokenValidator implements TokenValidator {
  private readonly keys: ReadonlyMap<string, KeyObject>;

  constructor(
    keys: readonly KeyObject[],
    private readonly opts: { audience?: string; clock?: () => Date } = {},
  ) {
    this.keys = new Map(keys.map((k) => [joinTokenKeyId(k), k.type === 'private' ? createPublicKey(k) : k]));
  }

  async validate(token: string): Promise<Identity> {
    return this.validateSync(token);
  }

  validateSync(token: string): Identity {
    if (token.length === 0) throw caError('TOKEN_MISSING', 'a bearer token is required');
    if (token.length > MAX_TOKEN_LENGTH) throw caError('TOKEN_MALFORMED', 'the token is too long');
    const parts = token.split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) throw caError('TOKEN_MALFORMED', 'the token is not a compact JWS');
    const header = decodeJson(parts[0]!, 'header');
    if (header['alg'] !== 'ES256') throw caError('TOKEN_MALFORMED', 'the token algorithm must be ES256');
    const kid = header['kid'];
    const keys = typeof kid === 'string' && this.keys.has(kid) ? [this.keys.get(kid)!] : [...this.keys.values()];
    const sig = Buffer.from(parts[2]!, 'base64url');
    const input = Buffer.from(`${parts[0]}.${parts[1]}`);
    const ok = sig.length === 64 && keys.some((key) => verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig));
    if (!ok) throw caError('TOKEN_SIGNATURE_INVALID', 'the token signature is not valid');
    const c = decodeJson(parts[1]!, 'claims');
    const { ns, sa, exp, iss, aud } = c;
    if (typeof ns !== 'string' || typeof sa !== 'string' || typeof exp !== 'number') throw caError('TOKEN_MALFORMED', 'the token lacks ns, sa or exp');
    if (iss !== JOIN_TOKEN_ISSUER || aud !== (this.opts.audience ?? JOIN_TOKEN_AUDIENCE)) {
      throw caError('TOKEN_AUDIENCE_MISMATCH', 'the token was not issued for this certificate authority');
    }
    const now = (this.opts.clock ?? (() => new Date()))().getTime();
    if (exp * 1000 <= now) throw caError('TOKEN_EXPIRED', 'the token has expired');
    try {
      assertIdentityNames(ns, sa);
    } catch {
      throw caError('TOKEN_MALFORMED', 'the token names an invalid namespace or service account');
    }
    return { namespace: ns, serviceAccount: sa, expiresAt: new Date(exp * 1000) };
  }
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw caError('TOKEN_MALFORMED', `the token ${what} is not a JSON object`);
}
