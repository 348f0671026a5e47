/**
 * A lean DER (X.690) encoder and reader: just the universal types that X.509 certificates and
 * PKCS#10 requests use. The encoder works on Buffers and never reflects over schemas, so the
 * issuance hot path is a handful of `Buffer.concat` calls around one signature.
 */

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthBytes(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  if (len < 0x100) return Buffer.from([0x81, len]);
  if (len < 0x10000) return Buffer.from([0x82, len >> 8, len & 0xff]);
  if (len < 0x1000000) return Buffer.from([0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  return Buffer.from([0x84, (len >>> 24) & 0xff, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff]);
}

/** One TLV with an arbitrary tag byte. */
export function tlv(tag: number, ...content: readonly Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const seq = (...items: readonly Buffer[]): Buffer => tlv(Tag.SEQUENCE, ...items);
export const set = (...items: readonly Buffer[]): Buffer => tlv(Tag.SET, ...items);
export const octetString = (b: Buffer): Buffer => tlv(Tag.OCTET_STRING, b);
export const nullValue = (): Buffer => Buffer.from([Tag.NULL, 0]);
export const boolean = (v: boolean): Buffer => Buffer.from([Tag.BOOLEAN, 1, v ? 0xff : 0]);
/** Context-specific constructed tag `[n]` (EXPLICIT wrapping). */
export const explicit = (n: number, ...items: readonly Buffer[]): Buffer => tlv(0xa0 | n, ...items);
/** Context-specific primitive tag `[n]` (IMPLICIT primitive, e.g. GeneralName choices). */
export const implicitPrimitive = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);
export const bitString = (bytes: Buffer, unusedBits = 0): Buffer => tlv(Tag.BIT_STRING, Buffer.from([unusedBits]), bytes);
export const utf8String = (s: string): Buffer => tlv(Tag.UTF8_STRING, Buffer.from(s, 'utf8'));

/** A non-negative INTEGER from big-endian magnitude bytes (leading zeros stripped, sign byte added). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return (m[0]! & 0x80) !== 0 ? tlv(Tag.INTEGER, Buffer.from([0]), m) : tlv(Tag.INTEGER, m);
}

export function smallInteger(n: number): Buffer {
  if (n < 0 || n > 0x7fffffff || !Number.isInteger(n)) throw new RangeError(`smallInteger: ${n}`);
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v >>>= 8;
  } while (v > 0);
  if ((bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(Tag.INTEGER, Buffer.from(bytes));
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER from dotted notation (cached: OIDs are a small closed set). */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached !== undefined) return cached;
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    let v = Math.floor(arc / 128);
    while (v > 0) {
      chunk.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  const encoded = tlv(Tag.OID, Buffer.from(out));
  oidCache.set(dotted, encoded);
  return encoded;
}

export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID');
  const first = content[0]!;
  const arcs = [first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80];
  let v = 0;
  for (let i = 1; i < content.length; i++) {
    const b = content[i]!;
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    } else if (i === content.length - 1) throw new DerError('truncated OID');
  }
  return arcs.join('.');
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const rest = `${pad2(date.getUTCMonth() + 1)}${pad2(date.getUTCDate())}${pad2(date.getUTCHours())}${pad2(date.getUTCMinutes())}${pad2(date.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(Tag.UTC_TIME, Buffer.from(`${pad2(y % 100)}${rest}`, 'ascii'));
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'ascii'));
}

export class DerError extends Error {
  override readonly name = 'DerError';
}

/** One decoded TLV: its tag, its content and the whole encoding (for hashing/signing as-is). */
export interface Node {
  readonly tag: number;
  readonly content: Buffer;
  readonly raw: Buffer;
}

/** Reads one TLV at `offset`; throws DerError on truncation or indefinite/oversized lengths. */
export function readNode(buf: Buffer, offset = 0): Node {
  if (offset + 2 > buf.length) throw new DerError('truncated: no tag/length');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let len = buf[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('length too large');
    if (offset + 2 + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new DerError('truncated: content runs past the end');
  return { tag, content: buf.subarray(offset + header, end), raw: buf.subarray(offset, end) };
}

/** Decodes `buf` as exactly one TLV (no trailing bytes). */
export function readOne(buf: Buffer): Node {
  const node = readNode(buf, 0);
  if (node.raw.length !== buf.length) throw new DerError('trailing bytes after the structure');
  return node;
}

/** The children of a constructed node. */
export function children(node: Node): Node[] {
  if ((node.tag & 0x20) === 0) throw new DerError(`tag 0x${node.tag.toString(16)} is not constructed`);
  const out: Node[] = [];
  let off = 0;
  while (off < node.content.length) {
    const child = readNode(node.content, off);
    out.push(child);
    off += child.raw.length;
  }
  return out;
}

export function expectTag(node: Node | undefined, tag: number, what: string): Node {
  if (node === undefined) throw new DerError(`${what}: missing`);
  if (node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}
