import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildAdminApp, type AdminApp } from '@aviary/admin-api';
import { KvConfigStore, KvCredentialStore, type CredentialMaterial } from '@aviary/config-store';
import { Bus } from '@aviary/events';
import { CredentialIndex } from '@aviary/mesh-model';
import { NatsServer } from '@aviary/nats-runner';
import { OpenSsl } from '@aviary/testing';
import { configApi } from './config-api';
import { credentialsApi } from './credentials-api';

const auth = { authorization: 'Bearer t0ken' };
const json = { ...auth, 'content-type': 'application/json' };
const ssl = new OpenSsl();
let nats: NatsServer;
let bus: Bus;
let store: KvCredentialStore;
let app: AdminApp;
let cert: string;
let key: string;
let caPem: string;

beforeAll(async () => {
  caPem = readFileSync(ssl.ca(), 'utf8');
  const server = ssl.dnsCert('server', 'hello.example.test');
  cert = readFileSync(server.cert, 'utf8');
  key = readFileSync(server.key, 'utf8');
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger: pino({ level: 'silent' }), registry: new Registry() });
  store = await KvCredentialStore.open(bus, 'credentials_test');
  // As pilot wires it: the config API first (it reads every body as text), then this one.
  app = await buildAdminApp({ app: 'pilot', version: 't', description: 't', logger: pino({ level: 'silent' }), registry: new Registry(), adminToken: 't0ken', bodyLimit: 1024 * 1024, readiness: [] }, async (a) => {
    await configApi({ store: await KvConfigStore.open(bus, { bucket: 'config_test' }), limits: { maxDocuments: 10, maxKeys: 1000 } })(a);
    await credentialsApi(store)(a);
  });
});
afterAll(async () => {
  await app?.close();
  await bus?.close();
  await nats?.stop();
  ssl.cleanup();
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('credentials API (real NATS KV)', () => {
  it('PUT creates (201) then replaces (200), answering metadata only; GET and list never show the key', async () => {
    const created = await app.inject({ method: 'PUT', url: '/api/v1/credentials/istio-system/hello-cert', headers: json, payload: { certChain: cert, privateKey: key, caCert: caPem } });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.body).not.toContain('PRIVATE KEY');
    expect(created.json()).toMatchObject({ namespace: 'istio-system', name: 'hello-cert', hasPrivateKey: true, certificates: [{ dnsNames: ['hello.example.test'] }], caCertificates: [{ subject: expect.stringContaining('test-ca') }] });
    const replaced = await app.inject({ method: 'PUT', url: '/api/v1/credentials/istio-system/hello-cert', headers: json, payload: { certChain: cert, privateKey: key } });
    expect(replaced.statusCode).toBe(200);
    expect(Number(replaced.json<{ revision: string }>().revision)).toBeGreaterThan(Number(created.json<{ revision: string }>().revision));
    const one = await app.inject({ method: 'GET', url: '/api/v1/credentials/istio-system/hello-cert' });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ caCertificates: [] });
    for (const url of ['/api/v1/credentials', '/api/v1/credentials/istio-system', '/api/v1/credentials/istio-system/hello-cert']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.body).not.toContain('PRIVATE KEY');
      expect(r.body).not.toContain(key.split('\n')[1]);
    }
    expect((await app.inject({ method: 'GET', url: '/api/v1/credentials/istio-system' })).json()).toMatchObject({ items: [{ name: 'hello-cert' }] });
    expect((await app.inject({ method: 'GET', url: '/api/v1/credentials/other' })).json()).toEqual({ items: [] });
  });

  it('refuses bad input with the field named, and writes without the admin token', async () => {
    const put = (payload: unknown, headers: Record<string, string> = json, url = '/api/v1/credentials/istio-system/bad') => app.inject({ method: 'PUT', url, headers, payload: payload as object });
    const other = ssl.dnsCert('other', 'other.example.test');
    const mismatch = await put({ certChain: cert, privateKey: readFileSync(other.key, 'utf8') });
    expect(mismatch.statusCode).toBe(400);
    expect(mismatch.json()).toMatchObject({ code: 'CREDENTIAL_INVALID', message: 'privateKey: is not the key of the first certificate in certChain', details: { field: 'privateKey' } });
    expect((await put({ certChain: cert })).json()).toMatchObject({ message: 'privateKey: is required with certChain' });
    expect((await put({ certChain: cert, privateKey: key, extra: 1 })).statusCode).toBe(400);
    expect((await put({ certChain: 'x'.repeat(70_000), privateKey: key })).statusCode).toBe(400);
    expect((await put({ certChain: cert, privateKey: key }, json, '/api/v1/credentials/Bad_NS/x')).json()).toMatchObject({ code: 'INVALID_NAMESPACE' });
    expect((await put({ certChain: cert, privateKey: key }, { 'content-type': 'application/json' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'PUT', url: '/api/v1/credentials/istio-system/bad', headers: json, payload: '{not json' })).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/api/v1/credentials/istio-system/bad' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/credentials/istio-system/hello-cert' })).statusCode).toBe(401);
  });

  it('is documented in the OpenAPI document with the rest of the admin API', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, Record<string, { tags?: string[] }>> }>();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/credentials', '/api/v1/credentials/{namespace}', '/api/v1/credentials/{namespace}/{name}']));
    expect(Object.keys(doc.paths['/api/v1/credentials/{namespace}/{name}']!).sort()).toEqual(['delete', 'get', 'put']);
    expect(doc.paths['/api/v1/config']).toBeDefined();
  });

  it('feeds the credential index: a watch sees the stored credentials, a replacement and a deletion', async () => {
    const seen: ReadonlyMap<string, CredentialMaterial>[] = [];
    const watch = await store.watch((c) => seen.push(c), () => undefined);
    await watch.initialized;
    try {
      const index = (): CredentialIndex => new CredentialIndex(seen.at(-1));
      expect(index().resolve('istio-system', 'kubernetes://hello-cert')).toEqual({ kind: 'certificate', certChain: cert, privateKey: key });
      // Another namespace's proxy does not get it.
      expect(index().resolve('demo', 'kubernetes://hello-cert').kind).toBe('missing');
      const before = index().fingerprint();
      await app.inject({ method: 'PUT', url: '/api/v1/credentials/istio-system/mtls', headers: json, payload: { certChain: cert, privateKey: key, caCert: caPem } });
      await until(() => seen.at(-1)?.has('istio-system/mtls') === true);
      expect(index().resolve('istio-system', 'kubernetes://mtls-cacert')).toEqual({ kind: 'ca', caCert: caPem });
      expect(index().fingerprint()).not.toBe(before);
      const deleted = await app.inject({ method: 'DELETE', url: '/api/v1/credentials/istio-system/mtls', headers: auth });
      expect(deleted.json()).toEqual({ deleted: true });
      await until(() => seen.at(-1)?.has('istio-system/mtls') === false);
      expect((await app.inject({ method: 'DELETE', url: '/api/v1/credentials/istio-system/mtls', headers: auth })).statusCode).toBe(404);
      expect(await store.get('istio-system', 'mtls')).toBeUndefined();
    } finally {
      await watch.stop();
    }
  });
});
