// The seed's story on a real one-node Kubernetes, driven only the way a user would (helm,
// kubectl, Istio YAML): `helm install` into istio-system, a namespace labelled
// istio-injection=enabled, the demo service `hello` v1 and v2 and a client as ordinary
// Deployments of the demo-service image; every pod injected and Ready (its probes answered by the
// agent's /app-health/ rewrites), each sidecar holding a SPIFFE certificate that citadel issued
// over TLS for its service-account token, client -> hello through the sidecars reaching both
// versions, DestinationRule subsets choosing sidecars by their labels, PeerAuthentication STRICT refusing plaintext to a pod port, AuthorizationPolicy DENY
// answering 403, the sidecars' request telemetry in the collector. Needs root; skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEERS_TIMEOUT_MS } from '../k8s/cluster';
import { buildImages, canRunNode, eventually, installAviary, isPodReady, kubectlOk, startNode, waitForInjector, type BuiltImage, type KubeNode, type PodLike } from './node';

const MESH = 'mesh';
const PLAIN = 'plain';
const log = (msg: string): void => void process.stderr.write(`[k8s-node mesh] ${msg}\n`);

/** The workloads, as a user writes them: nothing mesh-specific but the namespace label. */
function workloads(image: string): string {
  const deployment = (name: string, app: string, version: string, serviceAccount: string): string => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${MESH} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${app}, version: ${version} } }
  template:
    metadata: { labels: { app: ${app}, version: ${version} } }
    spec:
      serviceAccountName: ${serviceAccount}
      containers:
        - name: ${app}
          image: ${image}
          imagePullPolicy: Never
          env:
            - { name: AVIARY_HOST, value: 0.0.0.0 }
            - { name: AVIARY_PORT, value: "8080" }
            - { name: AVIARY_NAME, value: ${app} }
            - { name: AVIARY_VERSION, value: ${version} }
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /, port: http }, periodSeconds: 2 }
          livenessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 5 }
`;
  const service = (app: string): string => `
apiVersion: v1
kind: Service
metadata: { name: ${app}, namespace: ${MESH}, labels: { app: ${app} } }
spec:
  selector: { app: ${app} }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;
  const sa = (name: string): string => `
apiVersion: v1
kind: ServiceAccount
metadata: { name: ${name}, namespace: ${MESH} }
`;
  return [sa('hello'), sa('client'), service('hello'), service('client'), deployment('hello-v1', 'hello', 'v1', 'hello'), deployment('hello-v2', 'hello', 'v2', 'hello'), deployment('client', 'client', 'v1', 'client')].join('---');
}

/** A script for `node -e` in the demo-service image: `n` GETs of `url`, outcomes counted ("<status> <body>" or "error <code>"). */
function requests(url: string, n: number): string {
  return `(async () => {
  const out = {};
  for (let i = 0; i < ${n}; i++) {
    let k;
    try {
      const r = await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) });
      k = r.status + ' ' + (await r.text()).trim();
    } catch (e) {
      k = 'error ' + ((e.cause && e.cause.code) || e.name);
    }
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

  afterAll(async () => {
    if (node === undefined) return;
    const { audit } = await node.stop();
    if (audit.code !== 0) throw new Error(`teardown left something behind:\n${audit.stderr}`);
  }, 300_000);

  const kubectl = (...args: string[]): Promise<string> => kubectlOk(node, args);
  const apply = (yaml: string): Promise<string> => kubectlOk(node, ['apply', '-f', '-'], yaml);
  const pods = async (ns: string, selector: string): Promise<PodLike[]> => (JSON.parse(await kubectl('-n', ns, 'get', 'pods', '-l', selector, '-o', 'json')) as { items: PodLike[] }).items.filter((p) => p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed');
  /** Runs `node -e script` in the client's app container (its traffic goes through its sidecar). */
  const fromClient = async (script: string): Promise<Record<string, number>> => JSON.parse((await kubectl('-n', MESH, 'exec', 'deploy/client', '-c', 'client', '--', '/usr/local/bin/node', '-e', script)).trim()) as Record<string, number>;
  /** GETs the agent admin (127.0.0.1:15000 in the pod) from the istio-proxy container. */
  const agentAdmin = async (pod: string, path: string): Promise<string> =>
    kubectl('-n', MESH, 'exec', pod, '-c', 'istio-proxy', '--', 'node', '-e', `fetch('http://127.0.0.1:15000${path}').then((r) => r.text()).then((t) => process.stdout.write(t))`);

  it('a labelled namespace gets every pod injected, and every pod becomes Ready through the agent', async () => {
    await kubectl('create', 'namespace', MESH);
    await kubectl('label', 'namespace', MESH, 'istio-injection=enabled');
    await waitForInjector(node, MESH);
    await apply(workloads(demoImage));
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
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hello, namespace: ${MESH} }
spec:
  host: hello.${MESH}.svc.cluster.local
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
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

  it.todo('ingress gateway: Gateway + VirtualService with TLS from a Secret (credentialName), 90/10 then 50/50 with no failed request');
  // Tried on the node (run of 2026-12-05 08:04): `kubectl rollout status deployment/hello-v1`
  // did not finish within 120 s after `rollout restart` under traffic; not diagnosed yet.
  it.todo('kubectl rollout restart of v1 and a pod deletion under traffic: no failed request');
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
