import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { LocalMesh } from '../support/mesh';
import { apply, CITADEL, COLLECTOR, get, HOST, listenersSettled, PILOT, remove, requestLoops, until, demoVirtualService } from '../support/demo';

/**
 * The local mesh demo (`npm run demo`) with real processes: the launcher with `--demo` starts
 * nats-server, the five apps, the sample service in v1 and v2 and one sidecar each (the agent
 * with Envoy); the ingress gateway's Envoy on :8080 splits 90/10 over mTLS. One mesh for the whole file (starting it
 * costs most of the time); the tests run in order and the destructive one (pilot killed) last.
 */

const V1_INBOUND = { host: '127.0.0.11', port: 9081 };

let mesh: LocalMesh;

beforeAll(async () => {
  // --restart false: the pilot test below is about proxies with no pilot at all.
  mesh = await LocalMesh.start({ args: ['--demo', '--keep-going', '--restart', 'false'] });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});


async function shareOfV2(n: number): Promise<{ v1: number; v2: number; other: number; others: string[] }> {
  const counts = { v1: 0, v2: 0, other: 0, others: [] as string[] };
  for (let i = 0; i < n; i++) {
    const a = await get();
    if (a.status === 200 && a.version === 'v1') counts.v1++;
    else if (a.status === 200 && a.version === 'v2') counts.v2++;
    else {
      counts.other++;
      counts.others.push(`${a.status} ${a.body.slice(0, 200)}`);
    }
  }
  return counts;
}

/** What a raw client gets from the sidecar's inbound port: the bytes of an HTTP answer, or how the connection ended. */
function rawExchange(open: () => ReturnType<typeof netConnect>, tls: boolean): Promise<{ data: string; ended: string; peer?: string }> {
  return new Promise((resolve) => {
    let data = '';
    let peer: string | undefined;
    const s = open();
    const finish = (ended: string) => {
      s.destroy();
      resolve({ data, ended, ...(peer === undefined ? {} : { peer }) });
    };
    s.setTimeout(5_000, () => finish('timeout'));
    s.once('secureConnect', () => {
      const cert = (s as ReturnType<typeof tlsConnect>).getPeerCertificate();
      peer = cert.subjectaltname;
    });
    s.once(tls ? 'secureConnect' : 'connect', () => s.write('GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n'));
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    s.once('error', (err: NodeJS.ErrnoException) => finish(`error ${err.code ?? err.message}`));
    s.once('close', () => finish('closed'));
  });
}

function tlsTo(opts: Partial<ConnectionOptions>) {
  return () => tlsConnect({ ...V1_INBOUND, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], servername: `outbound_.80_.v1_.${HOST}`, ...opts });
}

describe('the local mesh demo (npm run demo)', () => {
  it('prints what to try, and both versions answer through the ingress gateway', async () => {
    expect(mesh.output).toContain('The demo is running');
    expect(mesh.output).toContain('curl -si localhost:8080/');
    const a = await get();
    expect(a.status).toBe(200);
    expect(a.body).toBe(`hello from hello ${a.version}\n`);
    // Every Envoy speaks the ADS flavour asked for (AVIARY_XDS_PROTOCOL=sotw runs this file over state of the world).
    const proxies = ((await (await fetch(`${PILOT}/api/v1/proxies`)).json()) as { proxies: { id: string; protocol: string }[] }).proxies;
    expect(proxies.map((p) => p.protocol)).toEqual(proxies.map(() => process.env['AVIARY_XDS_PROTOCOL'] ?? 'delta'));
    expect(proxies.length).toBe(3);
  });

  it('splits 90/10 between v1 and v2 (500 requests, v2 share 10 % ± 5 %)', async () => {
    const c = await shareOfV2(500);
    expect(c.others).toEqual([]);
    expect(c.v2 / 500).toBeGreaterThanOrEqual(0.05);
    expect(c.v2 / 500).toBeLessThanOrEqual(0.15);
  });

  it('shows the traffic in the collector: istio_requests_total by destination_service and response_code, and the graph', async () => {
    const series = await until('istio_requests_total for the demo', async () => {
      const text = await (await fetch(`${COLLECTOR}/stats/prometheus`)).text();
      const lines = text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="source"') && l.includes(`destination_service="${HOST}"`) && l.includes('response_code="200"'));
      const total = lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      return total >= 500 ? lines : undefined;
    });
    expect(series.some((l) => l.includes('source_workload="istio-ingressgateway"') && l.includes('destination_version="v1"'))).toBe(true);
    expect(series.some((l) => l.includes('destination_version="v2"'))).toBe(true);
    // The sidecars report the inbound side (their own batches): mutual TLS from the ingress gateway's identity.
    const inbound = /istio_requests_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istio-ingressgateway-service-account"[^}]*destination_principal="spiffe:\/\/cluster\.local\/ns\/demo\/sa\/hello"[^}]*response_code="200"[^}]*connection_security_policy="mutual_tls"\}/;
    const text = await until('the sidecars\' destination reports', async () => {
      const t = await (await fetch(`${COLLECTOR}/stats/prometheus`)).text();
      return inbound.test(t) ? t : undefined;
    });
    expect(text).toContain('istio_request_duration_milliseconds_bucket{');
    // Both sides of the ingress → sidecar hop are fully labelled: the ingress knows the sidecar's
    // verified identity and that it originated mTLS; the sidecar knows its caller's workload and the service.
    const requests = text.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    expect(requests.some((l) => l.includes('reporter="source"') && l.includes('source_workload="istio-ingressgateway"') && l.includes('destination_principal="spiffe://cluster.local/ns/demo/sa/hello"') && l.includes('connection_security_policy="mutual_tls"'))).toBe(true);
    expect(requests.some((l) => l.includes('reporter="destination"') && l.includes('source_workload="istio-ingressgateway"') && l.includes(`destination_service="${HOST}"`) && l.includes('connection_security_policy="mutual_tls"'))).toBe(true);

    // Each proxy flushes its own batches: the graph has every record once the sidecars' batches are in too.
    type Graph = { nodes: { id: string; requestsPerSecond: number }[]; edges: { source: string; target: string; requests: number; errorRatio: number }[] };
    const ingressEdge = (g: Graph) => g.edges.filter((e) => e.source === 'workload:istio-system/istio-ingressgateway' && e.target === `service:${HOST}`);
    const graph = await until('the ingress → hello edge with every request', async () => {
      const g = (await (await fetch(`${COLLECTOR}/api/v1/graph?window=300s`)).json()) as Graph;
      return (ingressEdge(g)[0]?.requests ?? 0) >= 500 ? g : undefined;
    });
    const ids = graph.nodes.map((n) => n.id);
    expect(ids).toContain('workload:istio-system/istio-ingressgateway');
    expect(ids).toContain(`service:${HOST}`);
    const fromIngress = ingressEdge(graph);
    expect(fromIngress.length).toBe(1);
    expect(fromIngress[0]!.requests).toBeGreaterThanOrEqual(500);
    expect(fromIngress[0]!.errorRatio).toBe(0);
  });

  it('moves the split when the VirtualService changes at run time, with no failed request', async () => {
    const load = requestLoops(4);
    const { answers, failures } = load;
    try {
      await new Promise((r) => setTimeout(r, 300));
      await apply(mesh, demoVirtualService({ v1: 50, v2: 50 }));
      // Converged once v2 answers at ~50 %: wait, then measure a fresh window.
      await new Promise((r) => setTimeout(r, 1_500));
      const from = answers.length;
      await until('400 answers at 50/50', async () => (answers.length - from >= 400 ? true : undefined));
      const window = answers.slice(from, from + 400);
      const v2 = window.filter((a) => a.version === 'v2').length / window.length;
      expect(v2).toBeGreaterThan(0.38);
      expect(v2).toBeLessThan(0.62);

      await apply(mesh, demoVirtualService({ v1: 0, v2: 100 }));
      await new Promise((r) => setTimeout(r, 1_500));
      const from2 = answers.length;
      await until('200 answers at 0/100', async () => (answers.length - from2 >= 200 ? true : undefined));
      expect(answers.slice(from2, from2 + 200).every((a) => a.version === 'v2')).toBe(true);
    } finally {
      await load.stop();
    }
    expect(failures).toEqual([]);
    expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body}`)).toEqual([]);
    expect(answers.length).toBeGreaterThan(600);
    await apply(mesh, demoVirtualService({ v1: 90, v2: 10 }));
  });

  it('speaks only mutual TLS on a sidecar\'s inbound port under STRICT, with the SPIFFE identities checked', async () => {
    // Plaintext HTTP to the sidecar: no filter chain accepts it; the connection is closed unanswered.
    const plain = await rawExchange(() => netConnect(V1_INBOUND), false);
    expect(plain.data).toBe('');
    expect(plain.ended).not.toBe('timeout');

    // TLS without a client certificate: the sidecar shows its own SPIFFE identity, then refuses.
    const anonymous = await rawExchange(tlsTo({}), true);
    expect(anonymous.data).not.toContain('HTTP/1.1');
    expect(anonymous.peer).toBe('URI:spiffe://cluster.local/ns/demo/sa/hello');

    // TLS with a certificate from another CA, even with a plausible SPIFFE id: refused.
    const rogueCa = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const rogueKey = generatePrivateKey('ecdsa-p256');
    const rogue = rogueCa.signWorkload(createCsr(rogueKey), 'spiffe://cluster.local/ns/demo/sa/intruder', { ttlSeconds: 600 });
    const forged = await rawExchange(tlsTo({ key: privateKeyToPem(rogueKey), cert: rogue.chain.slice(0, -1).join('\n') }), true);
    expect(forged.data).not.toContain('HTTP/1.1');

    // A mesh certificate from citadel (join token → CSR): accepted, the request reaches the app.
    const tokenRes = await fetch(`${CITADEL}/api/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${mesh.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'demo', serviceAccount: 'tester', ttl: 600 }) });
    const { token: join } = (await tokenRes.json()) as { token: string };
    const key = generatePrivateKey('ecdsa-p256');
    const certRes = await fetch(`${CITADEL}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${join}`, 'content-type': 'application/json' }, body: JSON.stringify({ csr: createCsr(key) }) });
    expect(certRes.status).toBe(200);
    const { certChain } = (await certRes.json()) as { certChain: string[] };
    const meshed = await rawExchange(tlsTo({ key: privateKeyToPem(key), cert: certChain.slice(0, -1).join('\n') }), true);
    expect(meshed.peer).toBe('URI:spiffe://cluster.local/ns/demo/sa/hello');
    expect(meshed.data).toMatch(/^HTTP\/1\.1 200/);
    expect(meshed.data).toContain('x-version: v1');
  });

  it('answers 403 where an AuthorizationPolicy DENY matches', async () => {
    await apply(mesh, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: demo }
spec:
  selector: { matchLabels: { app: hello } }
  action: DENY
  rules:
  - to: [{ operation: { paths: ['/admin*'] } }]
`);
    try {
      await until('403 on /admin', async () => ((await get('/admin/users')).status === 403 ? true : undefined));
      // A pooled connection opened before the change serves one more request on the previous
      // filter chain while the sidecar's listener drains: wait for the drain to end.
      await until('the sidecars\' previous listeners to drain', async () => ((await listenersSettled()) ? true : undefined));
      for (let i = 0; i < 20; i++) expect((await get('/admin/users')).status).toBe(403);
      for (let i = 0; i < 20; i++) expect((await get('/')).status).toBe(200);
    } finally {
      await remove(mesh, 'authorizationpolicies', 'deny-admin');
    }
    await until('/admin allowed again', async () => ((await get('/admin/users')).status === 200 ? true : undefined));
    await until('the sidecars\' previous listeners to drain', async () => ((await listenersSettled()) ? true : undefined));
  });

  it('answers 429 once a RateLimitPolicy\'s token bucket is empty', async () => {
    await apply(mesh, `apiVersion: networking.aviary.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: hello, namespace: demo }
spec:
  workloadSelector: { labels: { app: hello } }
  rules:
  - name: per-sidecar
    tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 60s }
    responseHeaders: { set: { x-demo-limited: "true" } }
`);
    try {
      const limited = await until('a 429', async () => {
        const a = await get();
        return a.status === 429 ? a : undefined;
      });
      expect(limited.headers.get('x-demo-limited')).toBe('true');
      // Connections on a draining filter chain still have that chain's (unlimited) config.
      await until('the sidecars\' previous listeners to drain', async () => ((await listenersSettled()) ? true : undefined));
      // Two sidecars, five tokens each for the next minute: at most ten more requests pass.
      const statuses = await Promise.all(Array.from({ length: 30 }, () => get().then((a) => a.status)));
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20);
      expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    } finally {
      await remove(mesh, 'ratelimitpolicies', 'hello');
    }
    // One 200 only means the bucket refilled: the policy is gone when a burst passes untouched.
    await until('the rate limit to be removed', async () => {
      const burst = await Promise.all(Array.from({ length: 30 }, () => get()));
      return burst.every((r) => r.status === 200) ? true : undefined;
    });
    // A pooled connection on the draining (limited) filter chain would still answer 429.
    await until('the sidecars\' previous listeners to drain', async () => ((await listenersSettled()) ? true : undefined));
  });

  it('keeps routing on the last config when pilot is killed', async () => {
    const first = readFileSync(join(mesh.stateDir, 'logs', 'pilot.log'), 'utf8').split('\n')[0] as string;
    const pid = (JSON.parse(first) as { pid: number }).pid;
    process.kill(pid, 'SIGKILL');
    await mesh.waitFor('pilot exited', 10_000);
    // The proxies notice (their xDS stream breaks) and keep serving what they have.
    await until('the gateway to notice', async () => (readFileSync(join(mesh.stateDir, 'logs', 'gateway.log'), 'utf8').includes('pilot unreachable') ? true : undefined));
    const c = await shareOfV2(200);
    expect(c.others).toEqual([]);
    expect(c.v2).toBeGreaterThan(0);
    expect(c.v1).toBeGreaterThan(c.v2);
  });

  it('stops every process on Ctrl-C, Envoys included', async () => {
    const pids = ['gateway', 'hello-v1', 'hello-v1-sidecar', 'hello-v2', 'hello-v2-sidecar'].map((name) => {
      const first = readFileSync(join(mesh.stateDir, 'logs', `${name}.log`), 'utf8').split('\n')[0] as string;
      return (JSON.parse(first) as { pid: number }).pid;
    });
    for (const admin of ['http://127.0.0.1:15000', 'http://127.0.0.1:15100', 'http://127.0.0.1:15200']) {
      const agent = (await (await fetch(`${admin}/agent`)).json()) as { envoy: { pid: number } };
      expect(agent.envoy.pid).toBeGreaterThan(0);
      pids.push(agent.envoy.pid);
    }
    expect(await mesh.stop()).toBe(0);
    const alive = pids.filter((p) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
  });
});
