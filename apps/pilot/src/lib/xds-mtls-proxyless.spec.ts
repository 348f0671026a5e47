import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { CertificateAuthority } from '@aviary/ca';
import { KvConfigStore } from '@aviary/config-store';
import type { StoredObject } from '@aviary/mesh-api';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { proxylessXdsBootstrap, writeXdsClientFiles } from '@aviary/serving-tls';
import { Discovery } from './discovery';
import { answerSigning, memoryCa, TD, workloadCert } from './xds-mtls.test-helper';
import { XdsTlsMaterial } from './xds-tls';

// A proxyless gRPC client on pilot's mTLS port with its certificate from the CA: gRPC C-core's
// xDS client (Python grpcio, tools/setup/ensure-grpcio.mjs) with bootstrap `channel_creds` type
// `tls` and a file_watcher-style certificate provider reading the files writeXdsClientFiles
// wrote. @grpc/grpc-js-xds 1.14 cannot be this client: its bootstrap accepts only insecure and
// google_default channel credentials.
const python = join(homedir(), '.cache', 'aviary-grpcio', '1.85.1', 'bin', 'python');
const script = fileURLToPath(new URL('../../../../e2e/support/proxyless_echo.py', import.meta.url));
const logger = pino({ level: 'silent' });
const HOST = 'echo.default.svc.cluster.local';
const docs = (port: number): StoredObject[] =>
  parseAllDocuments(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: grpc, protocol: GRPC}]
  resolution: STATIC
  workloadSelector: {labels: {app: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1, namespace: default}
spec: {address: 127.0.0.1, ports: {grpc: ${port}}, labels: {app: echo, version: v1}, serviceAccount: echo, locality: local/z1}
`).map((d) => d.toJS() as StoredObject);

/** An Echo backend (aviary.test.echo.v1, as the Python client encodes it) that answers `v1` and counts calls. */
async function startEcho(): Promise<{ port: number; calls: number; stop: () => void }> {
  const server = new grpc.Server();
  const state = { port: 0, calls: 0, stop: () => server.forceShutdown() };
  const bytes = (b: Buffer): Buffer => b;
  const reply = Buffer.from([0x0a, 2, ...Buffer.from('v1')]); // EchoReply{server: "v1"}
  server.addService(
    { Echo: { path: '/aviary.test.echo.v1.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes } },
    {
      Echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        state.calls++;
        cb(null, reply);
      },
    },
  );
  state.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return state;
}

function runClient(bootstrap: string, calls: number, timeoutSeconds = 10): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(python, [script, `${HOST}:9080`, String(calls), String(timeoutSeconds)], { env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('proxyless gRPC client (gRPC C-core xDS, bootstrap channel_creds tls) on the mTLS port', () => {
  if (!existsSync(python)) {
    if (process.env['CI']) it('needs grpcio: node tools/setup/ensure-grpcio.mjs', () => expect.fail(`${python} is missing`));
    else it.skip(`needs grpcio (node tools/setup/ensure-grpcio.mjs): ${python} is missing`, () => undefined);
    return;
  }
  let nats: NatsServer;
  let bus: Bus;
  let ca: CertificateAuthority;
  let discovery: Discovery;
  let tls: XdsTlsMaterial;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let port: number;
  const dir = mkdtempSync(join(tmpdir(), 'aviary-proxyless-mtls-'));

  beforeAll(async () => {
    nats = await NatsServer.start();
    bus = await Bus.connect({ url: nats.url, source: 'proxyless-mtls-spec', logger, registry: new Registry() });
    ca = await memoryCa(bus);
    answerSigning(bus, ca);
    echo = await startEcho();
    const store = await KvConfigStore.open(bus, { bucket: 'proxyless-mtls-spec' });
    for (const o of docs(echo.port)) await store.apply(o);
    discovery = new Discovery({ store, bus, logger, registry: new Registry(), trustDomain: TD, debounce: { quietMs: 0, maxDelayMs: 0 } });
    await discovery.start();
    tls = new XdsTlsMaterial({ bus, logger, trustDomain: TD, dnsNames: ['aviary-pilot.aviary-system.svc', 'localhost', '127.0.0.1'], ttlSeconds: 3600, signTimeoutMs: 2_000 });
    await tls.start();
    await ca.publishBundle();
    port = await discovery.listenTls('127.0.0.1', 0, tls.credentials);
  });

  afterAll(async () => {
    await discovery?.stop();
    await tls?.stop();
    echo?.stop();
    await bus?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function bootstrapFor(name: string, ns: string, sa: string, claimedNs: string): Promise<string> {
    const w = await workloadCert(ca, ns, sa);
    const files = await writeXdsClientFiles(join(dir, name), { certChainPem: w.certPem, keyPem: w.keyPem, rootsPem: ca.bundle().roots });
    const bootstrap = proxylessXdsBootstrap({
      serverUri: `localhost:${port}`,
      files,
      node: { id: `sidecar~127.0.0.1~${name}.${claimedNs}~${claimedNs}.svc.cluster.local`, metadata: { NAMESPACE: claimedNs, SERVICE_ACCOUNT: sa } },
    });
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(bootstrap));
    return path;
  }

  it('connects with its CA certificate, gets LDS/RDS/CDS/EDS and routes calls to the backend', async () => {
    const r = await runClient(await bootstrapFor('client', 'default', 'client', 'default'), 20);
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(r.out.trim().split('\n').at(-1)!)).toEqual({ servers: { v1: 20 } });
    expect(echo.calls).toBe(20);
  });

  it('is refused when its certificate is for another namespace than its node claims', async () => {
    const refusedBefore = (await discovery.server.metrics.refused.get()).values.find((v) => v.labels.reason === 'namespace_mismatch')?.value ?? 0;
    const r = await runClient(await bootstrapFor('intruder', 'other', 'client', 'default'), 1, 3);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/not ready|UNAVAILABLE|PERMISSION_DENIED/);
    const refused = (await discovery.server.metrics.refused.get()).values.find((v) => v.labels.reason === 'namespace_mismatch')?.value ?? 0;
    expect(refused).toBeGreaterThan(refusedBefore);
  });
});
