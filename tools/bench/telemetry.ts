// Telemetry ingest benchmark: records per second on one core through the collector's whole
// per-record path — decode (JSON envelope → batch, validated), validate each record against
// RequestRecord, aggregate into the Istio metric families and the service graph. No NATS and
// no tracing: this measures the collector's CPU cost, not the network.
// Usage: node tools/build/build.mjs bench-telemetry && taskset -c 0 node dist/tools/bench/telemetry.js [seconds] [batchSize]
import { Registry } from 'prom-client';
import { createEnvelope, decodeEvent, encodeEvent, Subjects } from '@aviary/events';
import { createLogger } from '@aviary/observability';
import { sampleRecord, type TelemetryRecord } from '@aviary/telemetry';
import { Ingestor, startRecordTracer } from '@aviary/telemetry-ingest';
import { benchArgs } from './cli';

const cli = benchArgs(
  'Usage: taskset -c 0 node dist/tools/bench/telemetry.js [seconds] [batchSize] (or --seconds N --batch N; defaults 5, 500)\n(what it measures: tools/bench/telemetry.ts, docs/benchmarks.md)',
  { seconds: 'string', batch: 'string' },
  { positionals: ['seconds', 'batch'] },
);
const seconds = cli.int('seconds', 5, 1);
const batchSize = cli.int('batch', 500, 1);

// A realistic mix: 8 callers × 6 destinations × versions × codes ≈ a few hundred series.
const callers = ['istio-ingressgateway', 'productpage-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'details-v1', 'checkout-v1', 'cart-v1'];
const dests = ['productpage', 'reviews', 'ratings', 'details', 'checkout', 'cart'];
function record(i: number, startTime: string): TelemetryRecord {
  const src = callers[i % callers.length] as string;
  const dst = dests[(i >> 3) % dests.length] as string;
  const version = `v${1 + ((i >> 6) % 3)}`;
  return sampleRecord({
    reporter: i % 2 === 0 ? 'destination' : 'source',
    sourceWorkload: src,
    sourceApp: src.replace(/-v\d$/, ''),
    sourcePrincipal: `spiffe://cluster.local/ns/default/sa/${src}`,
    destinationWorkload: `${dst}-${version}`,
    destinationApp: dst,
    destinationVersion: version,
    destinationService: `${dst}.default.svc.cluster.local`,
    destinationPrincipal: `spiffe://cluster.local/ns/default/sa/${dst}`,
    responseCode: i % 97 === 0 ? 503 : i % 31 === 0 ? 404 : 200,
    connectionSecurityPolicy: i % 2 === 0 ? 'mutual_tls' : 'unknown',
    durationMs: 1 + ((i * 7919) % 250) / 3,
    requestBytes: (i * 13) % 2000,
    responseBytes: (i * 101) % 50_000,
    startTime,
    traceId: (i * 2654435761).toString(16).padStart(32, '0').slice(-32),
    spanId: (i * 40503 + 1).toString(16).padStart(16, '0').slice(-16),
  });
}

const startTime = new Date().toISOString();
const payloads: Uint8Array[] = [];
for (let b = 0; b < 64; b++) {
  const records = Array.from({ length: batchSize }, (_, i) => record(b * batchSize + i, startTime));
  payloads.push(encodeEvent(createEnvelope(Subjects.telemetryRequests, 'bench-proxy', { proxyId: `sidecar~10.0.0.${b}~bench`, records })));
}

const ingestor = new Ingestor({
  maxSeriesPerMetric: 10_000,
  graphRetentionMs: 600_000,
  graphMaxEdges: 5_000,
  graphReporter: 'auto',
  istioRegistries: [new Registry()],
  registry: new Registry(),
  tracer: startRecordTracer('', createLogger('bench', 'silent')),
  now: Date.now,
});

/**
 * Runs for `ms` of wall time. `cpu` is this process's CPU seconds meanwhile (user + system, all
 * threads, so GC helpers count too): on a shared machine, records per CPU second is the
 * per-core throughput, wall-clock rate only an upper bound on what the machine gave us.
 */
function run(ms: number): { records: number; elapsed: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(ms) * 1_000_000n;
  let n = 0;
  let i = 0;
  while (process.hrtime.bigint() < deadline) {
    const event = decodeEvent(Subjects.telemetryRequests, payloads[i++ % payloads.length] as Uint8Array);
    ingestor.ingestBatch(event.data);
    n += event.data.records.length;
  }
  const c = process.cpuUsage(c0);
  return { records: n, elapsed: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6 };
}

run(1000); // warm-up (JIT)
const { records, elapsed, cpu } = run(seconds * 1000);
const rate = records / cpu;
const mem = process.memoryUsage();
const series = ingestor.metrics.seriesCount;
process.stdout.write(
  JSON.stringify({
    bench: 'telemetry-ingest',
    recordsPerCpuSecond: Math.round(rate),
    recordsPerWallSecond: Math.round(records / elapsed),
    records,
    seconds: Number(elapsed.toFixed(2)),
    cpuSeconds: Number(cpu.toFixed(2)),
    batchSize,
    series,
    graphEdges: ingestor.graph.snapshot(60_000, Date.now()).edges.length,
    rssMiB: Math.round(mem.rss / 1048576),
    node: process.version,
    target: 100_000,
    pass: rate >= 100_000,
  }) + '\n',
);
