import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh } from '../support/mesh';
import { apply, CITADEL, get, HOST, requestLoops, until, type Answer, demoVirtualService } from '../support/demo';

/**
 * The demo's resilience with real processes (the agents with Envoy): retries hiding a flaky
 * upstream, outlier detection ejecting a failing endpoint, certificate renewal and root rotation
 * under load. Its own mesh (one per file):
 * the launcher with `--demo --demo-cert-ttl-seconds 20`, so every proxy renews its workload
 * certificate every ~10 s while the tests run.
 */

const GATEWAY_ADMIN = 'http://127.0.0.1:15000';
const V1_SIDECAR_ADMIN = 'http://127.0.0.1:15100';
const V1_APP = 'http://127.0.0.1:9081';
const V2_APP = 'http://127.0.0.1:9082';
const CERT_TTL_SECONDS = 20;

let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({ args: ['--demo', '--keep-going', '--demo-cert-ttl-seconds', String(CERT_TTL_SECONDS)] });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});

interface Counters {
  requests: number;
  flaky: { requests: number; failed: number };
  failIf: { requests: number; failed: number };
}

/** mTLS handshake failures the ingress's Envoy counted towards the hello clusters. */
async function handshakeErrors(): Promise<number> {
  const text = await (await fetch(`${GATEWAY_ADMIN}/stats?filter=${encodeURIComponent('^cluster\\.outbound.*hello.*\\.ssl\\.connection_error$')}`)).text();
  return text.split('\n').filter((l) => l.includes(': ')).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function counters(app: string): Promise<Counters> {
  return (await (await fetch(`${app}/counters`)).json()) as Counters;
}


function destinationRule(outlier: boolean): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hello, namespace: demo }
spec:
  host: ${HOST}
  trafficPolicy:
    tls: { mode: ISTIO_MUTUAL }
${outlier ? '    outlierDetection: { consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 120s, maxEjectionPercent: 50 }\n' : ''}  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
}

describe('the local mesh demo: resilience', () => {
  it('hides an upstream that fails every other request with retries (attempts: 3, retryOn: 5xx)', async () => {
    await apply(mesh, 
      demoVirtualService({ extraRoutes: `  - name: flaky
    match: [{ uri: { prefix: /flaky } }]
    retries: { attempts: 3, retryOn: 5xx }
    headers: { response: { set: { x-demo-route: flaky } } }
    route:
    - { destination: { host: ${HOST}, subset: v1, port: { number: 80 } } }
` }),
    );
    try {
      await until('the flaky route', async () => ((await get('/flaky')).headers.get('x-demo-route') === 'flaky' ? true : undefined));
      const before = await counters(V1_APP);
      const answers: Answer[] = [];
      for (let i = 0; i < 100; i++) answers.push(await get('/flaky'));
      const after = await counters(V1_APP);
      expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body}`)).toEqual([]);
      expect(answers.every((a) => a.version === 'v1')).toBe(true);
      // The service did fail: every other attempt, each hidden by a retry.
      const failed = after.flaky.failed - before.flaky.failed;
      const attempts = after.flaky.requests - before.flaky.requests;
      expect(failed).toBeGreaterThanOrEqual(45);
      expect(attempts).toBe(100 + failed);
    } finally {
      await apply(mesh, demoVirtualService());
    }
  });

  it('ejects an endpoint that always fails (outlierDetection consecutive5xxErrors: 3)', async () => {
    await apply(mesh, destinationRule(true));
    await apply(mesh, 
      demoVirtualService({ extraRoutes: `  - name: fail-if
    match: [{ uri: { prefix: /fail-if } }]
    retries: { attempts: 0 }
    headers: { response: { set: { x-demo-route: fail-if } } }
    route:
    - { destination: { host: ${HOST}, port: { number: 80 } } }
` }),
    );
    const cluster = `outbound|80||${HOST}`;
    try {
      // v2 answers 503 on /fail-if/v2, v1 answers 200; both are endpoints of the subset-less cluster.
      await until('the fail-if route with outlier detection', async () => {
        const a = await get('/fail-if/v2');
        if (a.headers.get('x-demo-route') !== 'fail-if') return undefined;
        const dump = (await (await fetch(`${GATEWAY_ADMIN}/config_dump?resource=dynamic_active_clusters`)).json()) as { configs: { cluster: { name: string; outlier_detection?: unknown } }[] };
        return dump.configs.find((c) => c.cluster.name === cluster)?.cluster.outlier_detection !== undefined ? true : undefined;
      });
      const v2Before = await counters(V2_APP);
      const first: Answer[] = [];
      for (let i = 0; i < 40; i++) first.push(await get('/fail-if/v2'));
      // Envoy's /clusters (through the agent admin): the v2 endpoint failed the outlier check.
      type HostStatus = { address: { socket_address: { address: string; port_value: number } }; health_status: { failed_outlier_check?: boolean } };
      const status = (await (await fetch(`${GATEWAY_ADMIN}/clusters?format=json`)).json()) as { cluster_statuses: { name: string; host_statuses?: HostStatus[] }[] };
      const eps = status.cluster_statuses.find((c) => c.name === cluster)?.host_statuses ?? [];
      expect(eps.map((e) => [`${e.address.socket_address.address}:${e.address.socket_address.port_value}`, e.health_status.failed_outlier_check === true]).sort()).toEqual([
        ['127.0.0.11:9081', false],
        ['127.0.0.12:9082', true],
      ]);
      // A few 503s (v2 before its ejection), then v1 alone.
      const errors = first.filter((a) => a.status !== 200).length;
      expect(errors).toBeGreaterThanOrEqual(1);
      expect(errors).toBeLessThanOrEqual(5);
      const v2After = await counters(V2_APP);
      expect(v2After.failIf.failed - v2Before.failIf.failed).toBe(errors);
      const later: Answer[] = [];
      for (let i = 0; i < 50; i++) later.push(await get('/fail-if/v2'));
      expect(later.map((a) => `${a.status} ${a.version}`).filter((s) => s !== '200 v1')).toEqual([]);
      expect((await counters(V2_APP)).failIf.requests).toBe(v2After.failIf.requests);
    } finally {
      await apply(mesh, demoVirtualService());
      await apply(mesh, destinationRule(false));
    }
  });

  it('renews the proxies\' certificates under load with no failed request', async () => {
    const identityOf = async (admin: string) => ((await (await fetch(`${admin}/agent`)).json()) as { certificate?: { version: number; notAfter: string } }).certificate;
    const helloCerts = async () => ((await (await fetch(`${CITADEL}/api/v1/certificates`)).json()) as { items: { serial: string; identity: string }[] }).items.filter((i) => i.identity.includes('/ns/demo/sa/hello')).map((i) => i.serial);
    const ingress0 = await identityOf(GATEWAY_ADMIN);
    const sidecar0 = await identityOf(V1_SIDECAR_ADMIN);
    const serials0 = new Set(await helloCerts());
    expect(ingress0).toBeDefined();
    expect(sidecar0).toBeDefined();
    // Short-lived, as asked: at most the TTL (plus a second of rounding) ahead.
    expect(new Date(sidecar0!.notAfter).getTime() - Date.now()).toBeLessThanOrEqual((CERT_TTL_SECONDS + 1) * 1000);

    const load = requestLoops(4);
    const { answers, failures } = load;
    try {
      // Both ends of the ingress → v1 hop get new certificates (renewal at half the lifetime).
      await until(
        'a renewal on the ingress gateway and on the v1 sidecar',
        async () => {
          const [i, s] = await Promise.all([identityOf(GATEWAY_ADMIN), identityOf(V1_SIDECAR_ADMIN)]);
          return i !== undefined && s !== undefined && i.notAfter !== ingress0!.notAfter && s.notAfter !== sidecar0!.notAfter ? true : undefined;
        },
        CERT_TTL_SECONDS * 1000 + 5_000,
      );
      // And traffic keeps flowing over the new certificates for a moment.
      const from = answers.length;
      await until('200 answers after the renewal', async () => (answers.length - from >= 200 ? true : undefined));
    } finally {
      await load.stop();
    }
    const serials = await helloCerts();
    const renewed = serials.filter((s) => !serials0.has(s)).length;
    expect(renewed).toBeGreaterThanOrEqual(1);
    // At half the lifetime, not in a loop (citadel backdates notBefore; renewal counts from receipt).
    expect(renewed).toBeLessThanOrEqual(10);
    expect(failures).toEqual([]);
    expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body}`)).toEqual([]);
    expect(answers.length).toBeGreaterThan(300);
    // Envoy holds the renewed certificate, and no mTLS handshake failed on the way.
    const held = (await identityOf(GATEWAY_ADMIN))!;
    const certs = (await (await fetch(`${GATEWAY_ADMIN}/certs`)).json()) as { certificates: { cert_chain: { expiration_time: string }[] }[] };
    expect(certs.certificates.some((c) => c.cert_chain.some((x) => Date.parse(x.expiration_time) === Date.parse(held.notAfter)))).toBe(true);
    expect(await handshakeErrors()).toBe(0);
  });

  it('rotates citadel\'s root under load with no failed request: the new root reaches every Envoy before it signs', async () => {
    const load = requestLoops(4);
    const { answers, failures } = load;
    const rootsIn = async (admin: string) => Math.max(0, ...((await (await fetch(`${admin}/certs`)).json()) as { certificates: { ca_cert: unknown[] }[] }).certificates.map((c) => c.ca_cert.length));
    try {
      const res = await fetch(`${CITADEL}/api/v1/rotate`, { method: 'POST', headers: { authorization: `Bearer ${mesh.token}` } });
      expect(res.status).toBe(200);
      const bundle = (await res.json()) as { roots: string[] };
      expect(bundle.roots.length).toBeGreaterThanOrEqual(2);
      await until('the new bundle in the ingress and the v1 sidecar', async () => ((await rootsIn(GATEWAY_ADMIN)) >= bundle.roots.length && (await rootsIn(V1_SIDECAR_ADMIN)) >= bundle.roots.length ? true : undefined));
      // Then both ends renew (every ~10 s), now signed by the new root, and traffic keeps flowing.
      const [i0, s0] = await Promise.all([GATEWAY_ADMIN, V1_SIDECAR_ADMIN].map(async (a) => ((await (await fetch(`${a}/agent`)).json()) as { certificate: { version: number } }).certificate.version));
      await until(
        'a renewal on both ends after the rotation',
        async () => {
          const [i, s] = await Promise.all([GATEWAY_ADMIN, V1_SIDECAR_ADMIN].map(async (a) => ((await (await fetch(`${a}/agent`)).json()) as { certificate: { version: number } }).certificate.version));
          return i! > i0! && s! > s0! ? true : undefined;
        },
        CERT_TTL_SECONDS * 1000 + 5_000,
      );
      const from = answers.length;
      await until('200 answers after the rotation', async () => (answers.length - from >= 200 ? true : undefined));
    } finally {
      await load.stop();
    }
    expect(failures).toEqual([]);
    expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body}`)).toEqual([]);
    expect(await handshakeErrors()).toBe(0);
  });
});
