/**
 * The config store and the durable telemetry stream on a 3-node JetStream cluster (real
 * nats-server processes, replicas 3): one node is killed with SIGKILL while config writes and
 * telemetry batches are flowing, and nothing acknowledged is lost. Writers retry what failed
 * during the fail-over (as pilot's API clients and the agents' telemetry publisher do): a config
 * write is compare-and-set, a batch carries a message id, so a retry never doubles anything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Bus, Subjects, type Stoppable } from '@aviary/events';
import type { StoredObject } from '@aviary/mesh-api';
import { NatsCluster } from '@aviary/nats-runner';
import { KvConfigStore } from './kv-store';

const logger = pino({ level: 'silent' });
let cluster: NatsCluster;
const buses: Bus[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start({ size: 3 });
}, 60_000);
afterAll(async () => {
  for (const b of buses) await b.close().catch(() => undefined);
  await cluster?.stop();
});

/** A component's bus: connected to the node at `first`, knowing every node (as AVIARY_NATS_URL lists them). */
async function bus(source: string, first: number): Promise<Bus> {
  const urls = cluster.nodes.map((n) => n.url);
  const ordered = [...urls.slice(first), ...urls.slice(0, first)].join(',');
  const b = await Bus.connect({ url: ordered, source, logger, registry: new Registry(), replicas: 3 });
  buses.push(b);
  return b;
}

const service = (i: number): StoredObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: `svc-${i}`, namespace: 'default' },
  spec: { hosts: [`svc-${i}.example.com`], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' },
});

/** Retries an operation that failed because a node went away (bounded: the test fails past it). */
async function retrying<T>(op: () => Promise<T>, isDone?: (err: unknown) => Promise<boolean>): Promise<T | undefined> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (isDone !== undefined && (await isDone(err))) return undefined;
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('a 3-node NATS JetStream cluster', () => {
  it('loses no config write and no telemetry batch when a node is killed under load', async () => {
    // Writers on node 0 (the one killed), readers on node 1.
    const pilot = await bus('pilot', 0);
    const agent = await bus('gateway', 0);
    const collector = await bus('telemetry-collector', 1);
    const store = await KvConfigStore.open(pilot, { bucket: 'cluster_spec' });
    expect((await (await pilot.manager()).streams.info('KV_cluster_spec')).config.num_replicas).toBe(3);

    const received = new Set<string>();
    await collector.ensureStreams();
    expect((await (await collector.manager()).streams.info('AVIARY_TELEMETRY')).config.num_replicas).toBe(3);
    const consumer: Stoppable = await collector.consumeDurable(Subjects.telemetryRequests, 'cluster-spec', (e) => {
      received.add(e.data.proxyId);
    });

    const writes = 120;
    const batches = 120;
    let killed = false;
    const load = (async () => {
      for (let i = 0; i < Math.max(writes, batches); i++) {
        if (i === 40) {
          await cluster.nodes[0]!.crash();
          killed = true;
        }
        if (i < writes) {
          const object = service(i);
          // A create whose ack was lost may have been stored: the retry then finds it there.
          await retrying(
            () => store.apply(object),
            async () => (await store.get({ kind: 'ServiceEntry', namespace: 'default', name: object.metadata.name }).catch(() => undefined)) !== undefined,
          );
        }
        if (i < batches) await retrying(() => agent.publishDurable(Subjects.telemetryRequests, { proxyId: `batch-${i}`, records: [] }, `batch-${i}`));
      }
    })();
    await load;
    expect(killed).toBe(true);

    // The two nodes left agree on their JetStream leaders again (on a loaded machine the
    // election may still run when the writers are done: reads would time out meanwhile).
    await cluster.healthy();
    const reader = (await retrying(() => KvConfigStore.open(collector, { bucket: 'cluster_spec' })))!;
    const stored = (await retrying(() => reader.list({ kind: 'ServiceEntry' })))!;
    expect(stored.map((o) => o.metadata.name).sort()).toEqual(Array.from({ length: writes }, (_, i) => `svc-${i}`).sort());
    for (const o of stored) expect(o.metadata.generation).toBe(1);
    const deadline = Date.now() + 30_000;
    while (received.size < batches && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(received.size).toBe(batches);
    const info = (await retrying(async () => (await collector.manager()).streams.info('AVIARY_TELEMETRY')))!;
    expect(info.state.messages).toBe(batches); // no duplicate from a retried publish

    // The killed node comes back with its store and catches up.
    await cluster.nodes[0]!.restart();
    await cluster.healthy();
    await consumer.stop();
  }, 120_000);

  it('reads every acknowledged write back, from a store on any node', async () => {
    // Each read follows the write it checks at once: a get answered by a replica that has not
    // applied the write yet would return the previous content (and an apply of that previous
    // content would then be taken for "unchanged").
    const writer = await KvConfigStore.open(await bus('pilot-a', 0), { bucket: 'read_your_writes' });
    const reader = await KvConfigStore.open(await bus('pilot-b', 2), { bucket: 'read_your_writes' });
    const ref = { kind: 'ServiceEntry', namespace: 'default', name: 'flip' };
    const version = (i: number): StoredObject => ({
      ...service(0),
      metadata: { name: 'flip', namespace: 'default' },
      spec: { hosts: ['flip.example.com'], ports: [{ number: 8000 + (i % 2), name: 'http', protocol: 'HTTP' }], resolution: 'DNS' },
    });
    for (let i = 0; i < 60; i++) {
      const result = await writer.apply(version(i));
      expect(result.op).toBe(i === 0 ? 'created' : 'updated');
      const [byWriter, byReader] = await Promise.all([writer.get(ref), reader.get(ref)]);
      expect(byWriter?.metadata.resourceVersion).toBe(result.object.metadata.resourceVersion);
      expect(byReader?.metadata.resourceVersion).toBe(result.object.metadata.resourceVersion);
      expect(byReader?.spec).toEqual(version(i).spec);
    }
  }, 60_000);
});
