// Certificate signing side by side (issue 19, item 1): citadel (the built app) and istiod's CA,
// each pinned to the same core, each serving Istio's IstioCertificateService/CreateCertificate
// over TLS, each authenticating the caller with the same Kubernetes service-account token
// (audience istio-ca) through TokenReview on one real kube-apiserver. The same gRPC client sends
// the same ECDSA P-256 CSRs, closed loop. Reported per CA: certificates per second, per CPU-second
// of the CA, and per CPU-second of the CA plus kube-apiserver (a CA that reviews every token
// spends the API server's CPU too), and latency quantiles.
//
//   node tools/build/build.mjs citadel bench-ca-vs-istiod
//   taskset -c 1 node dist/tools/bench/ca-vs-istiod.js [--seconds 10] [--concurrency 16]
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadCaPackage } from '@aviary/ca-api';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { createCsr, generatePrivateKey } from '@aviary/pki';
import { benchArgs } from './cli';
import { ensureIstiod, startIstiod, startKube, type Kube } from './control-planes';
import { onInterrupt } from './interrupt';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = benchArgs('Usage: taskset -c 1 node dist/tools/bench/ca-vs-istiod.js [--seconds 10] [--concurrency 16]\n(what it measures: tools/bench/ca-vs-istiod.ts, docs/benchmarks.md)', { seconds: 'string', concurrency: 'string' });
const SECONDS = cli.int('seconds', 10, 1);
const CONCURRENCY = cli.int('concurrency', 16, 1);
const CSRS = 64;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // CLK_TCK 100
}

type CaClient = grpc.Client & {
  CreateCertificate(req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: { cert_chain: string[] }) => void): void;
};

interface Measured {
  certs: number;
  certsPerSecond: number;
  caCpuMsPerCert: number;
  certsPerCaCpuSecond: number;
  apiserverCpuMsPerCert: number;
  certsPerCaPlusApiserverCpuSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
}

/** Closed loop: CONCURRENCY calls in flight on one channel, 2 s warm-up, then SECONDS measured. */
async function measure(address: string, rootPem: string, servername: string, token: string, caPid: number, apiserverPid: number): Promise<Measured> {
  const def = grpc.loadPackageDefinition(loadCaPackage()) as unknown as { istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } } };
  const client = new def.istio.v1.auth.IstioCertificateService(address, grpc.credentials.createSsl(Buffer.from(rootPem)), { 'grpc.ssl_target_name_override': servername }) as unknown as CaClient;
  const csrs = Array.from({ length: CSRS }, () => createCsr(generatePrivateKey('ecdsa-p256')));
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  let errors = 0;
  let firstError: string | undefined;
  const call = (i: number): Promise<void> =>
    new Promise((resolve) =>
      client.CreateCertificate({ csr: csrs[i % CSRS], validity_duration: 3600 }, md, (err, res) => {
        if (err || !res?.cert_chain[0]?.includes('BEGIN CERTIFICATE')) {
          errors++;
          firstError ??= err?.message ?? 'no certificate in the answer';
        }
        resolve();
      }),
    );
  const loop = async (ms: number, latencies: number[]): Promise<number> => {
    const end = performance.now() + ms;
    let done = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, w) => {
        while (performance.now() < end) {
          const t = performance.now();
          await call(done + w);
          latencies.push(performance.now() - t);
          done++;
        }
      }),
    );
    return done;
  };
  try {
    await loop(2_000, []);
    errors = 0;
    firstError = undefined;
    const latencies: number[] = [];
    const ca0 = cpuMs(caPid);
    const api0 = cpuMs(apiserverPid);
    const t0 = performance.now();
    const certs = await loop(SECONDS * 1000, latencies);
    const wall = performance.now() - t0;
    const caCpu = cpuMs(caPid) - ca0;
    const apiCpu = cpuMs(apiserverPid) - api0;
    latencies.sort((a, b) => a - b);
    const q = (p: number): number => +(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN).toFixed(2);
    return {
      certs,
      certsPerSecond: Math.round((certs / wall) * 1000),
      caCpuMsPerCert: +(caCpu / certs).toFixed(3),
      certsPerCaCpuSecond: Math.round((certs / caCpu) * 1000),
      apiserverCpuMsPerCert: +(apiCpu / certs).toFixed(3),
      certsPerCaPlusApiserverCpuSecond: Math.round((certs / (caCpu + apiCpu)) * 1000),
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      errors,
      ...(firstError === undefined ? {} : { firstError }),
    };
  } finally {
    client.close();
  }
}

async function citadel(kube: Kube, token: string): Promise<Measured> {
  const nats = await NatsServer.start();
  onInterrupt(() => nats.stop());
  const dir = await mkdtemp(join(tmpdir(), 'aviary-bench-citadel-'));
  const [adminPort, caPort, caTlsPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const child: ChildProcess = spawn('taskset', ['-c', '0', process.execPath, join(root, 'dist/apps/citadel/main.js')], {
    env: {
      ...process.env,
      AVIARY_NATS_URL: nats.url,
      AVIARY_ADMIN_PORT: String(adminPort),
      AVIARY_CA_PORT: String(caPort),
      AVIARY_CA_TLS_PORT: String(caTlsPort),
      AVIARY_DATA_DIR: dir,
      AVIARY_KUBECONFIG: kube.kubeconfig,
      AVIARY_TOKEN_REVIEW: 'true',
      AVIARY_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    let bundle: { roots: string[] } | undefined;
    for (let i = 0; i < 300 && bundle === undefined; i++) {
      if (child.exitCode !== null) throw new Error(`citadel exited with ${child.exitCode}`);
      const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) bundle = (await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/bundle`)).json()) as { roots: string[] };
      else await sleep(100);
    }
    if (!bundle) throw new Error('citadel did not become ready');
    return await measure(`127.0.0.1:${caTlsPort}`, bundle.roots.join('\n'), 'localhost', token, child.pid!, kube.pidOf('kube-apiserver'));
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function istiod(kube: Kube, token: string): Promise<Measured> {
  const binary = await ensureIstiod(root);
  const ca = await startIstiod(binary, kube.kubeconfig, { cpus: '0' });
  try {
    let rootPem = '';
    for (let i = 0; i < 100 && rootPem === ''; i++) {
      rootPem = await kube.kubectl(['get', 'configmap', 'istio-ca-root-cert', '-n', 'istio-system', '-o', 'jsonpath={.data.root-cert\\.pem}']).catch(() => '');
      if (rootPem === '') await sleep(200);
    }
    if (rootPem === '') throw new Error('istiod published no istio-ca-root-cert');
    return await measure(`127.0.0.1:${ca.secureGrpcPort}`, rootPem, 'istiod.istio-system.svc', token, ca.child.pid!, kube.pidOf('kube-apiserver'));
  } finally {
    await ca.stop();
  }
}

async function main(): Promise<void> {
  const kube = await startKube(root);
  try {
    await kube.kubectl(['create', 'namespace', 'istio-system']);
    await kube.kubectl(['create', 'namespace', 'bench']);
    await kube.kubectl(['create', 'serviceaccount', 'workload', '-n', 'bench']);
    const token = (await kube.kubectl(['create', 'token', 'workload', '-n', 'bench', '--audience', 'istio-ca', '--duration', '1h'])).trim();
    const loadAtStart = loadavg().map((l) => +l.toFixed(2));
    const c = await citadel(kube, token);
    const i = await istiod(kube, token);
    const result = {
      machine: `${cpus()[0]?.model ?? 'unknown'} (${cpus().length} vCPU), node ${process.version}; each CA pinned to CPU 0`,
      loadAverage: { start: loadAtStart, end: loadavg().map((l) => +l.toFixed(2)) },
      params: { seconds: SECONDS, concurrency: CONCURRENCY, csrs: `${CSRS} distinct ECDSA P-256 CSRs`, validitySeconds: 3600, auth: 'one service-account token, audience istio-ca, TokenReview' },
      citadel: c,
      istiod: i,
      citadelDividedByIstiod: {
        certsPerCaCpuSecond: +(c.certsPerCaCpuSecond / i.certsPerCaCpuSecond).toFixed(2),
        certsPerCaPlusApiserverCpuSecond: +(c.certsPerCaPlusApiserverCpuSecond / i.certsPerCaPlusApiserverCpuSecond).toFixed(2),
        certsPerSecond: +(c.certsPerSecond / i.certsPerSecond).toFixed(2),
        p50Ms: +(c.p50Ms / i.p50Ms).toFixed(2),
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await kube.stop();
  }
}

await main();
