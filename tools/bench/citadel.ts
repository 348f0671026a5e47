#!/usr/bin/env node
// Citadel issuance benchmark: certificates per second and latency quantiles on one core, next
// to the raw node:crypto ECDSA P-256 signature rate measured in the same run (the physical limit).
//
//   node tools/build/build.mjs bench-citadel && taskset -c 0 node dist/tools/bench/citadel.js [seconds]
//
// Three measurements, each single-threaded and synchronous-crypto (no thread pool):
//   raw-sign  node:crypto sign('sha256', ~450-byte TBS, P-256 key, der) — the floor cost per cert;
//   issuer    Issuer.signWorkload with a parsed CSR: TBS encoding + signature + PEM;
//   ca        CertificateAuthority.issue: join-token check + CSR parse + CSR signature verify + sign.
import { cpus, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { sign } from 'node:crypto';
import { CertificateAuthority, type CaState } from '@aviary/ca';
import { createCsr, generatePrivateKey, Issuer, parseCsr } from '@aviary/pki';
import { benchArgs } from './cli';

const seconds = benchArgs('Usage: taskset -c 0 node dist/tools/bench/citadel.js [seconds] (or --seconds N; default 3)\n(what it measures: tools/bench/citadel.ts, docs/benchmarks.md)', { seconds: 'string' }, { positionals: ['seconds'] }).int('seconds', 3, 1);
const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' ');
const ID = 'spiffe://cluster.local/ns/bench/sa/workload';

interface Result {
  name: string;
  ops: number;
  perSecond: number;
  /** Operations per second of CPU time this process used: robust to other load on the machine. */
  perCpuSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function measure(name: string, op: () => unknown | Promise<unknown>, durationS: number): Promise<Result> {
  for (let i = 0; i < 200; i++) await op(); // warm-up (JIT, key caches)
  const samples: number[] = [];
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + durationS * 1000;
  let now = start;
  while (now < end) {
    const t0 = performance.now();
    await op();
    now = performance.now();
    samples.push(now - t0);
  }
  const elapsed = (now - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  return { name, ops: samples.length, perSecond: Math.round(samples.length / elapsed), perCpuSecond: Math.round(samples.length / cpuSeconds), p50Ms: round(q(0.5)), p99Ms: round(q(0.99)), maxMs: round(samples.at(-1)!) };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
}

const root = Issuer.createRoot({ trustDomain: 'cluster.local' });
const caKey = generatePrivateKey('ecdsa-p256');
const csrPem = createCsr(generatePrivateKey('ecdsa-p256'));
const parsed = parseCsr(csrPem);
const tbsLike = Buffer.alloc(450, 7);

let state: CaState | undefined;
const ca = await CertificateAuthority.open({
  trustDomain: 'cluster.local',
  store: { load: async () => state, save: async (s) => void (state = s) },
  sink: { publish: async () => undefined },
  defaultTtlSeconds: 86_400,
  maxTtlSeconds: 7 * 86_400,
});
const { token } = ca.mintToken({ namespace: 'bench', serviceAccount: 'workload', ttlSeconds: 3600 });

const results = [
  await measure('raw node:crypto ECDSA P-256 sign', () => sign('sha256', tbsLike, { key: caKey, dsaEncoding: 'der' }), seconds),
  await measure('Issuer.signWorkload (parsed CSR)', () => root.signWorkload(parsed, ID, { ttlSeconds: 86_400 }), seconds),
  await measure('CertificateAuthority.issue (token + CSR verify + sign)', () => ca.issue({ csr: csrPem, credentials: { bearerToken: token } }), seconds),
];

const machine = { nproc: cpus().length, cpu: cpuModel(), node: process.version, date: new Date().toISOString(), loadBefore };
process.stdout.write(`citadel issuance benchmark — ${machine.cpu}, nproc ${machine.nproc}, node ${machine.node}, ${seconds}s each, one thread\n\n`);
const load = loadavg().map((l) => l.toFixed(2)).join(' ');
process.stdout.write(`load average before the run: ${loadBefore}; after: ${load}\n\n`);
process.stdout.write(`| measurement | ops/s (wall) | ops per CPU-second | p50 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: |\n`);
for (const r of results) process.stdout.write(`| ${r.name} | ${r.perSecond} | ${r.perCpuSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} |\n`);
const ratio = results[2]!.perCpuSecond / results[0]!.perCpuSecond;
process.stdout.write(`\nfull issuance runs at ${(ratio * 100).toFixed(0)}% of the raw signature rate\n`);
process.stdout.write(`${JSON.stringify({ machine, results })}\n`);
