import { randomBytes } from 'node:crypto';

/** W3C trace context of an incoming request (`traceparent: 00-<trace-id>-<parent-id>-<flags>`). */
export interface TraceContext {
  readonly traceId: string;
  readonly parentId: string | undefined;
  readonly flags: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  if (value === undefined) return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (m === null || m[1] === 'ff' || /^0+$/.test(m[2] as string) || /^0+$/.test(m[3] as string)) return undefined;
  return { traceId: m[2] as string, parentId: m[3] as string, flags: m[4] as string };
}

let pool = Buffer.alloc(0);
let offset = 0;

/** A random 8-byte span id, lowercase hex (ids drawn from a pooled random buffer). */
export function newSpanId(): string {
  if (offset + 8 > pool.length) {
    pool = randomBytes(8 * 1024);
    offset = 0;
  }
  const id = pool.toString('hex', offset, offset + 8);
  offset += 8;
  return id;
}

export function newTraceId(): string {
  return newSpanId() + newSpanId();
}
