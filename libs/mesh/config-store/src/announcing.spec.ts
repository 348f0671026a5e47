import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { jetstreamManager } from '@nats-io/jetstream';
import { Bus, Subjects } from '@aviary/events';
import type { StoredObject } from '@aviary/mesh-api';
import { NatsServer } from '@aviary/nats-runner';
import { announcingChanges, changeMessageId } from './announcing';
import { KvConfigStore } from './kv-store';
import type { ConfigStore } from './store';

const logger = pino({ level: 'silent' });
let nats: NatsServer;
let bus: Bus;

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger, registry: new Registry() });
  await bus.ensureStreams();
});
afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

const vs = (name: string, weight = 100): StoredObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'default' },
  spec: { hosts: [name], http: [{ route: [{ destination: { host: name }, weight }] }] },
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Messages the AVIARY_CONFIG stream holds on aviary.config.v1.changed. */
async function stored(): Promise<number> {
  const jsm = await jetstreamManager(bus.nc);
  const info = await jsm.streams.info('AVIARY_CONFIG', { subjects_filter: Subjects.configChanged });
  return info.state.subjects?.[Subjects.configChanged] ?? 0;
}

describe('announcingChanges', () => {
  it('publishes each change its watch sees after the initial state, not the replay, and nothing for an unchanged apply', async () => {
    const errors: unknown[] = [];
    const store = announcingChanges(await KvConfigStore.open(bus, { bucket: 'announce_one' }), bus, (err) => errors.push(err));
    const seen: string[] = [];
    const sub = bus.subscribe(Subjects.configChanged, (e) => void seen.push(`${e.data.op}:${e.data.name}:${e.data.revision}`));
    await bus.nc.flush();
    await store.apply(vs('before')); // exists before the watch: replayed, not announced
    const watch = await store.watch(() => undefined);
    await watch.initialized;
    const a = await store.apply(vs('a'));
    await store.apply(vs('a')); // unchanged: no event
    const b = await store.apply(vs('a', 50));
    await store.delete({ kind: 'VirtualService', namespace: 'default', name: 'a' });
    await until(() => seen.length === 3);
    expect(seen.slice(0, 2)).toEqual([`created:a:${a.object.metadata.resourceVersion}`, `updated:a:${b.object.metadata.resourceVersion}`]);
    expect(seen[2]).toMatch(/^deleted:a:\d+$/);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(3);
    expect(errors).toEqual([]);
    await watch.stop();
    await sub.stop();
  });

  it('stores a change once however many replicas announce it (message id = op, kind/namespace/name, revision)', async () => {
    const bucket = 'announce_replicas';
    const replicas: ConfigStore[] = [];
    for (let i = 0; i < 3; i++) replicas.push(announcingChanges(await KvConfigStore.open(bus, { bucket }), bus, () => undefined));
    const watches = await Promise.all(replicas.map((r) => r.watch(() => undefined)));
    await Promise.all(watches.map((w) => w.initialized));
    const before = await stored();
    const seen: number[] = [];
    const sub = bus.subscribe(Subjects.configChanged, (e) => void seen.push(e.data.revision));
    await bus.nc.flush();
    await replicas[0]!.apply(vs('shared'));
    await replicas[1]!.apply(vs('shared', 10));
    await until(() => seen.length === 6); // each replica publishes each change it sees...
    await new Promise((r) => setTimeout(r, 200));
    expect(await stored()).toBe(before + 2); // ...and JetStream keeps one copy of each
    await Promise.all(watches.map((w) => w.stop()));
    await sub.stop();
  });

  it('names a change the same way whoever announces it', () => {
    expect(changeMessageId({ op: 'updated', ref: { kind: 'VirtualService', namespace: 'ns', name: 'a.b' }, revision: 7 })).toBe('config-updated-VirtualService/ns/a.b-7');
  });
});
