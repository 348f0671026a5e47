import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { echoClient, tally, echo, startEchoServer, type EchoClient, type EchoServer } from '../support/echo-grpc';
import { AppProcess } from '../support/processes';
import { eventually } from '../support/eventually';

// The real proxyless gRPC xDS client (@grpc/grpc-js-xds) routed by pilot, config applied
// through pilot's REST API (issue 5, item 6).
const HOST = 'echo.default.svc.cluster.local';
const TARGET = `xds:///${HOST}:9080`;
const token = 'e2e-token';
let nats: NatsServer;
let v1: EchoServer;
let v2: EchoServer;
let pilot: AppProcess;
let adminPort: number;
let xdsPort: number;
let client: EchoClient;
let nc: NatsConnection;
const statusEvents: Array<{ event: string; typeUrl?: string }> = [];

const registry = (v2Port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: grpc, protocol: GRPC}]
  resolution: STATIC
  workloadSelector: {labels: {app: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1}
spec: {address: 127.0.0.1, ports: {grpc: ${v1.port}}, labels: {app: echo, version: v1}, serviceAccount: echo, locality: local/z1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v2}
spec: {address: 127.0.0.1, ports: {grpc: ${v2Port}}, labels: {app: echo, version: v2}, serviceAccount: echo, locality: local/z1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: ${HOST}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

const routes = (w1: number, w2: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [${HOST}]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: ${HOST}, subset: v2}}]
  - match: [{headers: {x-fault: {exact: abort}}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: ${HOST}, subset: v1}}]
  - route:
    - {destination: {host: ${HOST}, subset: v1}, weight: ${w1}}
    - {destination: {host: ${HOST}, subset: v2}, weight: ${w2}}
`;

async function apply(yaml: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/api/v1/config`, { method: 'POST', body: yaml, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' } });
  expect(res.status, await res.clone().text()).toBe(200);
}

async function startPilot(): Promise<AppProcess> {
  return AppProcess.start('pilot', {
    AVIARY_NATS_URL: nats.url,
    AVIARY_ADMIN_PORT: String(adminPort),
    AVIARY_XDS_PORT: String(xdsPort),
    AVIARY_ADMIN_TOKEN: token,
    AVIARY_PUSH_DEBOUNCE_MS: '50',
    AVIARY_LOG_LEVEL: 'info',
  });
}

/** Polls small samples until `accept` holds (the client follows a change), at most `ms`. */
async function follows(accept: (c: Record<string, number>) => boolean, ms: number, headers: Record<string, string> = {}): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (accept(await tally(client, 100, headers))) return Date.now() - start;
  }
  throw new Error(`client did not follow within ${ms} ms`);
}

beforeAll(async () => {
  nats = await NatsServer.start();
  v1 = await startEchoServer('v1');
  v2 = await startEchoServer('v2');
  adminPort = await freePort();
  xdsPort = await freePort();
  nc = await connect({ servers: nats.url });
  nc.subscribe('aviary.xds.v1.status', { callback: (_e, m) => void statusEvents.push((m.json() as { data: { event: string; typeUrl?: string } }).data) });
  pilot = await startPilot();
  await apply(registry(v2.port));
  await apply(routes(80, 20));
  process.env['GRPC_XDS_BOOTSTRAP_CONFIG'] = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'sidecar~127.0.0.1~client.default~default.svc.cluster.local', cluster: 'e2e', locality: { region: 'local', zone: 'z1' }, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', SERVICE_ACCOUNT: 'client' } },
  });
  const xds = await import('@grpc/grpc-js-xds');
  xds.register();
  client = echoClient(TARGET);
});

afterAll(async () => {
  client?.close();
  await pilot?.stop();
  await nc?.close();
  await v1?.stop();
  await v2?.stop();
  await nats?.stop();
});

describe('pilot drives the real gRPC xDS client', () => {
  it('splits 80/20 over 1,000 calls within ±5 %', async () => {
    const counts = await tally(client, 1_000);
    expect((counts['v1'] ?? 0) + (counts['v2'] ?? 0)).toBe(1_000);
    expect(Math.abs((counts['v2'] ?? 0) - 200)).toBeLessThanOrEqual(50);
  });

  it('shows the proxy with every type ACKed, and publishes xDS status on NATS', async () => {
    const body = (await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/proxies`)).json()) as { proxies: Array<{ id: string; kind: string; types: Array<{ type: string; synced: boolean }> }> };
    const proxy = body.proxies.find((p) => p.kind === 'proxyless');
    expect(proxy?.kind).toBe('proxyless');
    expect(proxy?.types.map((t) => t.type).sort()).toEqual(['cds', 'eds', 'lds', 'rds']);
    expect(proxy?.types.every((t) => t.synced)).toBe(true);
    expect(statusEvents.some((e) => e.event === 'connected')).toBe(true);
    // ACK events are coalesced and flushed on a timer (StatusPublisher): wait for them.
    await eventually('4 ack events on NATS', async () => (statusEvents.filter((e) => e.event === 'ack').length >= 4 ? true : undefined), 15_000);
    const dump = (await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/proxies/${encodeURIComponent(proxy!.id)}/config_dump`)).json()) as { configs: Array<{ type: string }> };
    expect(dump.configs.map((c) => c.type).sort()).toEqual(['cds', 'eds', 'lds', 'rds']);
    const syncz = (await (await fetch(`http://127.0.0.1:${adminPort}/debug/syncz`)).json()) as Array<{ status: string }>;
    expect(syncz.every((s) => s.status === 'SYNCED')).toBe(true);
  });

  it('follows a weight change made through the REST API within 2 s', async () => {
    await apply(routes(20, 80));
    const took = await follows((c) => (c['v2'] ?? 0) >= 60, 2_000);
    expect(took).toBeLessThan(2_000);
    const counts = await tally(client, 1_000);
    expect(Math.abs((counts['v2'] ?? 0) - 800)).toBeLessThanOrEqual(50);
  });

  it('sends one user to v2 by header match', async () => {
    expect(await tally(client, 200, { 'end-user': 'jason' })).toEqual({ v2: 200 });
  });

  it('returns the configured fault abort', async () => {
    const r = await echo(client, { 'x-fault': 'abort' });
    expect(r.error?.code).toBe(14); // UNAVAILABLE, gRPC's mapping of HTTP 503
  });

  it('stops sending calls to a removed WorkloadEntry', async () => {
    await apply(routes(50, 50).replace(/  - route:\n    - \{destination: \{host: [^}]+, subset: v1\}, weight: 50\}\n    - \{destination: \{host: [^}]+, subset: v2\}, weight: 50\}\n/, `  - route: [{destination: {host: ${HOST}}}]\n`));
    await follows((c) => (c['v1'] ?? 0) > 20 && (c['v2'] ?? 0) > 20, 3_000);
    const del = await fetch(`http://127.0.0.1:${adminPort}/api/v1/config/workloadentries/default/echo-v2`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(del.status).toBe(200);
    await follows((c) => c['v1'] === 100, 3_000);
    v2.calls = 0;
    expect(await tally(client, 300)).toEqual({ v1: 300 });
    expect(v2.calls).toBe(0);
  });

  it('keeps working while pilot restarts, then follows new config', async () => {
    expect(await pilot.stop()).toBe(0);
    expect(await tally(client, 100)).toEqual({ v1: 100 });
    pilot = await startPilot();
    await apply(registry(v2.port));
    await follows((c) => (c['v2'] ?? 0) > 20, 5_000);
  });
});
