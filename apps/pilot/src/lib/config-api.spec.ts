import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildAdminApp, listenAdmin, type AdminApp } from '@aviary/admin-api';
import { announcingChanges, KvConfigStore, type Watch } from '@aviary/config-store';
import { Bus, Subjects } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { jetstreamManager } from '@nats-io/jetstream';
import { configApi } from './config-api';

const bookinfo = readFileSync(new URL('./__fixtures__/bookinfo.yaml', import.meta.url), 'utf8');
const auth = { authorization: 'Bearer t0ken' };
const yamlHeaders = { ...auth, 'content-type': 'application/yaml' };
let nats: NatsServer;
let bus: Bus;
let app: AdminApp;
let bucket = 0;
const watches: Watch[] = [];

async function freshApp(maxDocuments = 50, bodyLimit = 64 * 1024): Promise<AdminApp> {
  // As pilot wires it: the one announcing decorator, watched (by Discovery there, by this test here).
  const store = announcingChanges(await KvConfigStore.open(bus, { bucket: `pilot_${bucket++}` }), bus, () => undefined);
  const watch = await store.watch(() => undefined);
  await watch.initialized;
  watches.push(watch);
  return buildAdminApp(
    { app: 'pilot', version: 't', description: 't', logger: pino({ level: 'silent' }), registry: new Registry(), adminToken: 't0ken', bodyLimit, readiness: [] },
    configApi({ store, limits: { maxDocuments, maxKeys: 20_000 } }),
  );
}

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger: pino({ level: 'silent' }), registry: new Registry() });
  app = await freshApp();
});
afterAll(async () => {
  await app?.close();
  await Promise.all(watches.map((w) => w.stop()));
  await bus?.close();
  await nats?.stop();
});

const post = (a: AdminApp, body: string, query = '', headers: Record<string, string> = yamlHeaders) => a.inject({ method: 'POST', url: `/api/v1/config${query}`, payload: body, headers });

describe("pilot's config API", () => {
  it('applies a multi-document Bookinfo YAML, then reports it unchanged', async () => {
    const res = await post(app, bookinfo);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { results: Array<{ kind: string; name: string; action: string; namespace: string }> };
    expect(body.results.map((r) => `${r.action} ${r.kind} ${r.namespace}/${r.name}`)).toEqual([
      'created ServiceEntry default/reviews',
      'created WorkloadEntry default/reviews-v1',
      'created WorkloadEntry default/reviews-v2',
      'created DestinationRule default/reviews',
      'created VirtualService default/reviews',
    ]);
    const again = (await post(app, bookinfo)).json() as { results: Array<{ action: string }> };
    expect(again.results.every((r) => r.action === 'unchanged')).toBe(true);
  });

  it('reads back by kind, plural or short name, namespace and name', async () => {
    const list = (await app.inject('/api/v1/config/virtualservices')).json() as { items: Array<{ metadata: { name: string } }> };
    expect(list.items.map((i) => i.metadata.name)).toEqual(['reviews']);
    const one = await app.inject('/api/v1/config/vs/default/reviews');
    expect(one.json()).toMatchObject({ kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default', resourceVersion: expect.stringMatching(/^\d+$/), generation: 1 } });
    expect((await app.inject('/api/v1/config/WorkloadEntry/default')).json().items).toHaveLength(2);
    expect((await app.inject('/api/v1/config/gadgets')).json()).toMatchObject({ code: 'UNKNOWN_KIND' });
    expect((await app.inject('/api/v1/config/vs/default/nope')).statusCode).toBe(404);
  });

  it('dry-runs a change with a field diff and stores nothing', async () => {
    const changed = bookinfo.replace('weight: 90', 'weight: 50').replace('weight: 10', 'weight: 50');
    const res = await post(app, changed, '?dryRun=true');
    expect(res.statusCode, res.body).toBe(200);
    const vs = (res.json() as { dryRun: boolean; results: Array<{ kind: string; action: string; diff?: unknown }> }).results.find((r) => r.kind === 'VirtualService');
    expect(vs).toMatchObject({
      action: 'updated',
      diff: [
        { path: 'spec.http[1].route[0].weight', op: 'changed', from: 90, to: 50 },
        { path: 'spec.http[1].route[1].weight', op: 'changed', from: 10, to: 50 },
      ],
    });
    const stored = (await app.inject('/api/v1/config/vs/default/reviews')).json() as { spec: { http: Array<{ route: Array<{ weight?: number }> }> } };
    expect(stored.spec.http[1]?.route[0]?.weight).toBe(90);
  });

  it('is all or nothing: one invalid document stores nothing and every error has its document and path', async () => {
    const fresh = await freshApp();
    const bad = `${bookinfo}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: broken\nspec:\n  hosts: [ratings]\n  http:\n  - route:\n    - destination: {host: ratings}\n      weight: 70\n    - destination: {host: ratings}\n      weight: -20\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: typo\nspec:\n  host: ratings\n  bogusField: 1\n`;
    const res = await post(fresh, bad);
    expect(res.statusCode).toBe(400);
    const body = res.json() as { code: string; details: { errors: Array<{ document: number; path: string; line: number }> } };
    expect(body.code).toBe('CONFIG_INVALID');
    expect(body.details.errors.map((e) => `${e.document} ${e.path}`)).toEqual(expect.arrayContaining(['6 spec.bogusField']));
    expect(body.details.errors.some((e) => e.document === 5 && e.path.startsWith('spec.http[0].route'))).toBe(true);
    expect(body.details.errors[0]?.line).toBeGreaterThan(80);
    expect((await fresh.inject('/api/v1/config/serviceentries')).json()).toEqual({ items: [] });
    await fresh.close();
  });

  it('answers 409 with the current resourceVersion for a stale one', async () => {
    const current = (await app.inject('/api/v1/config/vs/default/reviews')).json() as { metadata: { resourceVersion: string } };
    const doc = (rv: string, weight: number) =>
      JSON.stringify({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'reviews', namespace: 'default', resourceVersion: rv },
        spec: { hosts: ['reviews.default.svc.cluster.local'], http: [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v1' }, weight }] }] },
      });
    const ok = await post(app, doc(current.metadata.resourceVersion, 100), '', { ...auth, 'content-type': 'application/json' });
    expect(ok.statusCode, ok.body).toBe(200);
    const stale = await post(app, doc(current.metadata.resourceVersion, 100), '', { ...auth, 'content-type': 'application/json' });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ code: 'RESOURCE_VERSION_CONFLICT', details: { currentResourceVersion: (ok.json() as { results: Array<{ resourceVersion: string }> }).results[0]?.resourceVersion } });
  });

  it('deletes, honouring resourceVersion, and announces every change on NATS', async () => {
    const seen: string[] = [];
    const sub = bus.subscribe(Subjects.configChanged, (e) => void seen.push(`${e.data.op} ${e.data.kind}/${e.data.name}`));
    await bus.nc.flush();
    const del = await app.inject({ method: 'DELETE', url: '/api/v1/config/destinationrules/default/reviews', headers: auth });
    expect(del.json()).toEqual({ deleted: true });
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/config/destinationrules/default/reviews', headers: auth })).statusCode).toBe(404);
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['deleted DestinationRule/reviews']);
    await sub.stop();
  });

  it('analyzes the stored config: a route to a subset no DestinationRule defines', async () => {
    const res = await app.inject('/api/v1/analyze');
    const findings = (res.json() as { findings: Array<{ code: string; resources: string[] }> }).findings;
    expect(findings.length).toBeGreaterThan(0);
    expect(findings.some((f) => f.resources.some((r) => r.includes('VirtualService')))).toBe(true);
  });

  it('reads leave no consumer behind on nats-server: 1,000 GETs of lists and analysis', async () => {
    const jsm = await jetstreamManager(bus.nc);
    const before = (await jsm.getAccountInfo()).consumers;
    for (let i = 0; i < 1000; i++) {
      const url = ['/api/v1/config/virtualservices', '/api/v1/config/se/default', '/api/v1/analyze', '/api/v1/config/vs/default/reviews'][i % 4]!;
      const res = await app.inject({ method: 'GET', url });
      expect([200, 404], url).toContain(res.statusCode);
    }
    expect((await jsm.getAccountInfo()).consumers).toBe(before);
  });

  it('needs the admin token to write', async () => {
    expect((await post(app, bookinfo, '', { 'content-type': 'application/yaml' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/config/vs/default/reviews' })).statusCode).toBe(401);
  });

  it('enforces limits: body size (413), document count (413), aliases and depth (400)', async () => {
    const big = await post(app, `# ${'x'.repeat(70 * 1024)}\n${bookinfo}`);
    expect(big.statusCode).toBe(413);
    const small = await freshApp(3);
    const many = await post(small, bookinfo);
    expect(many.statusCode).toBe(413);
    expect(many.json()).toMatchObject({ code: 'TOO_MANY_DOCUMENTS' });
    await small.close();
    const lol = ['a: &a [x,x,x,x,x,x,x,x,x,x]'];
    for (let i = 1; i < 8; i++) lol.push(`l${i}: &l${i} [${Array(10).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
    const bomb = await post(app, lol.join('\n'));
    expect(bomb.statusCode).toBe(400);
    expect(bomb.json().message).toContain('too many YAML aliases');
    const deep = await post(app, `${'['.repeat(200)}${']'.repeat(200)}`);
    expect(deep.statusCode).toBe(400);
    expect(deep.json()).toMatchObject({ code: 'MANIFEST_TOO_DEEP', message: expect.stringContaining('deeper than 64') });
    const wide = await freshApp(50, 1024 * 1024);
    const keys = await post(wide, Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`).join('\n'));
    expect(keys.statusCode).toBe(413);
    expect(keys.json()).toMatchObject({ code: 'TOO_MANY_KEYS', message: 'document 0 (line 20001): more than 20000 mapping keys in one request', details: { limit: 'keys' } });
    await wide.close();
  });

  it('lists at most 20 problems of a manifest that is wrong everywhere, and counts the rest', async () => {
    const docs = Array.from({ length: 45 }, (_, i) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad${i}}\nspec: {hosts: [a], bogus: ${i}}\n`);
    const res = await post(app, docs.join('---\n'));
    expect(res.statusCode).toBe(400);
    const body = res.json() as { code: string; message: string; details: { errors: unknown[]; omitted: number } };
    expect(body.code).toBe('CONFIG_INVALID');
    expect(body.details.errors).toHaveLength(20);
    expect(body.details.omitted).toBe(25);
    expect(body.message).toContain('(and 40 more)');
  });

  it('works over a real socket with curl', async () => {
    const port = await listenAdmin(app, '127.0.0.1', 0);
    const run = promisify(execFile);
    const { stdout } = await run('curl', ['-sS', '-X', 'POST', '-H', 'Authorization: Bearer t0ken', '-H', 'Content-Type: application/yaml', '--data-binary', bookinfo, `http://127.0.0.1:${port}/api/v1/config?dryRun=true`]);
    expect(JSON.parse(stdout)).toMatchObject({ dryRun: true });
    const { stdout: got } = await run('curl', ['-sS', `http://127.0.0.1:${port}/api/v1/config/serviceentries/default/reviews`]);
    expect(JSON.parse(got)).toMatchObject({ kind: 'ServiceEntry', spec: { resolution: 'STATIC' } });
  });
});
