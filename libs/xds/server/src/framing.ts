import * as grpcInterceptors from '@grpc/grpc-js/build/src/server-interceptors.js';
import { setFlagsFromString } from 'node:v8';
import { encodeResponse, serializeResponse, type PendingResponse } from './wire';

/**
 * ADS responses framed into reusable buffers. grpc-js 1.14 frames every message it sends by
 * allocating a buffer of the message's size plus 5 and copying the serializer's output into it
 * (`BaseServerInterceptingCall.serializeMessage`). A cold start sends some 380 MB of responses,
 * and each of those short-lived ArrayBuffers is external memory to V8, which starts a full
 * mark-compact for every ~64 MB of it (docs/benchmarks.md, "What starts the cold start's
 * mark-compacts"). grpc-js has no public way to send a framed buffer, so for calls of the ADS
 * service (those whose serializer is `serializeResponse`) two of its internal methods are wrapped:
 *
 * - `serializeMessage` encodes the response straight after the 5-byte prefix into a pooled buffer;
 * - `sendMessage` gives that buffer back to the pool in its write callback, which grpc-js calls
 *   from the HTTP/2 stream's write callback: Node calls that once the bytes have been written to
 *   the socket (or copied into its outgoing buffer), so nothing reads the buffer afterwards. When
 *   grpc-js never calls it (a write error, a message over `grpc.max_send_message_length`), the
 *   buffer is not reused and is left to the garbage collector.
 *
 * Everything else in `sendMessage` (cancellation, the size limit, headers, errors) stays grpc-js's.
 * The buffers go round only if few responses wait to be written at a time: `SendBudget` bounds that.
 */

/** The part of grpc-js's `BaseServerInterceptingCall` (1.14) wrapped here; internal, not a public API. */
interface CallInternals {
  readonly handler: { readonly serialize: unknown };
  serializeMessage(value: unknown): Buffer;
  sendMessage(message: unknown, callback: () => void): void;
}

/** Below this a framed response comes from Node's shared 8 KiB slab (`Buffer.allocUnsafe`), which is cheap. */
const POOLED_MIN = Buffer.poolSize >>> 1;
/** Above this a framed response gets a buffer of its own. */
const POOLED_MAX = 16 * 1024 * 1024;
/** Idle pooled buffers are kept up to this many bytes in all; what is given back beyond it is dropped. */
const IDLE_MAX = 64 * 1024 * 1024;
/** A pool nothing was taken from for this long lets its idle buffers go (a cold start is over). */
const IDLE_TRIM_MS = 30_000;

/** `length` rounded up to a quarter of its power of two: a pooled buffer is at most 25 % larger than asked. */
function sizeClass(length: number): number {
  const step = 1 << Math.max(0, 29 - Math.clz32(length - 1));
  return Math.ceil(length / step) * step;
}

/** Reusable ArrayBuffers by size class, of which at most `maxIdleBytes` are kept idle. */
export class FramePool {
  private readonly idle = new Map<number, ArrayBufferLike[]>();
  private readonly own = new WeakSet<ArrayBufferLike>();
  private idleBytes = 0;
  private takenSinceTrim = false;
  /** ArrayBuffers created for the pool so far (each is new external memory to V8). */
  created = 0;

  constructor(private readonly maxIdleBytes: number) {}

  /**
   * A buffer of at least `length` bytes. Pass its `buffer` to `give` once nothing reads it any
   * more. An idle buffer of the length's size class serves, else one of a larger class up to
   * twice that size: responses of one type vary in size from proxy to proxy, and a pool that
   * only matched classes exactly made a cold start allocate 1,070 buffers (80 MiB) anew.
   */
  take(length: number): Buffer {
    if (length < POOLED_MIN || length > POOLED_MAX) return Buffer.allocUnsafe(length);
    const size = sizeClass(length);
    this.takenSinceTrim = true;
    for (let c = size; c <= 2 * size; c = sizeClass(c + 1)) {
      const reused = this.idle.get(c)?.pop();
      if (reused) {
        this.idleBytes -= c;
        return Buffer.from(reused);
      }
    }
    const buf = Buffer.allocUnsafeSlow(size);
    this.own.add(buf.buffer);
    this.created++;
    return buf;
  }

  /** Takes back a buffer `take` gave out; ignores any other (a slab, an unpooled size). */
  give(buffer: ArrayBufferLike): void {
    if (!this.own.has(buffer) || this.idleBytes + buffer.byteLength > this.maxIdleBytes) return;
    let list = this.idle.get(buffer.byteLength);
    if (!list) this.idle.set(buffer.byteLength, (list = []));
    list.push(buffer);
    this.idleBytes += buffer.byteLength;
  }

  get idleSize(): number {
    return this.idleBytes;
  }

  /**
   * Lets the idle buffers go when nothing was taken since the last call: called every
   * `IDLE_TRIM_MS`, so the up to `maxIdleBytes` a cold start leaves behind are not held for the
   * process's life. Returns the bytes let go.
   */
  trimIfUnused(): number {
    const used = this.takenSinceTrim;
    this.takenSinceTrim = false;
    if (used) return 0;
    const freed = this.idleBytes;
    this.idle.clear();
    this.idleBytes = 0;
    return freed;
  }
}

export const framePool = new FramePool(IDLE_MAX);

/** Response → the buffer it was framed into, until grpc-js's write callback. */
const leases = new WeakMap<object, ArrayBufferLike>();

/** The gRPC message of a response: 5-byte prefix (not compressed, big-endian length), then the response. */
function frame(r: PendingResponse): Buffer {
  const framed = encodeResponse(r, 5, (length) => framePool.take(length));
  framed[0] = 0;
  framed.writeUInt32BE(framed.length - 5, 1);
  leases.set(r, framed.buffer);
  return framed;
}

function release(r: object): void {
  const buffer = leases.get(r);
  if (buffer === undefined) return;
  leases.delete(r);
  framePool.give(buffer);
}

const isAds = (call: CallInternals): boolean => call.handler?.serialize === serializeResponse;

let installed: boolean | undefined;

/**
 * Makes V8 count external memory (ArrayBuffers: the pooled framed responses, grpc-js's and NATS's
 * buffers) against the heap's global limit, which grows with the heap, instead of starting a full
 * mark-compact whenever external memory grew by 64 MB since the last one. Without it a cold start
 * of 1,000 streams still marked the whole heap (about 200 MB) once or twice while the pool filled
 * up; with it V8's worker threads take 0.55× the CPU in that cold start, and 0.17× at 5,000
 * streams (docs/benchmarks.md, "External memory in the global limit"). External memory is still
 * bounded: it drives collections through the global limit. The flag is V8's own (default off in
 * Node 24's V8 13.6) and is read when limits are computed, so setting it at run time takes
 * effect; Node does not accept it in NODE_OPTIONS.
 */
export function accountExternalMemoryInGlobalLimit(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}

/**
 * Wraps grpc-js's framing for the ADS service (once per process) and accounts external memory in
 * V8's global limit. Returns false and wraps nothing when grpc-js's internals do not have the
 * expected shape: responses are then framed by grpc-js as before, only with the copy.
 */
export function installResponseFraming(): boolean {
  if (installed !== undefined) return installed;
  accountExternalMemoryInGlobalLimit();
  const proto = (grpcInterceptors as unknown as { BaseServerInterceptingCall?: { prototype?: Partial<CallInternals> } }).BaseServerInterceptingCall?.prototype;
  const serializeMessage = proto?.serializeMessage;
  const sendMessage = proto?.sendMessage;
  if (!proto || typeof serializeMessage !== 'function' || serializeMessage.length !== 1 || typeof sendMessage !== 'function' || sendMessage.length !== 2) {
    return (installed = false);
  }
  proto.serializeMessage = function (this: CallInternals, value: unknown): Buffer {
    return isAds(this) ? frame(value as PendingResponse) : serializeMessage.call(this, value);
  };
  proto.sendMessage = function (this: CallInternals, message: unknown, callback: () => void): void {
    if (!isAds(this)) return sendMessage.call(this, message, callback);
    sendMessage.call(this, message, () => {
      release(message as object);
      callback();
    });
  };
  setInterval(() => framePool.trimIfUnused(), IDLE_TRIM_MS).unref();
  return (installed = true);
}
