import protobuf from 'protobufjs';

/*
 * Protobuf wire primitives for the canonical writer: the size of a value and its bytes, written
 * at a position of a buffer that is already large enough (each writer returns the position
 * after what it wrote). Values are coerced as protobufjs's Writer coerces them (`| 0`, `>>> 0`,
 * truthiness, `LongBits.from`), so that a canonical value and anything else the old writer took
 * come out as the same bytes.
 */

/** Bytes of `value` (a uint32) as a varint. */
export function varint32Size(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

export function writeVarint32(buf: Uint8Array, pos: number, value: number): number {
  while (value > 127) {
    buf[pos++] = (value & 127) | 128;
    value >>>= 7;
  }
  buf[pos++] = value;
  return pos;
}

export function writeFixed32(buf: Uint8Array, pos: number, value: number): number {
  buf[pos] = value & 255;
  buf[pos + 1] = (value >>> 8) & 255;
  buf[pos + 2] = (value >>> 16) & 255;
  buf[pos + 3] = value >>> 24;
  return pos + 4;
}

/*
 * A 64-bit value as two uint32 halves, set by `bits64` (no object per value). A number is split
 * as `LongBits.fromNumber` splits it (negative ones in two's complement); a decimal string or a
 * Long-like object goes through protobufjs's own `LongBits.from`.
 */
let lo = 0;
let hi = 0;

function bits64(value: unknown): void {
  if (typeof value === 'number') {
    splitNumber(value);
  } else {
    const bits = protobuf.util.LongBits.from(value as string | protobuf.Long);
    lo = bits.lo;
    hi = bits.hi;
  }
}

function splitNumber(value: number): void {
  if (value === 0) {
    lo = hi = 0;
    return;
  }
  const negative = value < 0;
  if (negative) value = -value;
  lo = value >>> 0;
  hi = ((value - lo) / 4294967296) >>> 0;
  if (negative) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 4294967295) {
      lo = 0;
      if (++hi > 4294967295) hi = 0;
    }
  }
}

function zigZag64(): void {
  const mask = hi >> 31;
  hi = (((hi << 1) | (lo >>> 31)) ^ mask) >>> 0;
  lo = ((lo << 1) ^ mask) >>> 0;
}

function varint64Size(): number {
  if (hi === 0) return varint32Size(lo);
  let l = lo;
  let h = hi;
  let n = 1;
  while (h) {
    n++;
    l = ((l >>> 7) | (h << 25)) >>> 0;
    h >>>= 7;
  }
  while (l > 127) {
    n++;
    l >>>= 7;
  }
  return n;
}

function writeVarint64(buf: Uint8Array, pos: number): number {
  let l = lo;
  let h = hi;
  while (h) {
    buf[pos++] = (l & 127) | 128;
    l = ((l >>> 7) | (h << 25)) >>> 0;
    h >>>= 7;
  }
  while (l > 127) {
    buf[pos++] = (l & 127) | 128;
    l >>>= 7;
  }
  buf[pos++] = l;
  return pos;
}

/** An int32 as protobufjs writes it: a negative one sign-extended to a 10-byte varint. */
export function int32Size(value: number): number {
  return value < 0 ? 10 : varint32Size(value);
}

export function writeInt32(buf: Uint8Array, pos: number, value: number): number {
  if (value >= 0) return writeVarint32(buf, pos, value);
  lo = value >>> 0;
  hi = 0xffffffff;
  return writeVarint64(buf, pos);
}

/** int64 and uint64 (the same varint). */
export function int64Size(value: unknown): number {
  if (typeof value === 'number' && value >>> 0 === value) return varint32Size(value);
  bits64(value);
  return varint64Size();
}

export function writeInt64(buf: Uint8Array, pos: number, value: unknown): number {
  if (typeof value === 'number' && value >>> 0 === value) return writeVarint32(buf, pos, value);
  bits64(value);
  return writeVarint64(buf, pos);
}

export function sint64Size(value: unknown): number {
  bits64(value);
  zigZag64();
  return varint64Size();
}

export function writeSint64(buf: Uint8Array, pos: number, value: unknown): number {
  bits64(value);
  zigZag64();
  return writeVarint64(buf, pos);
}

/** fixed64 and sfixed64: the low half, then the high one. */
export function writeFixed64(buf: Uint8Array, pos: number, value: unknown): number {
  bits64(value);
  return writeFixed32(buf, writeFixed32(buf, pos, lo), hi);
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const f32 = new Float32Array(1);
const f32Bytes = new Uint8Array(f32.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A double, through a Float64Array as protobufjs writes it (the same NaN bits). */
export function writeDouble(buf: Uint8Array, pos: number, value: number): number {
  f64[0] = value;
  for (let i = 0; i < 8; i++) buf[pos + i] = f64Bytes[littleEndian ? i : 7 - i]!;
  return pos + 8;
}

export function writeFloat(buf: Uint8Array, pos: number, value: number): number {
  f32[0] = value;
  for (let i = 0; i < 4; i++) buf[pos + i] = f32Bytes[littleEndian ? i : 3 - i]!;
  return pos + 4;
}

/**
 * Strings shorter than this (in UTF-16 units) are measured and written in JS, longer ones by
 * Node (`Buffer.byteLength`, `utf8Write`), the split protobufjs's BufferWriter makes. The two
 * differ only on a lone surrogate (JS: its CESU-8 bytes; Node: U+FFFD), both 3 bytes, so a
 * short string's UTF-8 is at most 39 × 3 bytes: its length prefix is one byte.
 */
export const SHORT_STRING = 40;

/** UTF-8 bytes of a string shorter than `SHORT_STRING`. */
export function utf8ShortLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      i++;
      n += 2;
    } else n += 2;
  }
  return n;
}

/** Writes a string shorter than `SHORT_STRING` with its one-byte length prefix. */
export function writeShortString(buf: Uint8Array, pos: number, s: string): number {
  const start = pos++;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = (c >> 6) | 192;
      buf[pos++] = (c & 63) | 128;
    } else {
      const next = s.charCodeAt(i + 1);
      if ((c & 0xfc00) === 0xd800 && (next & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c & 0x03ff) << 10) + (next & 0x03ff);
        i++;
        buf[pos++] = (c >> 18) | 240;
        buf[pos++] = ((c >> 12) & 63) | 128;
      } else buf[pos++] = (c >> 12) | 224;
      buf[pos++] = ((c >> 6) & 63) | 128;
      buf[pos++] = (c & 63) | 128;
    }
  }
  buf[start] = pos - start - 1;
  return pos;
}

/** The bytes a base64 string decodes to (as `Buffer.from(s, 'base64')` decodes it), counted by decoding into a scratch buffer. */
let base64Scratch = Buffer.allocUnsafeSlow(1024);

export function base64Length(s: string): number {
  const bound = Buffer.byteLength(s, 'base64');
  if (bound > base64Scratch.length) base64Scratch = Buffer.allocUnsafeSlow(Math.max(bound, base64Scratch.length * 2));
  return base64Scratch.write(s, 0, bound, 'base64');
}
