import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Bus } from '@aviary/events';
import type { StoredObject } from '@aviary/mesh-api';
import { NatsServer } from '@aviary/nats-runner';
import { KvConfigStore } from './kv-store';
import { withWatch, type ConfigStore } from './store';
import { WatchedObjects } from './watched-objects';

const logger = pino({ level: 'silent' });
let nats: NatsServer;
let bus: Bus;
let bucket = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger, registry: new Registry() });
});
afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

const vs = (name: string, namespace = 'demo', weight = 100): StoredObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace },
  spec: { hosts: [name], http: [{ route: [{ destination: { host: name }, weight }] }] },
});
const dr = (name: string): StoredObject => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace: 'demo' }, spec: { host: name } });

/** A real KV store, and how many reads reached it. */
async function countedStore(): Promise<{ store: ConfigStore; reads: () => number }> {
  const store = await KvConfigStore.open(bus, { bucket: `watched_${bucket++}` });
  let reads = 0;
  return {
    store: {
      ...withWatch(store, (listener) => store.watch(listener)),
      list: (filter) => (reads++, store.list(filter)),
      get: (ref) => (reads++, store.get(ref)),
    },
    reads: () => reads,
  };
}

async function until(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const weightOf = (o: StoredObject | undefined): number | undefined => (o?.spec as { http: { route: { weight: number }[] }[] } | undefined)?.http[0]!.route[0]!.weight;

describe('WatchedObjects over a real KV store', () => {
  it('reads the store until the watch has seen every object, then answers from memory and follows changes', async () => {
    const { store, reads } = await countedStore();
    await store.apply(vs('b'));
    await store.apply(vs('a', 'other'));
    await store.apply(dr('b'));
    const watched = new WatchedObjects(store, ['VirtualService']);
    expect((await watched.list({ kind: 'VirtualService' })).map((o) => o.metadata.name)).toEqual(['b', 'a']);
    expect(reads()).toBe(1);

    const events: string[] = [];
    const watch = await watched.watching(store).watch((e) => events.push(`${e.op} ${e.ref.kind}/${e.ref.name}`));
    await watch.initialized;
    expect(watched.live).toBe(true);
    expect(events).toEqual(expect.arrayContaining(['created VirtualService/a', 'created VirtualService/b', 'created DestinationRule/b']));
    const before = reads();
    expect((await watched.list({ kind: 'VirtualService' })).map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['demo/b', 'other/a']);
    expect((await watched.list({ kind: 'VirtualService', namespace: 'demo' })).map((o) => o.metadata.name)).toEqual(['b']);
    expect(weightOf(await watched.get({ kind: 'VirtualService', namespace: 'demo', name: 'b' }))).toBe(100);
    expect(await watched.get({ kind: 'VirtualService', namespace: 'demo', name: 'absent' })).toBeUndefined();
    expect(reads()).toBe(before);
    // A kind it does not keep still goes to the store.
    expect((await watched.list({ kind: 'DestinationRule' })).map((o) => o.metadata.name)).toEqual(['b']);
    expect(reads()).toBe(before + 1);

    await store.apply(vs('b', 'demo', 60));
    await until(async () => weightOf(await watched.get({ kind: 'VirtualService', namespace: 'demo', name: 'b' })) === 60);
    await store.delete({ kind: 'VirtualService', namespace: 'other', name: 'a' });
    await until(async () => (await watched.list({ kind: 'VirtualService' })).length === 1);
    expect(reads()).toBe(before + 1);

    await watch.stop();
    expect(watched.live).toBe(false);
    await watched.list({ kind: 'VirtualService' });
    expect(reads()).toBe(before + 2);
  });

  it('takes a write-back at once, keeps the newer version, and never brings back an object it has not seen', async () => {
    const { store } = await countedStore();
    const first = (await store.apply(vs('b'))).object;
    const watched = new WatchedObjects(store, ['VirtualService']);
    const revisions: number[] = [];
    const watch = await watched.watching(store).watch((e) => revisions.push(e.revision));
    await watch.initialized;

    const second = (await store.apply(vs('b', 'demo', 70))).object;
    watched.wrote(second);
    expect(weightOf(await watched.get({ kind: 'VirtualService', namespace: 'demo', name: 'b' }))).toBe(70);
    // The watch's event for `second` and an older write-back change nothing.
    await until(async () => revisions.includes(Number(second.metadata.resourceVersion)));
    watched.wrote(first);
    expect(weightOf(await watched.get({ kind: 'VirtualService', namespace: 'demo', name: 'b' }))).toBe(70);
    // An object created elsewhere is taken from the watch only.
    const created = (await store.apply(vs('c'))).object;
    await store.delete({ kind: 'VirtualService', namespace: 'demo', name: 'c' });
    await until(async () => (await store.get({ kind: 'VirtualService', namespace: 'demo', name: 'c' })) === undefined);
    await until(async () => (await watched.get({ kind: 'VirtualService', namespace: 'demo', name: 'c' })) === undefined);
    watched.wrote(created);
    expect(await watched.get({ kind: 'VirtualService', namespace: 'demo', name: 'c' })).toBeUndefined();
    await watch.stop();
  });
});
