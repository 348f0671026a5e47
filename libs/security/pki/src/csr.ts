import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  bitString,
  children,
  decodeOid,
  DerError,
  expectTag,
  explicit,
  implicitPrimitive,
  octetString,
  oid,
  readOne,
  seq,
  set,
  smallInteger,
  Tag,
  utf8String,
  type Node,
} from './der';
import { pkiError } from './errors';
import { signerFor, spkiOf } from './keys';
import { csrSignatureDigests, Oid } from './oids';
import { pemBlocks, toPem } from './pem';

/** The largest CSR we look at; a P-256 CSR is ~400 bytes, an RSA-4096 one ~1.7 KiB. */
export const MAX_CSR_BYTES = 16 * 1024;

export type PublicKeyType = 'ec-p256' | 'ec-p384' | 'rsa';

/**
 * A PKCS#10 request whose signature has been verified. Only `spki` (the public key) is used to
 * issue: identities come from authentication, never from the request's subject or SANs.
 */
export interface ParsedCsr {
  readonly der: Buffer;
  /** DER SubjectPublicKeyInfo, copied verbatim into the certificate. */
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly keyType: PublicKeyType;
  /** Modulus length for RSA, curve size for EC. */
  readonly keyBits: number;
}

/** Parses a PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) or DER CSR and verifies its signature. */
export function parseCsr(input: string | Buffer): ParsedCsr {
  const der = csrDer(input);
  let info: Node;
  let algOid: string;
  let signature: Buffer;
  let spkiNode: Node;
  let algParams: Node | undefined;
  try {
    const top = expectTag(readOne(der), Tag.SEQUENCE, 'CertificationRequest');
    const [infoNode, algNode, sigNode, extra] = children(top);
    if (extra !== undefined) throw new DerError('CertificationRequest has extra fields');
    info = expectTag(infoNode, Tag.SEQUENCE, 'certificationRequestInfo');
    const [version, subject, spki] = children(info);
    expectTag(version, Tag.INTEGER, 'version');
    if (version!.content.length !== 1 || version!.content[0] !== 0) throw new DerError('version must be 0 (v1)');
    expectTag(subject, Tag.SEQUENCE, 'subject');
    spkiNode = expectTag(spki, Tag.SEQUENCE, 'subjectPKInfo');
    const alg = children(expectTag(algNode, Tag.SEQUENCE, 'signatureAlgorithm'));
    algOid = decodeOid(expectTag(alg[0], Tag.OID, 'signatureAlgorithm.algorithm').content);
    if (alg.length > 2) throw new DerError('signatureAlgorithm has extra fields');
    algParams = alg[1];
    const sig = expectTag(sigNode, Tag.BIT_STRING, 'signature');
    if (sig.content.length < 2 || sig.content[0] !== 0) throw new DerError('signature BIT STRING is empty or not byte-aligned');
    signature = sig.content.subarray(1);
  } catch (err) {
    if (err instanceof DerError) throw pkiError('CSR_MALFORMED', `the CSR is not a valid PKCS#10 request: ${err.message}`);
    throw err;
  }
  const { publicKey, keyType, keyBits } = publicKeyOf(spkiNode);
  const digest = csrSignatureDigests[algOid];
  if (digest === undefined) {
    throw pkiError('CSR_SIGNATURE_ALGORITHM_UNSUPPORTED', `CSR signature algorithm ${algOid} is not supported (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512)`, { algorithm: algOid });
  }
  const algIsEc = algOid.startsWith('1.2.840.10045.4.');
  // The parameters are outside the signed part, so they are checked strictly: absent for ECDSA
  // (RFC 5758 §3.2), NULL or absent for RSA PKCS#1 v1.5 (RFC 4055 §5). Found by fuzzing.
  if (algParams !== undefined && (algIsEc || algParams.tag !== Tag.NULL || algParams.content.length !== 0)) {
    throw pkiError('CSR_MALFORMED', `the CSR is not a valid PKCS#10 request: signatureAlgorithm parameters must be ${algIsEc ? 'absent for ECDSA' : 'NULL or absent'}`);
  }
  let ok = false;
  if (algIsEc === keyType.startsWith('ec-')) {
    try {
      ok = verify(digest, info.raw, algIsEc ? { key: publicKey, dsaEncoding: 'der' } : publicKey, signature);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw pkiError('CSR_SIGNATURE_INVALID', 'the CSR signature does not verify with the public key in the CSR');
  return { der, spki: spkiNode.raw, publicKey, keyType, keyBits };
}

function csrDer(input: string | Buffer): Buffer {
  if (typeof input === 'string') {
    if (input.length > MAX_CSR_BYTES * 2) throw pkiError('CSR_MALFORMED', `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
    const block = pemBlocks(input).find((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
    if (block === undefined) throw pkiError('CSR_MALFORMED', 'no PEM "CERTIFICATE REQUEST" block found');
    if (block.der.length === 0) throw pkiError('CSR_MALFORMED', 'the PEM block is empty');
    return block.der;
  }
  if (input.length === 0) throw pkiError('CSR_MALFORMED', 'the CSR is empty');
  if (input.length > MAX_CSR_BYTES) throw pkiError('CSR_MALFORMED', `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  return input;
}

function publicKeyOf(spki: Node): { publicKey: KeyObject; keyType: PublicKeyType; keyBits: number } {
  let algOid: string;
  let param: string | undefined;
  try {
    const alg = children(expectTag(children(spki)[0], Tag.SEQUENCE, 'subjectPKInfo.algorithm'));
    algOid = decodeOid(expectTag(alg[0], Tag.OID, 'subjectPKInfo.algorithm.algorithm').content);
    param = alg[1]?.tag === Tag.OID ? decodeOid(alg[1].content) : undefined;
  } catch (err) {
    if (err instanceof DerError) throw pkiError('CSR_MALFORMED', `the CSR public key is malformed: ${err.message}`);
    throw err;
  }
  let keyType: PublicKeyType;
  if (algOid === Oid.ecPublicKey && param === Oid.prime256v1) keyType = 'ec-p256';
  else if (algOid === Oid.ecPublicKey && param === Oid.secp384r1) keyType = 'ec-p384';
  else if (algOid === Oid.rsaEncryption) keyType = 'rsa';
  else {
    const name = algOid === Oid.ed25519 ? 'Ed25519' : algOid === Oid.ed448 ? 'Ed448' : algOid === Oid.ecPublicKey ? `EC curve ${param ?? '(explicit parameters)'}` : algOid;
    throw pkiError('KEY_TYPE_UNSUPPORTED', `CSR key type ${name} is not supported (ECDSA P-256/P-384 or RSA 2048-8192)`, { keyAlgorithm: algOid });
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
  } catch {
    throw pkiError('CSR_MALFORMED', 'the CSR public key cannot be decoded');
  }
  if (keyType === 'rsa') {
    const bits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048 || bits > 8192) throw pkiError('KEY_SIZE_UNSUPPORTED', `RSA key of ${bits} bits is not supported (2048-8192)`, { keyBits: bits });
    return { publicKey, keyType, keyBits: bits };
  }
  return { publicKey, keyType, keyBits: keyType === 'ec-p256' ? 256 : 384 };
}

export interface CsrOptions {
  /** Subject CN (optional; CAs ignore it). */
  readonly commonName?: string;
  readonly dnsNames?: readonly string[];
  readonly uris?: readonly string[];
}

/** Builds a signed PKCS#10 request (PEM) for `privateKey`: for clients, tests and control-plane serving certs. */
export function createCsr(privateKey: KeyObject, opts: CsrOptions = {}): string {
  const subject = opts.commonName === undefined ? seq() : seq(set(seq(oid(Oid.commonName), utf8String(opts.commonName))));
  const names = [
    ...(opts.dnsNames ?? []).map((d) => implicitPrimitive(2, Buffer.from(d, 'ascii'))),
    ...(opts.uris ?? []).map((u) => implicitPrimitive(6, Buffer.from(u, 'ascii'))),
  ];
  const attributes =
    names.length === 0
      ? explicit(0)
      : explicit(0, seq(oid(Oid.extensionRequest), set(seq(seq(oid(Oid.subjectAltName), octetString(seq(...names)))))));
  const info = seq(smallInteger(0), subject, spkiOf(privateKey), attributes);
  const signer = signerFor(privateKey);
  return toPem('CERTIFICATE REQUEST', seq(info, signer.algorithmIdentifier, bitString(signer.sign(info))));
}

