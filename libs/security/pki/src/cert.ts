import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import {
  bitString,
  boolean,
  children,
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
  time,
  unsignedInteger,
  utf8String,
  type Node,
} from './der';
import { pkiError } from './errors';
import type { Signer } from './keys';
import { Oid } from './oids';
import { pemBlocks } from './pem';

/** A subject alternative name: SPIFFE URIs for workloads, DNS names / IPs for serving certs. */
export type SubjectAltName = { readonly uri: string } | { readonly dns: string } | { readonly ip: string };

/** X.509 v3 certificate profile: what the certificate may be used for. */
export type Profile = 'leaf' | 'ca';

export interface TbsInput {
  readonly serial: Buffer;
  readonly issuerName: Buffer;
  readonly subjectName: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly subjectKeyId: Buffer;
  /** Omitted on self-signed roots. */
  readonly authorityKeyId?: Buffer;
  readonly sans: readonly SubjectAltName[];
  readonly profile: Profile;
}

// Constant extension encodings, built once (they never change between certificates).
const V3 = explicit(0, smallInteger(2));
const KU_LEAF = ext(Oid.keyUsage, true, bitString(Buffer.from([0xa0]), 5)); // digitalSignature, keyEncipherment
const KU_CA = ext(Oid.keyUsage, true, bitString(Buffer.from([0x86]), 1)); // digitalSignature, keyCertSign, cRLSign
const EKU_LEAF = ext(Oid.extKeyUsage, false, seq(oid(Oid.serverAuth), oid(Oid.clientAuth)));
const BC_LEAF = ext(Oid.basicConstraints, true, seq());
const BC_CA = ext(Oid.basicConstraints, true, seq(boolean(true)));

function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), boolean(true), octetString(value)) : seq(oid(id), octetString(value));
}

/** Encodes a TBSCertificate (RFC 5280 §4.1) ready to be signed. */
export function encodeTbs(input: TbsInput, signatureAlgorithm: Buffer): Buffer {
  const emptySubject = input.subjectName.length === 2;
  const exts: Buffer[] =
    input.profile === 'ca' ? [BC_CA, KU_CA] : [KU_LEAF, EKU_LEAF, BC_LEAF];
  exts.push(ext(Oid.subjectKeyIdentifier, false, octetString(input.subjectKeyId)));
  if (input.authorityKeyId !== undefined) exts.push(ext(Oid.authorityKeyIdentifier, false, seq(implicitPrimitive(0, input.authorityKeyId))));
  // RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical.
  if (input.sans.length > 0) exts.push(ext(Oid.subjectAltName, emptySubject, seq(...input.sans.map(generalName))));
  return seq(
    V3,
    unsignedInteger(input.serial),
    signatureAlgorithm,
    input.issuerName,
    seq(time(input.notBefore), time(input.notAfter)),
    input.subjectName,
    input.spki,
    explicit(3, seq(...exts)),
  );
}

/** Signs a TBSCertificate and wraps it into a Certificate (DER). */
export function signTbs(tbs: Buffer, signer: Signer): Buffer {
  return seq(tbs, signer.algorithmIdentifier, bitString(signer.sign(tbs)));
}

function generalName(san: SubjectAltName): Buffer {
  if ('uri' in san) return implicitPrimitive(6, Buffer.from(san.uri, 'ascii'));
  if ('dns' in san) return implicitPrimitive(2, Buffer.from(san.dns, 'ascii'));
  return implicitPrimitive(7, ipBytes(san.ip));
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:]+$/;

/** 4 for an IPv4 literal, 6 for an IPv6 literal (no zone, no embedded IPv4), 0 otherwise. */
export function ipVersion(s: string): 0 | 4 | 6 {
  if (IPV4.test(s)) return 4;
  if (!IPV6.test(s) || !s.includes(':')) return 0;
  const parts = s.split('::');
  if (parts.length > 2) return 0;
  const groups = parts.flatMap((p) => (p === '' ? [] : p.split(':')));
  if (groups.some((g) => g.length === 0 || g.length > 4)) return 0;
  return (parts.length === 2 ? groups.length < 8 : groups.length === 8) ? 6 : 0;
}

function ipBytes(ip: string): Buffer {
  const v = ipVersion(ip);
  if (v === 4) return Buffer.from(ip.split('.').map(Number));
  if (v === 6) {
    const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
    const h = head === '' || head === undefined ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
    return out;
  }
  throw pkiError('SAN_INVALID', `${JSON.stringify(ip)} is not an IP address`);
}

/** A distinguished name of `O=<organization>, CN=<commonName>` (either may be omitted). */
export function encodeName(parts: { organization?: string; commonName?: string }): Buffer {
  const rdns: Buffer[] = [];
  if (parts.organization !== undefined) rdns.push(set(seq(oid(Oid.organization), utf8String(parts.organization))));
  if (parts.commonName !== undefined) rdns.push(set(seq(oid(Oid.commonName), utf8String(parts.commonName))));
  return seq(...rdns);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Buffer): Buffer {
  const [, bits] = children(readOne(spki));
  return createHash('sha1').update(expectTag(bits, Tag.BIT_STRING, 'subjectPublicKey').content.subarray(1)).digest();
}

/**
 * A random, positive, non-zero 128-bit serial (CA/B Forum asks for ≥64 bits of entropy). The
 * first byte is at least 0x10 so the hex form is always 32 digits with no leading zero (as
 * `openssl x509 -serial` prints it).
 */
export function randomSerial(): Buffer {
  for (;;) {
    const b = randomBytes(16);
    if ((b[0] as number) >= 0x10) return b;
  }
}

/** The parts of a certificate the issuer needs: its raw subject, key id and public key info. */
export interface CertificateInfo {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  readonly subjectName: Buffer;
  readonly spki: Buffer;
  readonly subjectKeyId: Buffer;
  readonly isCa: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialHex: string;
}

export function parseCertificate(input: string | Buffer): CertificateInfo {
  let der: Buffer;
  if (typeof input === 'string') {
    const block = pemBlocks(input).find((b) => b.label === 'CERTIFICATE');
    if (block === undefined) throw pkiError('CERT_MALFORMED', 'no PEM "CERTIFICATE" block found');
    der = block.der;
  } else der = input;
  let x509: X509Certificate;
  let subjectName: Node;
  let spki: Node;
  let extensions: Node | undefined;
  try {
    x509 = new X509Certificate(der);
    const [tbs] = children(expectTag(readOne(der), Tag.SEQUENCE, 'Certificate'));
    const fields = children(expectTag(tbs, Tag.SEQUENCE, 'tbsCertificate'));
    const off = fields[0]?.tag === 0xa0 ? 1 : 0;
    subjectName = expectTag(fields[off + 4], Tag.SEQUENCE, 'subject');
    spki = expectTag(fields[off + 5], Tag.SEQUENCE, 'subjectPublicKeyInfo');
    extensions = fields.slice(off + 6).find((f) => f.tag === 0xa3);
  } catch (err) {
    throw pkiError('CERT_MALFORMED', `the certificate cannot be parsed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const skiExt = extensions === undefined ? undefined : findExtension(extensions, '2.5.29.14');
  let subjectKeyId: Buffer;
  try {
    subjectKeyId = skiExt === undefined ? keyIdentifier(spki.raw) : expectTag(readOne(skiExt), Tag.OCTET_STRING, 'subjectKeyIdentifier').content;
  } catch (err) {
    if (err instanceof DerError) throw pkiError('CERT_MALFORMED', `bad subjectKeyIdentifier: ${err.message}`);
    throw err;
  }
  return {
    der,
    x509,
    subjectName: subjectName.raw,
    spki: spki.raw,
    subjectKeyId,
    isCa: x509.ca,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    serialHex: x509.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
  };
}

/** The extnValue (inner DER) of extension `id` within the `[3]` extensions node. */
function findExtension(extensions: Node, id: string): Buffer | undefined {
  const target = oid(id);
  const list = children(expectTag(children(extensions)[0], Tag.SEQUENCE, 'extensions'));
  for (const e of list) {
    const parts = children(e);
    if (parts[0] !== undefined && parts[0].raw.equals(target)) return parts[parts.length - 1]!.content;
  }
  return undefined;
}
