import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { connect } from '@nats-io/transport-node';
import { NatsServer } from '@aviary/nats-runner';
import { Bus } from './bus';
import { Subjects, type EventData } from './subjects';
import type { Event } from './envelope';

const logger = pino({ level: 'silent' });
let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats?.stop();
});

async function bus(registry = new Registry()): Promise<Bus> {
  return Bus.connect({ url: nats.url, source: 'test', logger, registry });
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const change = (name: string, revision: number): EventData<typeof Subjects.configChanged> => ({ op: 'updated', kind: 'VirtualService', namespace: 'default', name, revision });

describe('Bus', () => {
  it('publishes and receives typed events', async () => {
    const a = await bus();
    const b = await bus();
    const got: Event<typeof Subjects.configChanged>[] = [];
    b.subscribe(Subjects.configChanged, (e) => void got.push(e));
    await b.nc.flush();
    a.publish(Subjects.configChanged, change('reviews', 1));
    await until(() => got.length === 1);
    expect(got[0]?.data).toEqual(change('reviews', 1));
    expect(got[0]?.source).toBe('test');
    await a.close();
    await b.close();
  });

  it('drops and counts an invalid message without crashing the consumer', async () => {
    const registry = new Registry();
    const b = await bus(registry);
    const got: unknown[] = [];
    b.subscribe(Subjects.configChanged, (e) => void got.push(e.data));
    await b.nc.flush();
    const raw = await connect({ servers: nats.url });
    raw.publish(Subjects.configChanged, '{"garbage": true}');
    raw.publish(Subjects.configChanged, 'not json at all');
    const a = await bus();
    a.publish(Subjects.configChanged, change('after-garbage', 2));
    await until(() => got.length === 1);
    expect(got).toEqual([change('after-garbage', 2)]);
    const metric = await registry.getSingleMetric('aviary_bus_invalid_messages_total')!.get();
    expect(metric.values.find((v) => v.labels['direction'] === 'in')?.value).toBe(2);
    await raw.close();
    await a.close();
    await b.close();
  });

  it('answers request/reply and times out without a responder', async () => {
    const server = await bus();
    const client = await bus();
    server.reply(Subjects.caSign, async (e) => ({ ok: true, certChain: [`signed:${e.data.dnsNames.join(',')}`] }));
    await server.nc.flush();
    const reply = await client.request(Subjects.caSign, { csr: 'CSR', dnsNames: ['pilot.aviary.svc'], ttlSeconds: 3600 }, 2_000);
    expect(reply).toEqual({ ok: true, certChain: ['signed:pilot.aviary.svc'] });
    await server.close();
    await expect(client.request(Subjects.caSign, { csr: 'CSR', dnsNames: ['x'], ttlSeconds: 3600 }, 300)).rejects.toMatchObject({ kind: expect.stringMatching(/UNAVAILABLE|DEADLINE_EXCEEDED/) });
    await client.close();
  });

  it('a stopped durable consumer gets everything published meanwhile', async () => {
    const producer = await bus();
    const seen: number[] = [];
    let consumerBus = await bus();
    let consumer = await consumerBus.consumeDurable(Subjects.configChanged, 'durable-test', (e) => void seen.push(e.data.revision));
    for (let i = 1; i <= 5; i++) await producer.publishDurable(Subjects.configChanged, change('d', i));
    await until(() => seen.length === 5);
    await consumer.stop();
    await consumerBus.close();
    for (let i = 6; i <= 50; i++) await producer.publishDurable(Subjects.configChanged, change('d', i));
    consumerBus = await bus();
    consumer = await consumerBus.consumeDurable(Subjects.configChanged, 'durable-test', (e) => void seen.push(e.data.revision));
    await until(() => seen.length >= 50);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await consumer.stop();
    await consumerBus.close();
    await producer.close();
  });

  it('durables of different names each get every message; startTime and inactiveThresholdMs shape a new durable', async () => {
    const producer = await bus();
    await producer.publishDurable(Subjects.configChanged, change('fan', 1));
    await new Promise((r) => setTimeout(r, 20));
    const start = new Date();
    for (let i = 2; i <= 20; i++) await producer.publishDurable(Subjects.configChanged, change('fan', i));
    const consumers = await Promise.all([bus(), bus()]);
    const seen: number[][] = [[], []];
    const subs = await Promise.all(
      consumers.map((c, i) =>
        c.consumeDurable(Subjects.configChanged, `fan-${i}`, (e) => void (e.data.name === 'fan' && seen[i]!.push(e.data.revision)), { startTime: start, inactiveThresholdMs: 60_000 }),
      ),
    );
    await until(() => seen.every((s) => s.length === 19));
    expect(seen).toEqual([0, 1].map(() => Array.from({ length: 19 }, (_, i) => i + 2)));
    const info = await (await consumers[0]!.manager()).consumers.info('AVIARY_CONFIG', 'fan-0');
    expect(info.config.inactive_threshold).toBe(60_000_000_000);
    for (const s of subs) await s.stop();
    for (const c of consumers) await c.close();
    await producer.close();
  });

  it('durablePosition and replay: a stored range read back without a durable', async () => {
    const b = await bus();
    const before = await b.durablePosition(Subjects.configChanged, 'replay-test');
    expect(before.ackFloor).toBeUndefined();
    const start = new Date();
    for (let i = 1; i <= 10; i++) await b.publishDurable(Subjects.configChanged, change('replay', i));
    const { lastSeq } = await b.durablePosition(Subjects.configChanged, 'replay-test');
    expect(lastSeq).toBe(before.lastSeq + 10);
    const seen: number[] = [];
    expect(await b.replay(Subjects.configChanged, { startTime: start, upToSeq: lastSeq - 3 }, (e) => void seen.push(e.data.revision))).toBe(7);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(await b.replay(Subjects.configChanged, { startTime: new Date(Date.now() + 60_000), upToSeq: lastSeq }, () => undefined)).toBe(0);
    const consumed: number[] = [];
    const c = await b.consumeDurable(Subjects.configChanged, 'replay-test', (e) => void consumed.push(e.data.revision), { startSeq: lastSeq - 1 });
    await until(() => consumed.length === 2);
    expect(consumed).toEqual([9, 10]);
    let floor: number | undefined;
    for (let i = 0; i < 200 && floor !== lastSeq; i++) {
      floor = (await b.durablePosition(Subjects.configChanged, 'replay-test')).ackFloor;
      if (floor !== lastSeq) await new Promise((r) => setTimeout(r, 20));
    }
    expect(floor).toBe(lastSeq);
    await c.stop();
    await b.close();
  });

  it('reconnects after nats-server restarts and keeps its subscriptions', async () => {
    const a = await bus();
    const b = await bus();
    const got: number[] = [];
    b.subscribe(Subjects.configChanged, (e) => void got.push(e.data.revision));
    await b.nc.flush();
    await nats.restart();
    await until(() => a.connected && b.connected, 15_000);
    await b.nc.flush();
    a.publish(Subjects.configChanged, change('r', 7));
    await until(() => got.includes(7), 10_000);
    expect(got).toContain(7);
    await a.close();
    await b.close();
  });
});
