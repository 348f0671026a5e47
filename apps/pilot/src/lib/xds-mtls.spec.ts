import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { agentNode, EnvoyAgent, tlsCertificateSecret } from '@aviary/agent';
import type { CertificateAuthority } from '@aviary/ca';
import { KvConfigStore } from '@aviary/config-store';
import type { StoredObject } from '@aviary/mesh-api';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { RawAdsStream, testEnvoy, TestSdsServer } from '@aviary/testing';
import { TypeUrl } from '@aviary/xds-api';
import { Discovery } from './discovery';
import { XdsTlsMaterial } from './xds-tls';
import { answerSigning, memoryCa, TD, workloadCert } from './xds-mtls.test-helper';

// The mTLS xDS port against real peers: citadel's CA code signing pilot's serving certificate
// over aviary.ca.v1.sign (nats-server) and the workloads' certificates (join tokens), grpc-js
// clients doing real TLS handshakes, and pilot's Discovery.
const logger = pino({ level: 'silent' });
const bookinfo: StoredObject[] = parseAllDocuments(readFileSync(new URL('./__fixtures__/bookinfo.yaml', import.meta.url), 'utf8'))
  .map((d) => d.toJS() as StoredObject)
  .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? 'default' } }));

let nats: NatsServer;
let bus: Bus;
let ca: CertificateAuthority;
let discovery: Discovery;
let tls: XdsTlsMaterial;
let port: number;
let registry: Registry;
const streams: RawAdsStream[] = [];

function creds(client: { certPem: string; keyPem: string } | undefined, rootPem: string): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(rootPem), client ? Buffer.from(client.keyPem) : null, client ? Buffer.from(client.certPem) : null);
}

function open(credentials: grpc.ChannelCredentials, delta = false): RawAdsStream {
  const s = new RawAdsStream(port, delta, credentials);
  streams.push(s);
  return s;
}

/** A Gateway whose HTTPS server takes its certificate from Secret gw/ingress-cert (credentialName). */
const ingressGateway: StoredObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'ingress', namespace: 'gw' },
  spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls: { mode: 'SIMPLE', credentialName: 'ingress-cert' } }] },
};
const routerNode = (ns: string) => `router~127.0.0.1~ingress-1.${ns}~${ns}.svc.cluster.local`;

const sidecar = (ns: string) => `sidecar~127.0.0.1~reviews-v1-abc.${ns}~${ns}.svc.cluster.local`;

async function refusedCount(reason: string): Promise<number> {
  const m = await registry.getSingleMetric('aviary_xds_streams_refused_total')!.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'xds-mtls-spec', logger, registry: new Registry() });
  ca = await memoryCa(bus);
  answerSigning(bus, ca);
  const store = await KvConfigStore.open(bus, { bucket: 'xds-mtls-spec' });
  for (const o of [...bookinfo, ingressGateway]) await store.apply(o);
  registry = new Registry();
  discovery = new Discovery({ store, bus, logger, registry, trustDomain: TD, debounce: { quietMs: 0, maxDelayMs: 0 }, status: { flushMs: 20, ackIntervalMs: 0 } });
  await discovery.start();
  tls = new XdsTlsMaterial({ bus, logger, trustDomain: TD, dnsNames: ['aviary-pilot.aviary-system.svc', 'localhost', '127.0.0.1'], ttlSeconds: 3600, signTimeoutMs: 2_000 });
  await tls.start();
  await ca.publishBundle();
  expect(tls.ready).toBe(true);
  port = await discovery.listenTls('127.0.0.1', 0, tls.credentials);
});

afterEach(() => {
  for (const s of streams.splice(0)) s.close();
});

afterAll(async () => {
  await discovery?.stop();
  await tls?.stop();
  await bus?.close();
  await nats?.stop();
});

describe('xDS over mTLS (15012)', () => {
  it('serves a proxy whose certificate identity matches the namespace and service account it claims (SotW and delta)', async () => {
    const a = await workloadCert(ca, 'b', 'bookinfo-reviews');
    const s = open(creds(a, a.rootPem));
    s.send({ node: RawAdsStream.node(sidecar('b'), { SERVICE_ACCOUNT: 'bookinfo-reviews', LABELS: { app: 'reviews', version: 'v1' } }), type_url: TypeUrl.Cluster, resource_names: [] });
    const cds = await s.next();
    expect(JSON.stringify(cds.resources)).toContain('outbound|9080|v1|reviews.default.svc.cluster.local');
    const proxy = discovery.server.proxies().find((p) => p.proxy.id === sidecar('b'))?.proxy;
    expect(proxy).toMatchObject({ namespace: 'b', identity: `spiffe://${TD}/ns/b/sa/bookinfo-reviews` });

    const d = open(creds(a, a.rootPem), true);
    d.send({ node: RawAdsStream.node(sidecar('b'), { SERVICE_ACCOUNT: 'bookinfo-reviews' }), type_url: TypeUrl.Cluster, resource_names_subscribe: ['*'] });
    expect((await d.next()).type_url).toBe(TypeUrl.Cluster);
  });

  it('refuses with PERMISSION_DENIED a proxy with a certificate for ns/a claiming ns/b, and counts it', async () => {
    const a = await workloadCert(ca, 'a', 'bookinfo-reviews');
    const before = await refusedCount('namespace_mismatch');
    const s = open(creds(a, a.rootPem));
    s.send({ node: RawAdsStream.node(sidecar('b'), { SERVICE_ACCOUNT: 'bookinfo-reviews' }), type_url: TypeUrl.Cluster, resource_names: [] });
    const err = await s.closedWith();
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toMatch(/spiffe:\/\/cluster\.local\/ns\/a\/sa\/bookinfo-reviews may not act for namespace "b"/);
    expect(await refusedCount('namespace_mismatch')).toBe(before + 1);
    expect(discovery.server.proxies().some((p) => p.proxy.id === sidecar('b'))).toBe(false);

    // the node id says a, the metadata says b: still b is claimed
    const t = open(creds(a, a.rootPem), true);
    t.send({ node: RawAdsStream.node(sidecar('a'), { NAMESPACE: 'b', SERVICE_ACCOUNT: 'bookinfo-reviews' }), type_url: TypeUrl.Cluster, resource_names_subscribe: ['*'] });
    expect((await t.closedWith()).code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('refuses another service account, and a node that does not state one', async () => {
    const a = await workloadCert(ca, 'a', 'ratings');
    const s = open(creds(a, a.rootPem));
    s.send({ node: RawAdsStream.node(sidecar('a'), { SERVICE_ACCOUNT: 'bookinfo-reviews' }), type_url: TypeUrl.Cluster, resource_names: [] });
    expect(await s.closedWith()).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(/service account "bookinfo-reviews"/) });
    const t = open(creds(a, a.rootPem));
    t.send({ node: RawAdsStream.node(sidecar('a')), type_url: TypeUrl.Cluster, resource_names: [] });
    expect(await t.closedWith()).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(/SERVICE_ACCOUNT/) });
    expect(await refusedCount('service_account_mismatch')).toBeGreaterThanOrEqual(2);
  });

  it('refuses the handshake without a client certificate, or with one from another CA', async () => {
    const root = ca.bundle().roots[0]!;
    const bare = open(creds(undefined, root));
    bare.send({ node: RawAdsStream.node(sidecar('a'), { SERVICE_ACCOUNT: 'x' }), type_url: TypeUrl.Cluster, resource_names: [] });
    expect((await bare.closedWith()).code).toBe(grpc.status.UNAVAILABLE);

    // a CA of the same trust domain that the mesh does not trust
    const other = Issuer.createRoot({ trustDomain: TD });
    const key = generatePrivateKey('ecdsa-p256');
    const forged = other.signWorkload(createCsr(key, {}), `spiffe://${TD}/ns/a/sa/x`, { ttlSeconds: 600 });
    const s = open(creds({ certPem: forged.certPem, keyPem: privateKeyToPem(key) }, root));
    s.send({ node: RawAdsStream.node(sidecar('a'), { SERVICE_ACCOUNT: 'x' }), type_url: TypeUrl.Cluster, resource_names: [] });
    expect((await s.closedWith()).code).toBe(grpc.status.UNAVAILABLE);
    expect(discovery.server.proxies().some((p) => p.proxy.id === sidecar('a'))).toBe(false);
  });

  it('presents a citadel-signed serving certificate for its DNS names, and swaps a renewed one without dropping open streams', async () => {
    const a = await workloadCert(ca, 'b', 'bookinfo-reviews');
    const s = open(creds(a, a.rootPem));
    const node = RawAdsStream.node(sidecar('b'), { SERVICE_ACCOUNT: 'bookinfo-reviews' });
    s.send({ node, type_url: TypeUrl.Cluster, resource_names: [] });
    const first = await s.next();
    s.send({ type_url: TypeUrl.Cluster, resource_names: [], version_info: first.version_info, response_nonce: first.nonce });

    // a certificate from the same CA for other names: new handshakes see it, the open stream stays
    const key = generatePrivateKey('ecdsa-p256');
    const renewed = await ca.signServing(createCsr(key, {}), ['renewed.aviary-system.svc', 'aviary-pilot.aviary-system.svc', 'localhost', '127.0.0.1'], 600);
    tls.provider.setIdentity({ certPem: renewed.chain.slice(0, -1).join('\n'), keyPem: privateKeyToPem(key) });
    const seen: string[] = [];
    const fresh = open(
      grpc.credentials.createSsl(Buffer.from(a.rootPem), Buffer.from(a.keyPem), Buffer.from(a.certPem), {
        checkServerIdentity: (host, cert) => {
          seen.push(new X509Certificate(cert.raw).subjectAltName ?? '');
          return checkServerIdentity(host, cert);
        },
      }),
    );
    fresh.send({ node, type_url: TypeUrl.Cluster, resource_names: [] });
    expect((await fresh.next()).type_url).toBe(TypeUrl.Cluster);
    expect(seen.join()).toContain('DNS:renewed.aviary-system.svc');
    // the first stream is still served: a new subscription on it is answered
    s.send({ type_url: TypeUrl.Listener, resource_names: [] });
    expect((await s.next()).type_url).toBe(TypeUrl.Listener);
    expect(s.error).toBeUndefined();
  });

  it('serves a credentialName Secret over ADS to an authenticated router of its namespace only, never on the plaintext port', async () => {
    discovery.setCredentials(new Map([['gw/ingress-cert', { certChain: 'CHAIN-PEM', privateKey: 'KEY-PEM', version: '1' }]]));
    // Asks for the Secret, then for clusters: the first answer is the Secret when it is served,
    // else the clusters (a stream is answered in order; an unresolvable name gets no answer).
    const firstAnswer = async (stream: RawAdsStream, node: string) => {
      stream.send({ node: RawAdsStream.node(node, { SERVICE_ACCOUNT: 'ingress', LABELS: { istio: 'ingressgateway' } }), type_url: TypeUrl.Secret, resource_names: ['kubernetes://ingress-cert'] });
      stream.send({ type_url: TypeUrl.Cluster, resource_names: [] });
      return stream.next();
    };
    const gw = await workloadCert(ca, 'gw', 'ingress');
    const served = await firstAnswer(open(creds(gw, gw.rootPem)), routerNode('gw'));
    expect(served.type_url).toBe(TypeUrl.Secret);
    expect(JSON.stringify(served.resources)).toContain('CHAIN-PEM');
    // Another namespace's authenticated router does not get it.
    const other = await workloadCert(ca, 'other', 'ingress');
    expect((await firstAnswer(open(creds(other, other.rootPem)), routerNode('other'))).type_url).toBe(TypeUrl.Cluster);
    // The plaintext port authenticates nobody: a node claiming gw gets no Secret.
    const plainPort = await discovery.listen('127.0.0.1', 0);
    const plain = new RawAdsStream(plainPort, false);
    streams.push(plain);
    expect((await firstAnswer(plain, routerNode('gw'))).type_url).toBe(TypeUrl.Cluster);
  });

  it('follows the trust bundle: after a root rotation, a certificate from the new root is accepted', async () => {
    const before = ca.bundle().roots;
    const bundle = await ca.rotate();
    const b = await workloadCert(ca, 'b', 'bookinfo-reviews');
    expect(bundle.roots.length).toBe(2);
    expect(before).not.toContain(b.rootPem);
    // the client trusts the whole bundle: pilot's serving certificate still chains to the old root
    const all = bundle.roots.join('\n');
    let ok = false;
    const deadline = Date.now() + 5_000;
    while (!ok && Date.now() < deadline) {
      const s = open(creds(b, all));
      s.send({ node: RawAdsStream.node(sidecar('b'), { SERVICE_ACCOUNT: 'bookinfo-reviews' }), type_url: TypeUrl.Cluster, resource_names: [] });
      ok = await s.next(1_000).then(
        () => true,
        () => false,
      );
    }
    expect(ok).toBe(true);
  });
});

describe.each(['GRPC', 'DELTA_GRPC'] as const)('upstream Envoy on the mTLS port, ADS api_type %s', (apiType) => {
  const envoy = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
  if (envoy.skip !== undefined) {
    it.skip(envoy.skip, () => undefined);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'aviary-xds-mtls-envoy-'));
  let proc: ChildProcess | undefined;
  let sds: TestSdsServer | undefined;
  afterAll(async () => {
    proc?.kill('SIGTERM');
    await sds?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with a file-based client certificate, verifies pilot\'s SAN and ACKs everything with no NACK', async () => {
    const id = `sidecar~127.0.0.1~reviews-v1-envoy${apiType.length}.default~default.svc.cluster.local`;
    const w = await workloadCert(ca, 'default', 'bookinfo-reviews');
    writeFileSync(join(dir, 'cert.pem'), w.certPem);
    writeFileSync(join(dir, 'key.pem'), w.keyPem);
    writeFileSync(join(dir, 'roots.pem'), ca.bundle().roots.join('\n'));
    sds = await TestSdsServer.start('spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    const http2 = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } };
    const cluster = (name: string, address: unknown, extra: object = {}) => ({ name, type: 'STATIC', connect_timeout: '1s', typed_extension_protocol_options: http2, load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] }, ...extra });
    const xdsTls = {
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
          sni: 'aviary-pilot.aviary-system.svc',
          common_tls_context: {
            tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
            alpn_protocols: ['h2'],
            tls_certificates: [{ certificate_chain: { filename: join(dir, 'cert.pem') }, private_key: { filename: join(dir, 'key.pem') } }],
            validation_context: { trusted_ca: { filename: join(dir, 'roots.pem') }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'aviary-pilot.aviary-system.svc' } }] },
          },
        },
      },
    };
    const bootstrap = {
      node: { id, cluster: 'reviews.default', metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'bookinfo-reviews', LABELS: { app: 'reviews', version: 'v1' } } },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      overload_manager: {
        resource_monitors: [
          {
            name: 'envoy.resource_monitors.global_downstream_max_connections',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig', max_active_downstream_connections: 2147483647 },
          },
        ],
      },
      dynamic_resources: {
        ads_config: { api_type: apiType, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
        lds_config: { ads: {}, resource_api_version: 'V3' },
        cds_config: { ads: {}, resource_api_version: 'V3' },
      },
      static_resources: {
        clusters: [
          cluster('xds-grpc', { socket_address: { address: '127.0.0.1', port_value: port } }, xdsTls),
          cluster('sds-grpc', { pipe: { path: sds.socket } }),
          cluster('aviary-als', { pipe: { path: join(dir, 'als.sock') } }),
        ],
      },
    };
    writeFileSync(join(dir, 'envoy.json'), JSON.stringify(bootstrap));
    proc = spawn(envoy.path, ['-c', join(dir, 'envoy.json'), '--use-dynamic-base-id', '--concurrency', '1', '--log-level', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    const types = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];
    const deadline = Date.now() + 30_000;
    let status = discovery.server.proxies().find((p) => p.proxy.id === id);
    while (!types.every((t) => status?.types.some((x) => x.typeUrl === t && x.sentVersion !== undefined && x.ackedVersion === x.sentVersion))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`no ACK of ${types.join(', ')} from Envoy over mTLS; Envoy log:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
      status = discovery.server.proxies().find((p) => p.proxy.id === id);
    }
    expect(status!.protocol).toBe(apiType === 'GRPC' ? 'sotw' : 'delta');
    expect(status!.types.filter((t) => t.lastNack !== undefined)).toEqual([]);
  });
});

describe('the mesh agent (@aviary/agent) on the mTLS port', () => {
  const envoy = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
  if (envoy.skip !== undefined) {
    it.skip(envoy.skip, () => undefined);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'aviary-xds-mtls-agent-'));
  const agents: EnvoyAgent[] = [];
  afterAll(async () => {
    for (const a of agents) await a.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An ingress-gateway agent in ns `b` (labels that select no Gateway: an empty LDS), its secrets from `cert`. */
  async function startAgent(name: string, cert: { certPem: string; keyPem: string }, subjectAltName: string): Promise<EnvoyAgent> {
    const agent = new EnvoyAgent({
      workDir: join(dir, name),
      envoyBinary: envoy.path!,
      bootstrap: {
        node: agentNode({ mode: 'router', platform: 'local', name, namespace: 'b', serviceAccount: 'gw', labels: 'istio=none', podIp: '127.0.0.1', trustDomain: TD }),
        pilot: { host: '127.0.0.1', port },
        pilotTls: { subjectAltName },
        xdsProtocol: 'delta',
      },
      envoyAdminPort: 0,
      concurrency: 1,
      envoyLogLevel: 'warning',
      drainMs: 0,
      logger: logger.child({ agent: name }),
      readinessPollMs: 100,
    });
    agents.push(agent);
    agent.sds.set(tlsCertificateSecret('default', cert.certPem, cert.keyPem));
    agent.setTrustBundle(ca.bundle().roots);
    await agent.start();
    return agent;
  }

  it('reaches pilot with its SDS-served workload certificate (default/ROOTCA from sds-grpc), verifying pilot\'s SAN', async () => {
    const agent = await startAgent('gw-ok', await workloadCert(ca, 'b', 'gw'), 'aviary-pilot.aviary-system.svc');
    const deadline = Date.now() + 30_000;
    while (!agent.ready()) {
      if (Date.now() > deadline) throw new Error(`the agent did not become ready over mTLS: ${JSON.stringify(agent.status())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const p = discovery.server.proxies().find((x) => x.proxy.id.includes('~gw-ok.b~'));
    expect(p?.protocol).toBe('delta');
    expect(p?.proxy).toMatchObject({ namespace: 'b', identity: `spiffe://${TD}/ns/b/sa/gw` });
    expect(agent.status().pilotConnected).toBe(true);
  });

  it('does not connect when pilot does not present the expected SAN', async () => {
    const agent = await startAgent('gw-san', await workloadCert(ca, 'b', 'gw'), 'someone-else.aviary-system.svc');
    await new Promise((r) => setTimeout(r, 2_000));
    expect(agent.status().pilotConnected).toBe(false);
    expect(discovery.server.proxies().some((x) => x.proxy.id.includes('~gw-san.b~'))).toBe(false);
  });
});
