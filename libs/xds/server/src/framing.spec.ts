/**
 * ADS responses framed into pooled buffers, over real gRPC on loopback. The point is the
 * pool's contract with grpc-js and Node's HTTP/2: a buffer goes back to the pool only once its
 * bytes are written, so streams that read slowly (behind a proxy that holds back the server's
 * bytes, so its socket writes stay pending) still receive every response byte for byte while
 * other responses reuse the buffers.
 */
import { createServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors.js';
import { AdsService } from '@aviary/xds-api';
import type { EncodedResource } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { accountExternalMemoryInGlobalLimit, FramePool, framePool, installResponseFraming } from './framing';
import { adsServiceDefinition, encodeDeltaDiscoveryResponse, encodeDiscoveryResponse, type PendingResponse } from './wire';

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A response of about `size` bytes in 1–4 resources of random bytes (the bytes need not be a valid CLA). */
function response(protocol: 'sotw' | 'delta', nonce: string, size: number, next: () => number): PendingResponse {
  const count = 1 + Math.floor(next() * 4);
  const resources = Array.from({ length: count }, (_, i): EncodedResource => {
    const bytes = Buffer.allocUnsafe(Math.floor(size / count));
    for (let j = 0; j < bytes.length; j += 4) bytes.writeUInt32LE(Math.floor(next() * 2 ** 32), Math.min(j, bytes.length - 4));
    return { typeUrl: TypeUrl.ClusterLoadAssignment, name: `r${i}`, version: `v${nonce}`, resource: {}, bytes };
  });
  const parts = { version: nonce, typeUrl: TypeUrl.ClusterLoadAssignment, nonce, resources, controlPlaneId: 'test' };
  return protocol === 'sotw' ? { protocol, ...parts } : { protocol, ...parts, removed: ['gone'] };
}

const expected = (r: PendingResponse): Buffer => (r.protocol === 'sotw' ? encodeDiscoveryResponse(r) : encodeDeltaDiscoveryResponse(r));

/** A TCP proxy that forwards the server's bytes in pieces, pausing after each: the server's socket writes back up. */
function slowProxy(target: number): Promise<{ port: number; server: NetServer; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    sockets.push(client, upstream);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      upstream.pause();
      setTimeout(() => upstream.resume(), 2);
    });
    upstream.on('end', () => client.end());
    for (const s of [client, upstream]) s.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port, server, sockets })));
}

describe('ADS response framing', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  it('finds grpc-js internals of the expected shape (fails when a grpc-js upgrade changes them), and wraps them once', () => {
    expect(installResponseFraming()).toBe(true);
    const wrapped = BaseServerInterceptingCall.prototype.sendMessage;
    expect(installResponseFraming()).toBe(true);
    expect(BaseServerInterceptingCall.prototype.sendMessage).toBe(wrapped);
  });

  it('has V8 count external memory in the global limit: short-lived buffers do not start a full collection per 64 MB', async () => {
    // 8,000 framed-response-sized buffers (760 MB), each dead soon after, with little JS
    // allocation in between: V8's default starts a mark-compact for external memory pressure
    // about every 64 MB of them (six or more here); with the flag the scavenges free them, and
    // a full collection runs only from a task or for the heap's limit. Fails when a V8 upgrade
    // drops or ignores the flag.
    accountExternalMemoryInGlobalLimit();
    let major = 0;
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as unknown as { detail: { kind: number } }).detail.kind === perf.NODE_PERFORMANCE_GC_MAJOR) major++;
    });
    observer.observe({ entryTypes: ['gc'] });
    const alive: Buffer[] = [];
    for (let i = 0; i < 8_000; i++) {
      const b = Buffer.allocUnsafe(95_000);
      b[0] = i;
      alive.push(b);
      if (alive.length > 100) alive.shift();
      for (let j = 0; j < 200; j++) alive.at(-1)![1] = [j].length;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    observer.disconnect();
    expect(major).toBeLessThanOrEqual(2);
  });

  async function serve(responses: Map<string, PendingResponse[]>, options: grpc.ServerOptions = {}): Promise<number> {
    installResponseFraming();
    const server = new grpc.Server(options);
    const handler = (call: grpc.ServerDuplexStream<unknown, PendingResponse>): void => {
      call.once('data', () => {
        const id = call.metadata.get('stream-id')[0] as string;
        for (const r of responses.get(id) ?? []) call.write(r);
        call.end();
      });
    };
    server.addService(adsServiceDefinition(), { StreamAggregatedResources: handler, DeltaAggregatedResources: handler });
    cleanups.push(() => server.forceShutdown());
    return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  }

  /** Opens a stream, sends an empty request and collects the raw response messages until the server ends it. */
  function receive(port: number, id: string, protocol: 'sotw' | 'delta'): Promise<{ messages: Buffer[]; error?: grpc.ServiceError }> {
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const metadata = new grpc.Metadata();
    metadata.set('stream-id', id);
    const rpc = protocol === 'sotw' ? AdsService.sotw : AdsService.delta;
    const call = client.makeBidiStreamRequest(rpc.path, (b: Buffer) => b, (b: Buffer) => b, metadata);
    const messages: Buffer[] = [];
    call.on('data', (m: Buffer) => messages.push(m));
    call.write(Buffer.alloc(0));
    return new Promise((resolve) => {
      call.on('error', (error: grpc.ServiceError) => resolve({ messages, error }));
      call.on('end', () => resolve({ messages }));
    });
  }

  it('delivers every response byte for byte to slow readers while the buffers are reused (SotW and delta)', async () => {
    const next = random(19);
    const sizes = [6_000, 40_000, 150_000, 300_000];
    const responses = new Map<string, PendingResponse[]>();
    for (let s = 0; s < 6; s++) {
      const protocol = s % 2 === 0 ? 'sotw' : 'delta';
      responses.set(
        `s${s}`,
        Array.from({ length: 25 }, (_, i) => response(protocol, `${s}-${i}`, sizes[Math.floor(next() * sizes.length)]! + Math.floor(next() * 2000), next)),
      );
    }
    const port = await serve(responses);
    const proxy = await slowProxy(port);
    cleanups.push(() => {
      for (const s of proxy.sockets) s.destroy();
      proxy.server.close();
    });
    const createdBefore = framePool.created;

    const received = await Promise.all([...responses.keys()].map((id, s) => receive(proxy.port, id, s % 2 === 0 ? 'sotw' : 'delta')));

    for (const [s, id] of [...responses.keys()].entries()) {
      const want = responses.get(id)!;
      const got = received[s]!;
      expect(got.error).toBeUndefined();
      expect(got.messages.length).toBe(want.length);
      for (const [i, r] of want.entries()) expect(got.messages[i]!.equals(expected(r)), `stream ${id}, response ${i}`).toBe(true);
    }
    // 150 responses, six streams with one write each in flight: most buffers came from the pool.
    expect(framePool.created - createdBefore).toBeLessThan(60);
  });

  it('still refuses a response over grpc.max_send_message_length', async () => {
    const next = random(7);
    const port = await serve(new Map([['big', [response('sotw', 'big', 100_000, next)]]]), { 'grpc.max_send_message_length': 64 * 1024 });
    const got = await receive(port, 'big', 'sotw');
    expect(got.messages).toEqual([]);
    expect(got.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('leaves other services to grpc-js (e.g. the agent SDS server, whose serializer returns its own buffer)', async () => {
    installResponseFraming();
    const server = new grpc.Server();
    const path = '/test.Echo/Echo';
    const definition: grpc.ServiceDefinition = {
      Echo: { path, requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
    };
    server.addService(definition, {
      Echo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) =>
        call.on('data', (b: Buffer) => {
          call.write(Buffer.concat([b, b]));
          call.end();
        }),
    });
    cleanups.push(() => server.forceShutdown());
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const call = client.makeBidiStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b);
    const got = new Promise<Buffer>((resolve) => call.once('data', resolve));
    call.write(Buffer.from('ping'));
    expect((await got).toString()).toBe('pingping');
  });
});

describe('FramePool', () => {
  it('rounds sizes up by at most a quarter, reuses what is given back and keeps at most maxIdleBytes idle', () => {
    const pool = new FramePool(1024 * 1024);
    const a = pool.take(300_001);
    expect(a.length).toBeGreaterThanOrEqual(300_001);
    expect(a.length).toBeLessThanOrEqual(300_001 * 1.25);
    pool.give(a.buffer);
    const b = pool.take(300_000);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.created).toBe(1);

    const big = [pool.take(600_000), pool.take(600_000)];
    for (const buf of big) pool.give(buf.buffer);
    expect(pool.idleSize).toBe(big[0]!.length);
  });

  it('serves a size from an idle buffer of a larger class up to twice its size, never a smaller or a larger one', () => {
    const pool = new FramePool(4 * 1024 * 1024);
    const large = pool.take(200_000);
    const huge = pool.take(420_000);
    const small = pool.take(90_000);
    for (const buf of [large, huge, small]) pool.give(buf.buffer);
    expect(pool.created).toBe(3);
    // 100 KB: the 200 KB class (under twice its class), not the 90 KB one (too small).
    const b = pool.take(100_000);
    expect(b.buffer).toBe(large.buffer);
    expect(pool.idleSize).toBe(huge.length + small.length);
    // 150 KB: nothing idle within twice its class (420 KB is more): a new buffer.
    const c = pool.take(150_000);
    expect([large.buffer, huge.buffer, small.buffer]).not.toContain(c.buffer);
    expect(pool.created).toBe(4);
    expect(pool.take(80_000).buffer).toBe(small.buffer);
  });

  it('lets its idle buffers go only after a trim period with nothing taken', () => {
    const pool = new FramePool(1024 * 1024);
    pool.give(pool.take(300_000).buffer);
    expect(pool.trimIfUnused()).toBe(0); // taken since the last trim: kept
    expect(pool.idleSize).toBeGreaterThan(0);
    const idle = pool.idleSize;
    expect(pool.trimIfUnused()).toBe(idle);
    expect(pool.idleSize).toBe(0);
    pool.take(300_000);
    expect(pool.created).toBe(2);
  });

  it('leaves small and huge sizes to Buffer.allocUnsafe and ignores buffers it did not create', () => {
    const pool = new FramePool(1024 * 1024);
    const small = pool.take(100);
    pool.give(small.buffer);
    pool.give(new ArrayBuffer(8192));
    expect(pool.idleSize).toBe(0);
    expect(pool.created).toBe(0);
    expect(pool.take(17 * 1024 * 1024).length).toBe(17 * 1024 * 1024);
    expect(pool.created).toBe(0);
  });
});
