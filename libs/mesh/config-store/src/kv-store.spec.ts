import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { KvConfigStore, kvKey, refFromKey } from './kv-store';
import { diffObjects } from './compare';
import type { StoredObject } from '@aviary/mesh-api';
import type { ChangeEvent } from './store';

const logger = pino({ level: 'silent' });
let nats: NatsServer;
let bus: Bus;

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger, registry: new Registry() });
});
afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

const vs = (name: string, weight = 100, extra: Partial<StoredObject['metadata']> = {}): StoredObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'default', ...extra },
  spec: { hosts: [name], http: [{ route: [{ destination: { host: name, subset: 'v1' }, weight }] }] },
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('KV keys', () => {
  it('encode kind, namespace and a dotted name, and decode back', () => {
    expect(kvKey({ kind: 'ServiceEntry', namespace: 'default', name: 'api.example.com' })).toBe('ServiceEntry.default.api.example.com');
    expect(refFromKey('ServiceEntry.default.api.example.com')).toEqual({ kind: 'ServiceEntry', namespace: 'default', name: 'api.example.com' });
    expect(() => kvKey({ kind: 'VirtualService', namespace: 'a.b', name: 'x' })).toThrow('metadata.namespace');
    expect(() => kvKey({ kind: 'VirtualService', namespace: 'default', name: 'bad name' })).toThrow('metadata.name');
  });
});

describe('KvConfigStore', () => {
  it('writes status alone (compare-and-set, generation kept) and keeps it across spec writes', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'status' });
    const created = (await store.apply(vs('hello'))).object;
    const rv = created.metadata.resourceVersion!;
    const withStatus = await store.updateStatus({ kind: 'VirtualService', namespace: 'default', name: 'hello' }, { phase: 'Progressing' }, rv);
    expect(withStatus.status).toEqual({ phase: 'Progressing' });
    expect(withStatus.metadata.generation).toBe(1);
    expect(Number(withStatus.metadata.resourceVersion)).toBeGreaterThan(Number(rv));
    await expect(store.updateStatus({ kind: 'VirtualService', namespace: 'default', name: 'hello' }, { phase: 'Paused' }, rv)).rejects.toMatchObject({ code: 'RESOURCE_VERSION_CONFLICT' });
    await expect(store.updateStatus({ kind: 'VirtualService', namespace: 'default', name: 'absent' }, {}, '1')).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    const respec = await store.apply(vs('hello', 100, { labels: { team: 'a' } }));
    expect(respec.object.status).toEqual({ phase: 'Progressing' });
    expect(respec.object.metadata.generation).toBe(2);
    expect((await store.get({ kind: 'VirtualService', namespace: 'default', name: 'hello' }))?.status).toEqual({ phase: 'Progressing' });
  });

  it('round-trips objects with a revision, a generation and history', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'rt' });
    const created = await store.apply(vs('reviews'));
    expect(created.op).toBe('created');
    expect(created.object.metadata.generation).toBe(1);
    const rv1 = created.object.metadata.resourceVersion;
    expect(rv1).toMatch(/^\d+$/);
    expect((await store.apply(vs('reviews'))).op).toBe('unchanged');
    const updated = await store.apply(vs('reviews', 100, { labels: { team: 'a' } }));
    expect(updated.op).toBe('updated');
    expect(updated.object.metadata.generation).toBe(2);
    expect(updated.object.metadata.creationTimestamp).toBe(created.object.metadata.creationTimestamp);
    const got = await store.get({ kind: 'VirtualService', namespace: 'default', name: 'reviews' });
    expect(got).toEqual(updated.object);
    const history = await store.history({ kind: 'VirtualService', namespace: 'default', name: 'reviews' });
    expect(history.map((h) => h.metadata.generation)).toEqual([1, 2]);
    await store.apply(vs('ratings'));
    expect((await store.list({ kind: 'VirtualService' })).map((o) => o.metadata.name)).toEqual(['ratings', 'reviews']);
    expect(await store.list({ kind: 'DestinationRule' })).toEqual([]);
  });

  it('refuses a stale resourceVersion with the current one (optimistic concurrency)', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'occ' });
    const first = await store.apply(vs('reviews'));
    const rv = first.object.metadata.resourceVersion!;
    const second = await store.apply(vs('reviews', 100, { resourceVersion: rv, labels: { v: '2' } }));
    await expect(store.apply(vs('reviews', 100, { resourceVersion: rv, labels: { v: '3' } }))).rejects.toMatchObject({
      kind: 'CONFLICT',
      code: 'RESOURCE_VERSION_CONFLICT',
      details: { currentResourceVersion: second.object.metadata.resourceVersion },
    });
    await expect(store.delete({ kind: 'VirtualService', namespace: 'default', name: 'reviews' }, rv)).rejects.toMatchObject({ kind: 'CONFLICT' });
    expect(await store.delete({ kind: 'VirtualService', namespace: 'default', name: 'reviews' }, second.object.metadata.resourceVersion)).toBe(true);
    expect(await store.get({ kind: 'VirtualService', namespace: 'default', name: 'reviews' })).toBeUndefined();
    expect(await store.delete({ kind: 'VirtualService', namespace: 'default', name: 'reviews' })).toBe(false);
    expect((await store.apply(vs('reviews'))).op).toBe('created');
  });

  it('lets exactly one of two concurrent writers win', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'race' });
    const base = await store.apply(vs('reviews'));
    const rv = base.object.metadata.resourceVersion!;
    const results = await Promise.allSettled([
      store.apply(vs('reviews', 100, { resourceVersion: rv, labels: { w: 'a' } })),
      store.apply(vs('reviews', 100, { resourceVersion: rv, labels: { w: 'b' } })),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  });

  it('watches: existing objects first, then changes in order', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'watch' });
    await store.apply(vs('a'));
    await store.apply(vs('b'));
    await store.delete({ kind: 'VirtualService', namespace: 'default', name: 'b' });
    const events: ChangeEvent[] = [];
    const watch = await store.watch((e) => void events.push(e));
    await watch.initialized;
    expect(events.map((e) => `${e.op}:${e.ref.name}`)).toEqual(['created:a']);
    await store.apply(vs('a', 100, { labels: { x: 'y' } }));
    await store.apply(vs('c'));
    await store.delete({ kind: 'VirtualService', namespace: 'default', name: 'a' });
    await until(() => events.length === 4);
    expect(events.map((e) => `${e.op}:${e.ref.name}`)).toEqual(['created:a', 'updated:a', 'created:c', 'deleted:a']);
    await watch.stop();
  });

  it('writes without reading again when the caller passes what it read, still compare-and-set', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'read_once' });
    const first = await store.apply(vs('r'), { current: null });
    expect(first.op).toBe('created');
    const second = await store.apply(vs('r', 50), { current: first.object });
    expect(second).toMatchObject({ op: 'updated', object: { metadata: { generation: 2 } } });
    // A caller whose read is stale loses the compare-and-set.
    await expect(store.apply(vs('r', 10), { current: first.object })).rejects.toMatchObject({ kind: 'CONFLICT', code: 'RESOURCE_VERSION_CONFLICT' });
    await expect(store.apply(vs('r', 10), { current: null })).rejects.toMatchObject({ kind: 'CONFLICT' });
  });

  it('survives a nats-server restart with nothing lost', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'durable' });
    for (let i = 0; i < 20; i++) await store.apply(vs(`svc-${i}`));
    await nats.restart();
    await until(() => bus.connected, 15_000);
    const reopened = await KvConfigStore.open(bus, { bucket: 'durable' });
    expect((await reopened.list()).length).toBe(20);
  });

  it('refuses objects above the size limit', async () => {
    const store = await KvConfigStore.open(bus, { bucket: 'limits', maxObjectBytes: 2048 });
    const big = { ...vs('big'), spec: { hosts: ['x'.repeat(4096)] } };
    await expect(store.apply(big)).rejects.toMatchObject({ kind: 'PAYLOAD_TOO_LARGE', code: 'OBJECT_TOO_LARGE' });
  });
});

describe('diffObjects', () => {
  it('lists field changes with validation-style paths', () => {
    expect(diffObjects(vs('r', 100), { ...vs('r', 80), metadata: { name: 'r', namespace: 'default', labels: { a: 'b' } } })).toEqual([
      { path: 'metadata.labels', op: 'added', to: { a: 'b' } },
      { path: 'spec.http[0].route[0].weight', op: 'changed', from: 100, to: 80 },
    ]);
  });
});
