// Benchmark of the injector webhook over real HTTPS: reviews/s on one core (closed loop) and
// latency at a fixed 500 reviews/s (open loop, latency measured from each request's scheduled
// start, so a stall is not hidden). The injector runs as the built app in its own process,
// pinned to one CPU with taskset when available; NATS is a real nats-server.
//
//   node tools/build/build.mjs injector-webhook bench-injector
//   taskset -c 1 node dist/tools/bench/injector.js [--seconds 10] [--rate 500] [--connections 8] [--concurrency 32]
//     [--vs-istiod]
// --vs-istiod: then the same two measurements against istiod's /inject (pilot-discovery from
//   tools/istio/ensure-istiod.sh, on the same CPU, reading its chart's default injection ConfigMap
//   from a real kube-apiserver), and the ratios injector ÷ istiod.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Pool, request } from 'undici';
import { injectionValues, parseInjectionTemplate, planInjection } from '@aviary/injection';
import { NatsServer, freePort } from '@aviary/nats-runner';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { benchArgs } from './cli';
import { ensureIstiod, istiodChartConfigMaps, startIstiod, startKube } from './control-planes';
import { onInterrupt } from './interrupt';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const args = benchArgs(
  'Usage: taskset -c 1 node dist/tools/bench/injector.js [--seconds 10] [--rate 500] [--connections 8] [--concurrency 32] [--vs-istiod] [--log-level warn]\n(what it measures: tools/bench/injector.ts, docs/benchmarks.md)',
  { seconds: 'string', rate: 'string', connections: 'string', concurrency: 'string', 'vs-istiod': 'boolean', 'log-level': 'string' },
);
const seconds = args.int('seconds', 10, 1);
const rate = args.int('rate', 500, 1);
const connections = args.int('connections', 8, 1);
const concurrency = args.int('concurrency', 32, 1);

const review = await readFile(join(root, 'apps/injector-webhook/src/lib/__fixtures__/admission-review.json'), 'utf8');

/** CPU seconds (user + system) the process has used, from /proc (Linux); NaN elsewhere. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);
    return (Number(fields[11]) + Number(fields[12])) / ticks;
  } catch {
    return NaN;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Reference: the pure planner called directly, CPU ms per review (no HTTP, TLS or JSON parse). */
async function directCall(): Promise<{ cpuMsPerReview: number; reviewsPerCpuSecond: number }> {
  const values = injectionValues();
  const text = await readFile(join(root, 'charts/aviary/charts/injector-webhook/files/injection-template.yaml'), 'utf8');
  const template = parseInjectionTemplate(text, values);
  const pod = (JSON.parse(review) as { request: { object: unknown } }).request.object;
  const ns = { name: 'bookinfo' };
  for (let i = 0; i < 2_000; i++) planInjection(pod, ns, template, values);
  const n = 20_000;
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) planInjection(pod, ns, template, values);
  const used = process.cpuUsage(before);
  const ms = (used.user + used.system) / 1000;
  return { cpuMsPerReview: +(ms / n).toFixed(4), reviewsPerCpuSecond: Math.round((n / ms) * 1000) };
}

interface Throughput {
  reviewsPerSecond: number;
  injectorCpuMsPerReview: number;
  reviewsPerCpuSecond: number;
  concurrency: number;
  connections: number;
  seconds: number;
  /** CPU per review ÷ the pure planner's (the injector only). */
  ratioToDirectCall?: number;
}
interface FixedRate {
  rate: number;
  seconds: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * The two measurements against one webhook (`url` + `/inject`, TLS options `tls`), with the CPU
 * time of process `pid`: closed-loop throughput, then latency at a fixed rate. Every answer must
 * carry a JSONPatch.
 */
async function loadTest(url: string, tls: Agent.Options['connect'], pid: number | undefined): Promise<{ throughput: Throughput; fixedRate: FixedRate }> {
  const pool = new Pool(url, { connections, connect: tls, pipelining: 1 });
  const send = async (): Promise<void> => {
    const res = await pool.request({ path: '/inject', method: 'POST', body: review, headers: { 'content-type': 'application/json' } });
    const body = await res.body.text();
    if (res.statusCode !== 200 || !body.includes('"patch"')) throw new Error(`bad answer ${res.statusCode}`);
  };

  // 1. Throughput, closed loop: `concurrency` requests in flight for `seconds` (after a warm-up).
  const closed = async (durationMs: number): Promise<{ done: number; ms: number }> => {
    const start = performance.now();
    const end = start + durationMs;
    let done = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          await send();
          done++;
        }
      }),
    );
    return { done, ms: performance.now() - start };
  };
  await closed(2_000);
  const cpuBefore = await cpuSeconds(pid);
  const t = await closed(seconds * 1000);
  const cpuUsed = (await cpuSeconds(pid)) - cpuBefore;
  const throughput = (t.done / t.ms) * 1000;

  // 2. Latency at a fixed rate, open loop: request i starts at t0 + i/rate whatever happened before.
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let errors = 0;
  const t0 = performance.now() + 50;
  const inflight: Promise<void>[] = [];
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (next < total && t0 + (next * 1000) / rate <= now) {
        const scheduled = t0 + (next * 1000) / rate;
        inflight.push(send().then(() => void latencies.push(performance.now() - scheduled), () => void errors++));
        next++;
      }
      if (next < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(inflight);
  await pool.close();
  latencies.sort((a, b) => a - b);

  return {
    throughput: {
      reviewsPerSecond: Math.round(throughput),
      // Wall-clock throughput depends on what else the machine runs; CPU time per review does not.
      injectorCpuMsPerReview: +((cpuUsed * 1000) / t.done).toFixed(3),
      reviewsPerCpuSecond: Math.round(t.done / cpuUsed),
      concurrency,
      connections,
      seconds,
    },
    fixedRate: {
      rate,
      seconds,
      requests: total,
      errors,
      p50Ms: +percentile(latencies, 50).toFixed(2),
      p90Ms: +percentile(latencies, 90).toFixed(2),
      p99Ms: +percentile(latencies, 99).toFixed(2),
      maxMs: +(latencies[latencies.length - 1] ?? NaN).toFixed(2),
    },
  };
}

async function main(): Promise<void> {
  const reference = await directCall();
  const dir = await mkdtemp(join(tmpdir(), 'aviary-bench-injector-'));
  const ca = Issuer.createRoot({ trustDomain: 'bench.local' });
  const key = generatePrivateKey('ecdsa-p256');
  await writeFile(join(dir, 'tls.crt'), ca.signServing(createCsr(key, { dnsNames: ['localhost'] }), ['localhost'], 3600).certPem);
  await writeFile(join(dir, 'tls.key'), privateKeyToPem(key));

  const nats = await NatsServer.start();
  onInterrupt(() => nats.stop());
  const webhookPort = await freePort();
  const adminPort = await freePort();
  const pin = spawnSync('taskset', ['--version']).status === 0;
  const argv = [join(root, 'dist/apps/injector-webhook/main.js')];
  const child: ChildProcess = spawn(pin ? 'taskset' : process.execPath, pin ? ['-c', '0', process.execPath, ...argv] : argv, {
    env: {
      ...process.env,
      AVIARY_NATS_URL: nats.url,
      AVIARY_WEBHOOK_PORT: String(webhookPort),
      AVIARY_ADMIN_PORT: String(adminPort),
      AVIARY_TLS_CERT_FILE: join(dir, 'tls.crt'),
      AVIARY_TLS_KEY_FILE: join(dir, 'tls.key'),
      AVIARY_LOG_LEVEL: args.str('log-level', 'warn'),
      AVIARY_DATA_DIR: join(dir, 'data'),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let result: { throughput: Throughput; fixedRate: FixedRate; [k: string]: unknown };
  try {
    await waitReady(`http://127.0.0.1:${adminPort}/readyz`, child);
    const url = `https://localhost:${webhookPort}`;
    const tls = { ca: ca.rootPem, servername: 'localhost' };

    // Sanity: the answer is an injecting AdmissionReview.
    const probe = await request(`${url}/inject`, { method: 'POST', body: review, headers: { 'content-type': 'application/json' }, dispatcher: new Agent({ connect: tls }) });
    const answer = (await probe.body.json()) as { response: { allowed: boolean; patch?: string } };
    if (probe.statusCode !== 200 || !answer.response.allowed || answer.response.patch === undefined) throw new Error(`unexpected answer ${JSON.stringify(answer)}`);

    const { throughput, fixedRate } = await loadTest(url, tls, child.pid);

    const metrics = await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text();
    const serverCount = /aviary_injector_review_duration_seconds_count\{[^}]*webhook="inject"[^}]*\} (\d+)/.exec(metrics)?.[1];
    result = {
      machine: `${cpus()[0]?.model ?? 'unknown'} (${cpus().length} vCPU), node ${process.version}, injector pinned to one core: ${pin}`,
      loadAverage: loadavg().map((l) => +l.toFixed(2)),
      referenceDirectCall: reference,
      throughput: { ...throughput, ratioToDirectCall: +(throughput.injectorCpuMsPerReview / reference.cpuMsPerReview).toFixed(1) },
      fixedRate,
      patchBytes: Buffer.from(answer.response.patch, 'base64').length,
      serverReviewsCounted: Number(serverCount),
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
  if (args.flag('vs-istiod')) {
    const istiod = await istiodInject(pin);
    result = {
      ...result,
      istiod,
      injectorDividedByIstiod: {
        reviewsPerCpuSecond: +(result.throughput.reviewsPerCpuSecond / istiod.throughput.reviewsPerCpuSecond).toFixed(2),
        reviewsPerSecond: +(result.throughput.reviewsPerSecond / istiod.throughput.reviewsPerSecond).toFixed(2),
        p99MsAtFixedRate: +(result.fixedRate.p99Ms / istiod.fixedRate.p99Ms).toPrecision(2),
      },
    };
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/**
 * istiod's sidecar injection under the same load: a real kube-apiserver holding the ConfigMaps
 * istiod's chart renders by default (mesh config, injection template and values), istiod on the
 * CPU the injector had, `/inject` on its HTTPS port with its own serving certificate, checked
 * against its root certificate (the istio-ca-root-cert ConfigMap) and DNS name.
 */
async function istiodInject(pin: boolean): Promise<{ version: string; patchBytes: number; throughput: Throughput; fixedRate: FixedRate }> {
  const binary = await ensureIstiod(root);
  const kube = await startKube(root);
  try {
    await kube.kubectl(['create', 'namespace', 'istio-system']);
    await kube.kubectl(['create', 'namespace', 'bookinfo']);
    await kube.kubectl(['apply', '-n', 'istio-system', '-f', '-'], await istiodChartConfigMaps(root, join(kube.bin, 'helm')));
    const istiod = await startIstiod(binary, kube.kubeconfig, pin ? { cpus: '0' } : {});
    try {
      let rootPem = '';
      for (let i = 0; i < 100 && rootPem === ''; i++) {
        rootPem = await kube.kubectl(['get', 'configmap', 'istio-ca-root-cert', '-n', 'istio-system', '-o', 'jsonpath={.data.root-cert\\.pem}']).catch(() => '');
        if (rootPem === '') await new Promise((r) => setTimeout(r, 200));
      }
      if (rootPem === '') throw new Error('istiod published no istio-ca-root-cert');
      const url = `https://127.0.0.1:${istiod.httpsPort}`;
      const tls = { ca: rootPem, servername: 'istiod.istio-system.svc' };
      const probe = await request(`${url}/inject`, { method: 'POST', body: review, headers: { 'content-type': 'application/json' }, dispatcher: new Agent({ connect: tls }) });
      const answer = (await probe.body.json()) as { response: { allowed: boolean; patch?: string } };
      if (probe.statusCode !== 200 || !answer.response.allowed || answer.response.patch === undefined) throw new Error(`istiod: unexpected answer ${JSON.stringify(answer).slice(0, 2000)}`);
      const version = (await new Promise<string>((r) => execFile(binary, ['version', '-s'], (_e, out) => r(String(out).trim())))) || '?';
      return { version, patchBytes: Buffer.from(answer.response.patch, 'base64').length, ...(await loadTest(url, tls, istiod.child.pid)) };
    } finally {
      await istiod.stop();
    }
  } finally {
    await kube.stop();
  }
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`injector exited with code ${child.exitCode}`);
    const ok = await request(url).then(
      async (r) => {
        await r.body.dump();
        return r.statusCode === 200;
      },
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('injector did not become ready within 20 s');
}

await main();
