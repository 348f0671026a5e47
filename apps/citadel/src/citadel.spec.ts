import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials as grpcCredentials, loadPackageDefinition, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJoinToken } from '@aviary/ca';
import { citadelConfig, parseConfig } from '@aviary/config';
import { Bus, Subjects, type EventData } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { createCsr, generatePrivateKey, privateKeyFromPem } from '@aviary/pki';
import { runComponent, type RunningComponent } from '@aviary/runtime';
import { BUNDLE_BUCKET, BUNDLE_KEY } from './lib/bundle-sink';
import { buildCitadel, type Citadel, type CitadelConfig } from './lib/component';
import { FileCaStateStore } from './lib/file-store';
import { loadCaPackage } from '@aviary/ca-api';
import { OpenSsl, P256, RSA2048 } from '@aviary/testing';

const ADMIN = 'admin-secret';
type CaClient = Client & { CreateCertificate: (req: object, md: Metadata, cb: (err: ServiceError | null, res?: { cert_chain: string[] }) => void) => void };

describe('citadel app (real nats-server, gRPC, REST, openssl)', () => {
  const ssl = new OpenSsl();
  let nats: NatsServer;
  let dataDir: string;
  let running: RunningComponent;
  let citadel: Citadel;
  let bus: Bus;
  const issuedEvents: EventData<typeof Subjects.caIssued>[] = [];
  const Ctor = (loadPackageDefinition(loadCaPackage()) as unknown as { istio: { v1: { auth: { IstioCertificateService: new (addr: string, creds: unknown, opts?: object) => CaClient } } } }).istio.v1.auth
    .IstioCertificateService;

  async function start(): Promise<void> {
    const result = parseConfig(citadelConfig, ['--admin-port', '0', '--ca-port', '0', '--ca-tls-port', '0', '--log-level', 'silent', '--data-dir', dataDir, '--nats-url', nats.url, '--admin-token', ADMIN], {});
    if (result.kind !== 'config') throw new Error('help');
    running = await runComponent({
      spec: citadelConfig,
      config: result.config as CitadelConfig,
      description: 'test',
      build: async (ctx) => (citadel = await buildCitadel(ctx)),
    });
  }

  const admin = (path: string, init: RequestInit = {}) => fetch(`${running.adminUrl}${path}`, init);
  const post = (path: string, body: unknown, token?: string) =>
    admin(path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) });

  async function mint(namespace: string, serviceAccount: string): Promise<string> {
    const res = await post('/api/v1/tokens', { namespace, serviceAccount, ttl: 600 }, ADMIN);
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  }

  function grpcCall(client: CaClient, req: object, token?: string): Promise<{ chain: string[] } | { code: number; aviary: string }> {
    const md = new Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    return new Promise((resolve) =>
      client.CreateCertificate(req, md, (err, res) =>
        resolve(err === null ? { chain: res!.cert_chain } : { code: err.code, aviary: String(err.metadata?.get('aviary-error-code')[0] ?? (err.code === status.UNAVAILABLE ? err.details : '')) }),
      ),
    );
  }

  function verify(chain: readonly string[], bundle: string): string {
    ssl.write('v-leaf.pem', chain[0]!);
    ssl.write('v-inter.pem', chain.slice(1, -1).join('') || chain.at(-1)!);
    ssl.write('v-bundle.pem', bundle);
    return ssl.run('verify', '-CAfile', 'v-bundle.pem', '-untrusted', 'v-inter.pem', 'v-leaf.pem').trim();
  }

  beforeAll(async () => {
    nats = await NatsServer.start();
    dataDir = await mkdtemp(join(tmpdir(), 'aviary-citadel-data-'));
    await start();
    bus = await Bus.connect({ url: nats.url, source: 'citadel-test', logger: pino({ level: 'silent' }), registry: new Registry() });
    await bus.consumeDurable(Subjects.caIssued, 'citadel-test', (e) => {
      issuedEvents.push(e.data);
    });
  });

  afterAll(async () => {
    await bus?.close();
    await running?.shutdown('test done');
    await nats?.stop();
    await rm(dataDir, { recursive: true, force: true });
    ssl.cleanup();
  });

  it('issues over plaintext gRPC for the join-token identity; openssl verifies; the audit event arrives', async () => {
    const token = await mint('shop', 'checkout');
    const client = new Ctor(`127.0.0.1:${citadel.ports().grpc}`, grpcCredentials.createInsecure());
    const res = await grpcCall(client, { csr: ssl.csr('g1', P256), validity_duration: 3600, metadata: { fields: { WorkloadName: { stringValue: 'checkout-1' } } } }, token);
    client.close();
    if (!('chain' in res)) throw new Error(`gRPC failed: ${JSON.stringify(res)}`);
    expect(res.chain).toHaveLength(2);
    const bundle = ((await (await admin('/api/v1/bundle')).json()) as { roots: string[] }).roots.join('');
    expect(verify(res.chain, bundle)).toBe('v-leaf.pem: OK');
    expect(ssl.run('x509', '-in', 'v-leaf.pem', '-noout', '-ext', 'subjectAltName')).toContain('URI:spiffe://cluster.local/ns/shop/sa/checkout');
    const serial = ssl.run('x509', '-in', 'v-leaf.pem', '-noout', '-serial').trim().slice('serial='.length).toLowerCase();
    await expect.poll(() => issuedEvents.find((e) => e.serial === serial)).toMatchObject({ identity: 'spiffe://cluster.local/ns/shop/sa/checkout', clamped: false, kind: 'workload' });
    const listed = (await (await admin('/api/v1/certificates')).json()) as { items: { serial: string; identity: string }[] };
    expect(listed.items[0]).toMatchObject({ serial, identity: 'spiffe://cluster.local/ns/shop/sa/checkout' });
  });

  it('issues over REST with the same semantics, clamping a long lifetime', async () => {
    const token = await mint('shop', 'cart');
    const res = await post('/api/v1/certificates', { csr: ssl.csr('r1', RSA2048), validityDuration: 10 * 365 * 86_400 }, token);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { certChain: string[]; clamped: boolean; identity: string; notAfter: string };
    expect(body).toMatchObject({ clamped: true, identity: 'spiffe://cluster.local/ns/shop/sa/cart' });
    expect(Date.parse(body.notAfter) - Date.now()).toBeLessThanOrEqual(7 * 86_400_000);
    expect(verify(body.certChain, citadel.service.ca.bundle().roots.join(''))).toBe('v-leaf.pem: OK');
  });

  it('the TLS port serves a cert citadel signed for itself, takes tokens and renews by client certificate', async () => {
    const root = Buffer.from(citadel.service.ca.bundle().roots.join(''));
    const tls = new Ctor(`127.0.0.1:${citadel.ports().grpcTls}`, grpcCredentials.createSsl(root));
    const token = await mint('shop', 'payments');
    const first = await grpcCall(tls, { csr: ssl.csr('t1', P256) }, token);
    tls.close();
    if (!('chain' in first)) throw new Error(`gRPC TLS failed: ${JSON.stringify(first)}`);
    // Renewal: no token, the still-valid certificate over mTLS proves the identity.
    const mtls = new Ctor(`127.0.0.1:${citadel.ports().grpcTls}`, grpcCredentials.createSsl(root, Buffer.from(ssl.read('t1.key')), Buffer.from(first.chain[0]!)));
    const renewed = await grpcCall(mtls, { csr: ssl.csr('t2', P256) });
    mtls.close();
    if (!('chain' in renewed)) throw new Error(`renewal failed: ${JSON.stringify(renewed)}`);
    ssl.write('renewed.pem', renewed.chain[0]!);
    expect(ssl.run('x509', '-in', 'renewed.pem', '-noout', '-ext', 'subjectAltName')).toContain('spiffe://cluster.local/ns/shop/sa/payments');
    // A client certificate from a foreign CA authenticates nothing.
    ssl.run('req', '-x509', ...P256, '-nodes', '-keyout', 'foreign.key', '-out', 'foreign.pem', '-days', '1', '-subj', '/CN=foreign', '-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/shop/sa/payments');
    const foreign = new Ctor(`127.0.0.1:${citadel.ports().grpcTls}`, grpcCredentials.createSsl(root, Buffer.from(ssl.read('foreign.key')), Buffer.from(ssl.read('foreign.pem'))));
    const refused = await grpcCall(foreign, { csr: ssl.csr('t3', P256) });
    foreign.close();
    expect(refused).toMatchObject({ code: status.UNAUTHENTICATED, aviary: 'TOKEN_MISSING' });
  });

  it('bad input gets a clear code and issues nothing', async () => {
    const token = await mint('shop', 'bad');
    const before = citadel.service.ca.recent().length;
    const client = new Ctor(`127.0.0.1:${citadel.ports().grpc}`, grpcCredentials.createInsecure());
    const csr = ssl.csr('b1', P256);
    const der = Buffer.from(csr.split('\n').filter((l) => !l.startsWith('-----')).join(''), 'base64');
    const truncated = `-----BEGIN CERTIFICATE REQUEST-----\n${der.subarray(0, 60).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const tampered = Buffer.from(der);
    tampered[tampered.length - 3]! ^= 1;
    const tamperedPem = `-----BEGIN CERTIFICATE REQUEST-----\n${tampered.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    ssl.run('genpkey', '-algorithm', 'ed25519', '-out', 'ed.key');
    ssl.run('req', '-new', '-key', 'ed.key', '-subj', '/CN=ed', '-out', 'ed.csr');
    const state = JSON.parse(readFileSync((await new FileCaStateStore(dataDir).currentFile())!, 'utf8')) as { tokenKeyPem: string };
    const expired = mintJoinToken(privateKeyFromPem(state.tokenKeyPem), { namespace: 'shop', serviceAccount: 'bad', ttlSeconds: 60, now: new Date(Date.now() - 3600_000) }).token;
    const forged = mintJoinToken(generatePrivateKey(), { namespace: 'shop', serviceAccount: 'bad', ttlSeconds: 60 }).token;
    const cases: [object, string | undefined, number, string][] = [
      [{ csr: 'garbage' }, token, status.INVALID_ARGUMENT, 'CSR_MALFORMED'],
      [{ csr: truncated }, token, status.INVALID_ARGUMENT, 'CSR_MALFORMED'],
      [{ csr: tamperedPem }, token, status.INVALID_ARGUMENT, 'CSR_SIGNATURE_INVALID'],
      [{ csr: ssl.read('ed.csr') }, token, status.INVALID_ARGUMENT, 'KEY_TYPE_UNSUPPORTED'],
      [{ csr }, undefined, status.UNAUTHENTICATED, 'TOKEN_MISSING'],
      [{ csr }, expired, status.UNAUTHENTICATED, 'TOKEN_EXPIRED'],
      [{ csr }, forged, status.UNAUTHENTICATED, 'TOKEN_SIGNATURE_INVALID'],
    ];
    for (const [req, tok, code, aviary] of cases) expect(await grpcCall(client, req, tok)).toEqual({ code, aviary });
    expect(await grpcCall(client, { csr: 'x'.repeat(100_000) }, token)).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    client.close();
    const rest = async (body: unknown, tok?: string) => {
      const res = await post('/api/v1/certificates', body, tok);
      return [res.status, ((await res.json()) as { code: string }).code];
    };
    expect(await rest({ csr: 'garbage' }, token)).toEqual([400, 'CSR_MALFORMED']);
    expect(await rest({ csr: ssl.read('ed.csr') }, token)).toEqual([400, 'KEY_TYPE_UNSUPPORTED']);
    expect(await rest({ csr }, forged)).toEqual([401, 'TOKEN_SIGNATURE_INVALID']);
    expect(await rest({ csr })).toEqual([401, 'TOKEN_MISSING']);
    expect(await rest({ csr: 'x'.repeat(200_000) }, token)).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect((await post('/api/v1/tokens', { namespace: 'a', serviceAccount: 'b' })).status).toBe(401);
    expect((await post('/api/v1/tokens', { namespace: 'a', serviceAccount: 'b' }, token)).status).toBe(401);
    expect(citadel.service.ca.recent().length).toBe(before);
    const metrics = await (await admin('/metrics')).text();
    expect(metrics).toMatch(/aviary_ca_failures_total\{reason="csr_malformed",app="citadel"\} [3-9]/);
    expect(metrics).toMatch(/aviary_ca_failures_total\{reason="unauthenticated",app="citadel"\} [5-9]/);
    expect(metrics).toMatch(/aviary_ca_certificates_issued_total\{kind="workload",app="citadel"\} [1-9]/);
    expect(metrics).toContain('aviary_ca_sign_duration_seconds_bucket');
    expect(metrics).toMatch(/aviary_ca_root_expiry_seconds\{app="citadel"\} 3\d{8}/);
    expect(metrics).not.toContain('PRIVATE KEY');
  });

  it('signs control-plane serving certificates over aviary.ca.v1.sign', async () => {
    const key = generatePrivateKey();
    const reply = await bus.request(Subjects.caSign, { csr: createCsr(key), dnsNames: ['pilot.aviary-system.svc', '127.0.0.1'], ttlSeconds: 3600 }, 5000);
    if (!reply.ok) throw new Error(reply.message);
    ssl.write('pilot.pem', reply.certChain[0]!);
    expect(ssl.run('x509', '-in', 'pilot.pem', '-noout', '-ext', 'subjectAltName')).toContain('DNS:pilot.aviary-system.svc, IP Address:127.0.0.1');
    const bad = await bus.request(Subjects.caSign, { csr: 'garbage', dnsNames: ['x'], ttlSeconds: 3600 }, 5000);
    expect(bad).toMatchObject({ ok: false, code: 'CSR_MALFORMED' });
  });

  it('keeps the bundle in JetStream KV; rotation keeps old and new leaves verifying; restart keeps the roots', async () => {
    const kv = await new Kvm(bus.nc).open(BUNDLE_BUCKET);
    const read = async () => JSON.parse((await kv.get(BUNDLE_KEY))!.string()) as { version: number; roots: string[] };
    const before = await read();
    expect(before.roots).toEqual(citadel.service.ca.bundle().roots);
    const token = await mint('shop', 'rotating');
    const rest = async (name: string) => ((await (await post('/api/v1/certificates', { csr: ssl.csr(name, P256) }, token)).json()) as { certChain: string[] }).certChain;
    const oldLeaf = await rest('rot1');
    expect((await post('/api/v1/rotate', {})).status).toBe(401);
    const rotated = await post('/api/v1/rotate', {}, ADMIN);
    expect(rotated.status).toBe(200);
    const bundle = (await rotated.json()) as { version: number; roots: string[] };
    expect(bundle.roots).toHaveLength(2);
    const stored = await read();
    expect(stored.version).toBe(bundle.version);
    expect(stored.roots).toEqual(bundle.roots);
    const newLeaf = await rest('rot2');
    expect(newLeaf.at(-1)).not.toBe(oldLeaf.at(-1));
    expect(verify(oldLeaf, stored.roots.join(''))).toBe('v-leaf.pem: OK');
    expect(verify(newLeaf, stored.roots.join(''))).toBe('v-leaf.pem: OK');

    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync((await new FileCaStateStore(dataDir).currentFile())!).mode & 0o777).toBe(0o600);
    await running.shutdown('restart');
    await start();
    expect(citadel.service.ca.bundle()).toEqual({ version: bundle.version, roots: bundle.roots });
    const afterRestart = await rest('rot3');
    expect(afterRestart.at(-1)).toBe(newLeaf.at(-1));
  });
});
