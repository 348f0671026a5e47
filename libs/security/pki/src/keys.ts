import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { nullValue, oid, seq } from './der';
import { pkiError } from './errors';
import { Oid } from './oids';

/** CA key algorithms: ECDSA P-256 by default, RSA-2048 for peers that need it. */
export type KeyAlgorithm = 'ecdsa-p256' | 'rsa-2048';

export function generatePrivateKey(algorithm: KeyAlgorithm = 'ecdsa-p256'): KeyObject {
  return algorithm === 'rsa-2048'
    ? generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey
    : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

/** PKCS#8 PEM of a private key. Callers must keep it out of logs, errors and API responses. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function privateKeyFromPem(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    // The key text itself must never reach the error.
    throw pkiError('CA_LOAD_FAILED', 'the CA private key is not a readable PEM private key', undefined, err);
  }
}

/** DER SubjectPublicKeyInfo of a key (private or public). */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/** How a given CA key signs: the AlgorithmIdentifier it writes and the node:crypto call it makes. */
export interface Signer {
  readonly algorithmIdentifier: Buffer;
  sign(data: Buffer): Buffer;
}

export function signerFor(key: KeyObject): Signer {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const digest = curve === 'secp384r1' ? 'sha384' : curve === 'prime256v1' ? 'sha256' : undefined;
    if (digest === undefined) throw pkiError('KEY_TYPE_UNSUPPORTED', `CA key curve ${String(curve)} is not supported (P-256, P-384)`);
    const algorithmIdentifier = seq(oid(digest === 'sha384' ? Oid.ecdsaWithSha384 : Oid.ecdsaWithSha256));
    const opts = { key, dsaEncoding: 'der' as const };
    return { algorithmIdentifier, sign: (data) => sign(digest, data, opts) };
  }
  if (type === 'rsa') {
    const algorithmIdentifier = seq(oid(Oid.sha256WithRsa), nullValue());
    return { algorithmIdentifier, sign: (data) => sign('sha256', data, key) };
  }
  throw pkiError('KEY_TYPE_UNSUPPORTED', `CA key type ${String(type)} is not supported (ECDSA, RSA)`);
}
