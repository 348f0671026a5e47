import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';

/**
 * The local mesh demo (`--demo`): the sample service `hello` (tools/demo/service.ts) in two
 * versions, each behind its own sidecar (the gateway app in `--mode sidecar`), and the
 * launcher's ingress gateway routing to them with tools/demo/demo.yaml.
 *
 * Local mode has no iptables, so each workload gets its own loopback IP, and its sidecar (the
 * agent with Envoy) declares INTERCEPTION_MODE NONE with that IP: pilot binds the sidecar's
 * inbound listener to <ip>:<port> (the WorkloadEntry's address and port, where peers dial it),
 * forwarding to the app on 127.0.0.1:<port> (as in a pod), as Istio does for VMs.
 */

export const DEMO_NAMESPACE = 'demo';
export const DEMO_SERVICE = 'hello';
export const DEMO_HOST = `${DEMO_SERVICE}.${DEMO_NAMESPACE}.svc.cluster.local`;

export interface DemoWorkload {
  readonly version: string;
  /** The workload's own loopback IP: the xDS node IP (INSTANCE_IPS), where pilot binds the sidecar's inbound listener. */
  readonly ip: string;
  /** The app's port on 127.0.0.1, and the sidecar's inbound port on `ip`. */
  readonly port: number;
  readonly sidecarAdminPort: number;
  readonly sidecarStatsPort: number;
  /** The sidecar's readiness listener (Istio's 15021 in a pod). */
  readonly sidecarStatusPort: number;
}

export const demoWorkloads: readonly DemoWorkload[] = [
  { version: 'v1', ip: '127.0.0.11', port: 9081, sidecarAdminPort: 15100, sidecarStatsPort: 15190, sidecarStatusPort: 15121 },
  { version: 'v2', ip: '127.0.0.12', port: 9082, sidecarAdminPort: 15200, sidecarStatsPort: 15290, sidecarStatusPort: 15221 },
];

/**
 * An "external" service (outside the mesh: no sidecar, plain HTTP on 127.0.0.1), known to the
 * mesh only by the demo's ServiceEntry `weather.external.test` (MESH_EXTERNAL, resolution DNS,
 * endpoint localhost): the ingress routes `/external/` there (tools/demo/demo.yaml).
 */
export const externalService = { name: 'weather', version: 'external', host: 'weather.external.test', port: 9083 } as const;

export function externalServiceArgs(): string[] {
  return ['--name', externalService.name, '--version', externalService.version, '--host', '127.0.0.1', '--port', String(externalService.port)];
}

/** The ingress gateway's identity and the labels the demo's Gateway selects. */
export const ingress = {
  name: 'istio-ingressgateway',
  namespace: 'istio-system',
  serviceAccount: 'istio-ingressgateway-service-account',
  labels: 'istio=ingressgateway,app=istio-ingressgateway',
  /** What pilot selects the ingress by for Gateway API Gateways (AVIARY_GATEWAY_API_SELECTOR). */
  selector: 'istio=ingressgateway',
};

/** Join tokens last as long as citadel allows: sidecars renew their certificates with them. */
const JOIN_TOKEN_TTL_SECONDS = 30 * 86_400;

/**
 * The demo's HTTPS ingress: the Gateway's 8443 server names credential `hello-cert`, which
 * resolves in the ingress gateway's namespace (as Istio's credentialName does with Secrets).
 */
export const demoTls = {
  credential: 'hello-cert',
  host: 'hello.demo.local',
  port: 8443,
  /** Where the launcher writes the demo CA's certificate (for curl --cacert), in the state directory. */
  caFile: 'demo-ca.crt',
} as const;

export const PILOT = 'http://127.0.0.1:15014';
export const CITADEL = 'http://127.0.0.1:15016';

export async function mintJoinToken(adminToken: string, namespace: string, serviceAccount: string): Promise<string> {
  const res = await fetch(`${CITADEL}/api/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ namespace, serviceAccount, ttl: JOIN_TOKEN_TTL_SECONDS }),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) throw new Error(`citadel refused a join token for ${namespace}/${serviceAccount}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

export async function applyDemoConfig(adminToken: string, root: string): Promise<string> {
  const yaml = await readFile(join(root, 'tools', 'demo', 'demo.yaml'), 'utf8');
  const res = await fetch(`${PILOT}/api/v1/config`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/yaml' },
    body: yaml,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`pilot refused tools/demo/demo.yaml: ${res.status} ${text}`);
  const results = (JSON.parse(text) as { results: { kind: string; name: string; action: string }[] }).results;
  return results.map((r) => `${r.kind}/${r.name} ${r.action}`).join(', ');
}

/**
 * Creates the demo's TLS credential through pilot's credentials API: a fresh self-signed CA
 * (written to `caFile`; its key is dropped) and a certificate for `demoTls.host`, localhost and
 * 127.0.0.1, stored as `istio-system/hello-cert`. Returns the certificate's fingerprint.
 */
export async function createDemoCredential(adminToken: string, caFile: string, ttlSeconds: number): Promise<string> {
  const ca = Issuer.createRoot({ trustDomain: 'demo.local', validitySeconds: ttlSeconds });
  const key = generatePrivateKey();
  const leaf = ca.signServing(createCsr(key, { commonName: demoTls.host }), [demoTls.host, 'localhost', '127.0.0.1'], ttlSeconds);
  await writeFile(caFile, ca.rootPem);
  const res = await fetch(`${PILOT}/api/v1/credentials/${ingress.namespace}/${demoTls.credential}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ certChain: leaf.certPem, privateKey: privateKeyToPem(key) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200 && res.status !== 201) throw new Error(`pilot refused the demo credential: ${res.status} ${text}`);
  return (JSON.parse(text) as { certificates: { sha256: string }[] }).certificates[0]?.sha256 ?? '';
}

export function sidecarEnv(w: DemoWorkload, joinToken: string, certTtlSeconds: number): NodeJS.ProcessEnv {
  return {
    AVIARY_CERT_TTL_SECONDS: String(certTtlSeconds),
    AVIARY_MODE: 'sidecar',
    AVIARY_NAME: `${DEMO_SERVICE}-${w.version}`,
    AVIARY_NAMESPACE: DEMO_NAMESPACE,
    AVIARY_SERVICE_ACCOUNT: DEMO_SERVICE,
    AVIARY_LABELS: `app=${DEMO_SERVICE},version=${w.version}`,
    AVIARY_PLATFORM: 'local',
    AVIARY_POD_IP: w.ip,
    AVIARY_ADMIN_PORT: String(w.sidecarAdminPort),
    AVIARY_STATS_PORT: String(w.sidecarStatsPort),
    AVIARY_STATUS_PORT: String(w.sidecarStatusPort),
    AVIARY_JOIN_TOKEN: joinToken,
  };
}

/**
 * The ingress gateway reaches pilot over mTLS (`pilotAddresses`: every replica's 15012 port),
 * presenting its workload certificate: only an authenticated proxy is served credentials by SDS.
 */
export function ingressEnv(joinToken: string, certTtlSeconds: number, pilotAddresses: string): NodeJS.ProcessEnv {
  return {
    AVIARY_PILOT_ADDRESS: pilotAddresses,
    AVIARY_XDS_TLS: 'on',
    AVIARY_CERT_TTL_SECONDS: String(certTtlSeconds),
    AVIARY_NAME: ingress.name,
    AVIARY_NAMESPACE: ingress.namespace,
    AVIARY_SERVICE_ACCOUNT: ingress.serviceAccount,
    AVIARY_LABELS: ingress.labels,
    AVIARY_JOIN_TOKEN: joinToken,
  };
}

export function serviceArgs(w: DemoWorkload): string[] {
  return ['--name', DEMO_SERVICE, '--version', w.version, '--host', '127.0.0.1', '--port', String(w.port)];
}

/** Waits until both versions answer through the ingress gateway. */
export async function waitForTraffic(url: string, deadline: number, alive: () => boolean): Promise<Set<string>> {
  const seen = new Set<string>();
  while (Date.now() < deadline && alive() && seen.size < demoWorkloads.length) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      const v = res.headers.get('x-version');
      if (res.status === 200 && v !== null) seen.add(v);
      else await new Promise((r) => setTimeout(r, 100));
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return seen;
}

export function demoHelp(stateDir: string): string[] {
  const tok = `TOKEN=$(cat ${stateDir}/admin-token)`;
  return [
    'The demo is running: hello v1 and v2, each behind its own sidecar; the ingress gateway splits 90/10.',
    '',
    `  ${'workload'.padEnd(10)} ${'app'.padEnd(18)} ${'sidecar inbound (mTLS)'.padEnd(24)} sidecar admin`,
    ...demoWorkloads.map((w) => `  ${`hello-${w.version}`.padEnd(10)} ${`127.0.0.1:${w.port}`.padEnd(18)} ${`${w.ip}:${w.port}`.padEnd(24)} http://127.0.0.1:${w.sidecarAdminPort}`),
    '',
    'Try (see docs/demo.md):',
    '  curl -si localhost:8080/',
    `  curl -s localhost:8080/external/     # to ${externalService.host} (ServiceEntry, MESH_EXTERNAL): "hello from ${externalService.name} ${externalService.version}"`,
    `  curl -si --cacert ${stateDir}/${demoTls.caFile} https://localhost:${demoTls.port}/     # HTTPS, certificate from pilot's credentials API`,
    '  for i in $(seq 100); do curl -s localhost:8080/; done | sort | uniq -c',
    `  ${tok}`,
    `  curl -s -X POST ${PILOT}/api/v1/config -H "Authorization: Bearer $TOKEN" \\`,
    '       -H \'Content-Type: application/yaml\' --data-binary @tools/demo/virtualservice-50-50.yaml',
    `  curl -sv http://${demoWorkloads[0]!.ip}:${demoWorkloads[0]!.port}/     # plaintext to a sidecar: refused (STRICT mTLS)`,
    '  open http://127.0.0.1:15020/dashboard',
  ];
}
