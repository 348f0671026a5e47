import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { LocalMesh, root } from '../support/mesh';
import { PILOT, until } from '../support/demo';

/**
 * Istio's tcp-echo Gateway-API sample (samples/tcp-echo/gateway-api, the manifests verbatim from
 * libs/xds/translate/src/__fixtures__/istio-gateway-api-samples) in the local mesh demo with real
 * Envoys: its Gateway (class istio, a TCP listener on 31400) and TCPRoute apply through pilot's
 * REST API and are served by the launcher's ingress (pilot's gatewayApiSelector). Adapted: local
 * mode has no Kubernetes Services or Deployments, so the sample's Services tcp-echo-v1/-v2 are
 * ServiceEntries whose endpoints are two TCP servers started here that answer like the sample's
 * tcp-echo-server (`one <line>` / `two <line>`), reached in plaintext (they have no sidecar).
 */

const SAMPLES = join(root, 'libs', 'xds', 'translate', 'src', '__fixtures__', 'istio-gateway-api-samples');
const N = 200;

let mesh: LocalMesh;
const servers: Server[] = [];
const ports: Record<string, number> = {};

/** The sample's tcp-echo-server: each line comes back prefixed by the server's word. */
function echoServer(prefix: string): Server {
  return createServer((sock: Socket) => {
    sock.on('error', () => undefined);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        sock.write(`${prefix} ${buf.slice(0, nl)}\n`);
        buf = buf.slice(nl + 1);
      }
    });
  });
}

beforeAll(async () => {
  for (const prefix of ['one', 'two']) {
    const s = echoServer(prefix);
    servers.push(s);
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
    ports[prefix] = (s.address() as { port: number }).port;
  }
  mesh = await LocalMesh.start({ args: ['--demo', '--keep-going'] });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  for (const s of servers) await new Promise((r) => s.close(() => r(undefined)));
});

async function applyYaml(yaml: string): Promise<{ kind: string; name: string; action: string }[]> {
  const res = await fetch(`${PILOT}/api/v1/config?namespace=demo`, { method: 'POST', headers: { authorization: `Bearer ${mesh.token}`, 'content-type': 'application/yaml' }, body: yaml });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return (JSON.parse(text) as { results: { kind: string; name: string; action: string }[] }).results;
}

/** A sample file's documents, its v1 Services replaced by ServiceEntries to the local echo servers. */
function sample(file: string): string {
  const docs = parseAllDocuments(readFileSync(join(SAMPLES, file), 'utf8')).map((d) => d.toJS() as { apiVersion: string; kind: string; metadata: { name: string }; spec: Record<string, unknown> });
  return docs
    .map((d) => {
      if (d.apiVersion !== 'v1' || d.kind !== 'Service') return stringify(d);
      const prefix = d.metadata.name.endsWith('v1') ? 'one' : 'two';
      return stringify({
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: d.metadata.name },
        spec: { hosts: [`${d.metadata.name}.demo.svc.cluster.local`], location: 'MESH_EXTERNAL', resolution: 'STATIC', ports: [{ number: 9000, name: 'tcp', protocol: 'TCP' }], endpoints: [{ address: '127.0.0.1', ports: { tcp: ports[prefix] } }] },
      }) + `---\n${stringify({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: d.metadata.name }, spec: { host: `${d.metadata.name}.demo.svc.cluster.local`, trafficPolicy: { tls: { mode: 'DISABLE' } } } })}`;
    })
    .join('---\n');
}

/** One connection to the ingress's 31400: sends a line, returns the answer's prefix. */
function echo(line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port: 31400 });
    let data = '';
    sock.setTimeout(5_000, () => sock.destroy(new Error('timeout')));
    sock.once('error', reject);
    sock.once('connect', () => sock.write(`${line}\n`));
    sock.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.endsWith('\n')) {
        sock.end();
        const answer = data.trim();
        const space = answer.indexOf(' ');
        if (space < 0 || answer.slice(space + 1) !== line) reject(new Error(`unexpected answer ${JSON.stringify(data)}`));
        else resolve(answer.slice(0, space));
      }
    });
  });
}

async function split(n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const p = await echo(`hello ${i}`);
    counts[p] = (counts[p] ?? 0) + 1;
  }
  return counts;
}

type Conditions = { type: string; status: string; reason: string }[];
const conditionText = (c: Conditions | undefined) => (c ?? []).map((x) => `${x.type}=${x.status}/${x.reason}`).join(',');

describe("Istio's tcp-echo Gateway-API sample through the local ingress", () => {
  it('tcp-echo-all-v1.yaml applies (Gateway, TCPRoute v1alpha2) and every connection reaches v1', async () => {
    const results = await applyYaml(sample('tcp-echo-tcp-echo-all-v1.yaml'));
    expect(results.filter((r) => r.kind === 'KubernetesGateway' || r.kind === 'TCPRoute').map((r) => `${r.kind}/${r.name}`)).toEqual(['KubernetesGateway/tcp-echo-gateway', 'TCPRoute/tcp-echo']);
    await until('31400 answers from v1', async () => ((await echo('ready').catch(() => undefined)) === 'one' ? true : undefined), 30_000);
    expect(await split(20)).toEqual({ one: 20 });
    const route = (await (await fetch(`${PILOT}/api/v1/config/tcproutes/demo/tcp-echo`)).json()) as { status?: { parents?: { conditions: Conditions }[] } };
    expect(conditionText(route.status?.parents?.[0]?.conditions)).toBe('Accepted=True/Accepted,ResolvedRefs=True/ResolvedRefs');
    const gw = (await (await fetch(`${PILOT}/api/v1/config/gateways.gateway.networking.k8s.io/demo/tcp-echo-gateway`)).json()) as { status?: { listeners?: { name: string; attachedRoutes: number; supportedKinds: { kind: string }[] }[] } };
    expect(gw.status?.listeners).toMatchObject([{ name: 'tcp-31400', attachedRoutes: 1, supportedKinds: [{ kind: 'TCPRoute' }] }]);
  });

  it(`tcp-echo-20-v2.yaml moves 20% of connections to v2 (measured over ${N} connections)`, async () => {
    await applyYaml(sample('tcp-echo-tcp-echo-20-v2.yaml'));
    await until('v2 answers', async () => ((await echo('ready').catch(() => undefined)) === 'two' ? true : undefined), 30_000);
    const counts = await split(N);
    console.log(`[gateway-api-tcp] tcp-echo 80/20 over ${N} connections: ${JSON.stringify(counts)}`);
    expect((counts['one'] ?? 0) + (counts['two'] ?? 0)).toBe(N);
    // Within 4 standard deviations of 20% (±23 connections at N=200).
    expect(Math.abs((counts['two'] ?? 0) - N * 0.2)).toBeLessThanOrEqual(4 * Math.sqrt(N * 0.2 * 0.8));
  });
});
