#!/usr/bin/env node
// The transport alone of pilot's cold start: what @grpc/grpc-js costs to send the same bytes in the
// same pattern, with no translation, no encoding and no xDS bookkeeping. The floor under pilot's
// cold-start CPU (issue 19 asks for ≤ 2 s of pilot CPU for 1,000 proxies).
//
//   node tools/build/build.mjs bench-ads-transport && node dist/tools/bench/ads-transport.js [--rounds 4]
//
// A server process (grpc-js, as pilot's) answers each request on 1,000 bidi streams with a
// response of already encoded bytes; a client process (grpc-js) opens the streams, 10 per channel
// as a load generator spreads them, and asks for four responses per stream one after the other
// (CDS, EDS, LDS, RDS: a SotW proxy's cold start). The sizes are the mean per-proxy resource bytes
// of the pilot benchmark's default mesh (`--preset default`: 378,554,212 bytes to 1,000 proxies).
// Two servers, interleaved (ABAB…), the server's CPU from first request to last response:
//   grpc-js    the library's framing: every response is copied into a new n+5-byte buffer;
//   preframed  the same server with each response framed once up front (grpc-js's internal
//              serializeMessage replaced for this measurement): the lower bound of any framing path.
//   http2      no grpc-js on the server: node:http2 answering the same gRPC calls by hand (headers,
//              5-byte-framed messages prepared once, trailers): what an ADS server written below
//              grpc-js could at best save.
import { fork } from 'node:child_process';
import * as http2 from 'node:http2';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { benchArgs } from './cli';

const METHOD = '/aviary.bench.Transport/Stream';
/** Mean bytes per proxy and type in the pilot benchmark's default mesh, as sent (with the Any wrapping). */
const RESPONSE_BYTES = [69_250, 233_550, 16_230, 59_520] as const;
const STREAMS = 1_000;
const PER_CHANNEL = 10;

type Variant = 'grpc-js' | 'preframed' | 'http2';
interface ServerResult {
  readonly variant: Variant;
  readonly responses: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly userMs: number;
  readonly sysMs: number;
}

const role = process.env['ADS_TRANSPORT_ROLE'];
if (role === 'server') runServer(process.env['ADS_TRANSPORT_VARIANT'] as Variant);
else if (role === 'client') runClient(Number(process.env['ADS_TRANSPORT_PORT']));
else await main();

function runServer(variant: Variant): void {
  if (variant === 'http2') return runHttp2Server();
  const bodies = RESPONSE_BYTES.map((n) => Buffer.alloc(n, 0x5a));
  if (variant === 'preframed') {
    // grpc-js 1.14's ServerInterceptingCall frames in serializeMessage; hand it the framed bytes.
    const internals = createRequire(import.meta.url)('@grpc/grpc-js/build/src/server-interceptors.js') as { BaseServerInterceptingCall: { prototype: { serializeMessage(value: unknown): Buffer } } };
    const framed = bodies.map((b) => Buffer.concat([Buffer.from([0, b.length >>> 24, (b.length >>> 16) & 0xff, (b.length >>> 8) & 0xff, b.length & 0xff]), b]));
    internals.BaseServerInterceptingCall.prototype.serializeMessage = (index: unknown) => framed[index as number]!;
  }
  const server = new grpc.Server({ 'grpc.max_send_message_length': 64 << 20 });
  let sent = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  let t0 = 0;
  server.register<Buffer, number>(
    METHOD,
    (call: grpc.ServerDuplexStream<Buffer, number>) => {
      call.on('data', (request: Buffer) => {
        if (cpu0 === undefined) {
          cpu0 = process.cpuUsage();
          t0 = performance.now();
        }
        call.write(request.readUInt8(0), () => {
          if (++sent < STREAMS * RESPONSE_BYTES.length) return;
          const cpu = process.cpuUsage(cpu0);
          const result: ServerResult = { variant, responses: sent, wallMs: Math.round(performance.now() - t0), cpuMs: Math.round((cpu.user + cpu.system) / 1000), userMs: Math.round(cpu.user / 1000), sysMs: Math.round(cpu.system / 1000) };
          process.send?.({ result });
        });
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
    (index: number) => bodies[index]!,
    (b: Buffer) => b,
    'bidi',
  );
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send?.({ port });
  });
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'stop') server.tryShutdown(() => process.exit(0));
  });
}

function runHttp2Server(): void {
  const framed = RESPONSE_BYTES.map((n) => { const b = Buffer.alloc(n + 5, 0x5a); b[0] = 0; b.writeUInt32BE(n, 1); return b; });
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  let sent = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  let t0 = 0;
  server.on('stream', (stream) => {
    let pending: Buffer | undefined;
    let headersSent = false;
    stream.on('data', (chunk: Buffer) => {
      if (cpu0 === undefined) {
        cpu0 = process.cpuUsage();
        t0 = performance.now();
      }
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const len = pending.readUInt32BE(1);
        const index = pending[5]!;
        pending = pending.subarray(5 + len);
        if (!headersSent) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          headersSent = true;
        }
        stream.write(framed[index]!, () => {
          if (++sent < STREAMS * RESPONSE_BYTES.length) return;
          const cpu = process.cpuUsage(cpu0);
          const result: ServerResult = { variant: 'http2', responses: sent, wallMs: Math.round(performance.now() - t0), cpuMs: Math.round((cpu.user + cpu.system) / 1000), userMs: Math.round(cpu.user / 1000), sysMs: Math.round(cpu.system / 1000) };
          process.send?.({ result });
        });
      }
    });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.on('end', () => stream.end());
    stream.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'stop') server.close(() => process.exit(0));
  });
}

function runClient(port: number): void {
  const channels = Array.from({ length: STREAMS / PER_CHANNEL }, () => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));
  let finished = 0;
  let bytes = 0;
  for (let s = 0; s < STREAMS; s++) {
    const call = channels[s % channels.length]!.makeBidiStreamRequest<Buffer, Buffer>(METHOD, (b) => b, (b) => b);
    let received = 0;
    call.on('data', (m: Buffer) => {
      bytes += m.length;
      if (++received < RESPONSE_BYTES.length) {
        call.write(Buffer.from([received]));
        return;
      }
      call.end();
      if (++finished === STREAMS) {
        process.send?.({ bytes });
        for (const c of channels) c.close();
      }
    });
    call.on('error', () => undefined);
    call.write(Buffer.from([0]));
  }
}

function child(env: Record<string, string>): ReturnType<typeof fork> {
  return fork(process.argv[1]!, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function next<T>(p: ReturnType<typeof fork>, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>): void => {
      if (!(key in m)) return;
      p.off('message', onMessage);
      resolve(m[key] as T);
    };
    p.on('message', onMessage);
    p.once('exit', (code) => reject(new Error(`${key}: the child exited (${code}) first`)));
  });
}

async function once(variant: Variant): Promise<ServerResult & { bytes: number }> {
  const server = child({ ADS_TRANSPORT_ROLE: 'server', ADS_TRANSPORT_VARIANT: variant });
  try {
    const port = await next<number>(server, 'port');
    const resultP = next<ServerResult>(server, 'result');
    const client = child({ ADS_TRANSPORT_ROLE: 'client', ADS_TRANSPORT_PORT: String(port) });
    const bytes = await next<number>(client, 'bytes');
    client.kill();
    return { ...(await resultP), bytes };
  } finally {
    server.send({ cmd: 'stop' });
    setTimeout(() => server.kill('SIGKILL'), 2_000).unref();
  }
}

async function main(): Promise<void> {
  const args = benchArgs('Usage: node dist/tools/bench/ads-transport.js [--rounds N] (default 4; grpc-js, preframed and http2 interleaved)\n(what it measures: tools/bench/ads-transport.ts, docs/benchmarks.md)', { rounds: 'string' });
  const rounds = args.int('rounds', 4, 1);
  const started = new Date().toISOString();
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  const runs: (ServerResult & { bytes: number })[] = [];
  for (let r = 0; r < rounds; r++) {
    // ABC CBA: grpc-js, preframed, http2, http2, preframed, grpc-js, …
    const order: Variant[] = r % 2 === 0 ? ['grpc-js', 'preframed', 'http2'] : ['http2', 'preframed', 'grpc-js'];
    for (const v of order) {
      const run = await once(v);
      console.error(`${v}: ${run.cpuMs} ms CPU (user ${run.userMs}, sys ${run.sysMs}), ${run.wallMs} ms, ${run.bytes} bytes`);
      runs.push(run);
    }
  }
  const median = (v: Variant, k: 'cpuMs' | 'userMs' | 'sysMs' | 'wallMs'): number => {
    const xs = runs.filter((x) => x.variant === v).map((x) => x[k]).sort((a, b) => a - b);
    return xs[Math.floor((xs.length - 1) / 2)]!;
  };
  const summary = Object.fromEntries((['grpc-js', 'preframed', 'http2'] as const).map((v) => [v, { cpuMs: median(v, 'cpuMs'), userMs: median(v, 'userMs'), sysMs: median(v, 'sysMs'), wallMs: median(v, 'wallMs') }]));
  console.log(JSON.stringify({ started, loadavgAtStart: load, loadavgAtEnd: loadavg().map((l) => Math.round(l * 100) / 100), node: process.version, streams: STREAMS, responseBytes: RESPONSE_BYTES, rounds, medians: summary, preframedOverGrpcJs: Math.round((summary['preframed']!.cpuMs / summary['grpc-js']!.cpuMs) * 100) / 100, http2OverGrpcJs: Math.round((summary['http2']!.cpuMs / summary['grpc-js']!.cpuMs) * 100) / 100, runs }, null, 2));
}
