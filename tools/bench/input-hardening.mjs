// Measures pilot's behaviour under hostile config input (issue 15 item 6), against a built dist:
//   node tools/bench/input-hardening.mjs [distDir=dist] [badPosts=1000] [gets=1000]
// Starts its own nats-server and pilot on free loopback ports, prints one JSON line, stops both.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

const dist = resolve(process.argv[2] ?? 'dist');
const badPosts = Number(process.argv[3] ?? 1000);
const gets = Number(process.argv[4] ?? 1000);
const token = 'bench-token';

const free = () => new Promise((ok) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssMb = (pid) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024);

const natsPort = await free();
const store = mkdtempSync(join(tmpdir(), 'aviary-bench-'));
const nats = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', store], { stdio: 'ignore' });
await sleep(500);
const adminPort = await free();
const pilot = spawn(process.execPath, [join(dist, 'apps/pilot/main.js')], {
  env: { ...process.env, AVIARY_NATS_URL: `nats://127.0.0.1:${natsPort}`, AVIARY_ADMIN_PORT: String(adminPort), AVIARY_XDS_PORT: '0', AVIARY_ADMIN_TOKEN: token, AVIARY_LOG_LEVEL: 'warn', AVIARY_DATA_DIR: store },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${adminPort}`;
try {
  for (let i = 0; ; i++) {
    if (i > 300) throw new Error('pilot did not become ready');
    if ((await fetch(`${base}/readyz`).catch(() => undefined))?.ok) break;
    await sleep(100);
  }
  const out = { dist, machine: `${process.platform} ${process.arch}, node ${process.version}` };
  const post = (body) => fetch(`${base}/api/v1/config`, { method: 'POST', body, headers: { 'content-type': 'application/yaml', authorization: `Bearer ${token}` } });

  // 1. The 488 KB, 50,000-key document, while another connection polls /healthz.
  const keys = Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`).join('\n') + '\n';
  let worstHealthz = 0;
  let healthzFailures = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t = performance.now();
      const ok = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(120_000) }).then((r) => r.ok, () => false);
      if (!ok) healthzFailures++;
      worstHealthz = Math.max(worstHealthz, performance.now() - t);
      await sleep(20);
    }
  })();
  const t0 = performance.now();
  const res = await post(keys);
  const answer = await res.json();
  out.fiftyKKeys = { bytes: keys.length, status: res.status, ms: Math.round(performance.now() - t0), code: answer.code, message: String(answer.message).slice(0, 160) };
  polling = false;
  await poller;
  out.fiftyKKeys.worstHealthzMs = Math.round(worstHealthz);
  out.fiftyKKeys.healthzFailures = healthzFailures;

  // 2. RSS after bad POSTs: a ~490 KB manifest that fails validation (an unknown field per route).
  const routes = Array.from({ length: 6000 }, (_, i) => `  - name: r${i}\n    bogus: ${i}\n    route: [{destination: {host: a}}]`).join('\n');
  const bad = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec:\n  hosts: [a]\n  http:\n${routes}\n`.slice(0, 500_000);
  out.rss = { startMb: rssMb(pilot.pid), badBytes: bad.length };
  const statuses = {};
  for (let i = 0; i < badPosts; i++) {
    const r = await post(bad);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    await r.arrayBuffer();
  }
  out.rss.afterMb = rssMb(pilot.pid);
  await sleep(10_000);
  out.rss.after10sMb = rssMb(pilot.pid);
  out.rss.statuses = statuses;

  // 3. Consumers left on nats-server by reads.
  const nc = await connect({ servers: `127.0.0.1:${natsPort}` });
  const jsm = await jetstreamManager(nc);
  const before = (await jsm.getAccountInfo()).consumers;
  for (let i = 0; i < gets; i++) {
    const path = i % 2 === 0 ? '/api/v1/config/virtualservices' : '/api/v1/analyze';
    await (await fetch(`${base}${path}`)).arrayBuffer();
  }
  out.consumers = { before, afterGets: (await jsm.getAccountInfo()).consumers, gets };
  await nc.close();
  console.log(JSON.stringify(out));
} finally {
  pilot.kill('SIGTERM');
  await sleep(1000);
  nats.kill('SIGTERM');
  await sleep(300);
  rmSync(store, { recursive: true, force: true });
}
