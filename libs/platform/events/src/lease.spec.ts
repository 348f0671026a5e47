import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Kvm } from '@nats-io/kv';
import { NatsServer } from '@aviary/nats-runner';
import { Bus } from './bus';
import { LeaderLease } from './lease';
import { busBuckets } from './permissions';

const logger = pino({ level: 'silent' });
let nats: NatsServer;
const buses: Bus[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const b of buses) await b.close();
  await nats?.stop();
});

async function bus(): Promise<Bus> {
  const b = await Bus.connect({ url: nats.url, source: 'test', logger, registry: new Registry() });
  buses.push(b);
  return b;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('LeaderLease', () => {
  it('refuses a bad name and a TTL under 3 s', async () => {
    const b = await bus();
    expect(() => new LeaderLease(b, { name: 'a.b', identity: 'x', ttlMs: 10_000, logger })).toThrow(/lease name "a.b": 1 to 64/);
    expect(() => new LeaderLease(b, { name: 'ok', identity: 'x', ttlMs: 1_000, logger })).toThrow(/ttlMs 1000: at least 3000/);
  });

  it('gives the lease to one contender; the other takes it when it is released', async () => {
    const changes: string[] = [];
    const a = new LeaderLease(await bus(), { name: 'release', identity: 'pilot-a', ttlMs: 30_000, logger, onChange: (l) => changes.push(`a:${l}`) });
    const b = new LeaderLease(await bus(), { name: 'release', identity: 'pilot-b', ttlMs: 30_000, logger, onChange: (l) => changes.push(`b:${l}`) });
    await a.tick();
    await b.tick();
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect(await b.holder()).toBe('pilot-a');
    await a.tick(); // renews
    await b.tick();
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    await a.stop();
    expect(await b.holder()).toBeUndefined();
    await b.tick();
    expect(b.isLeader).toBe(true);
    expect(await a.holder()).toBe('pilot-b');
    expect(changes).toEqual(['a:true', 'a:false', 'b:true']);
    await b.stop();
  });

  it('a holder whose key was taken over steps down on its next renewal (revision check)', async () => {
    const a = new LeaderLease(await bus(), { name: 'takeover', identity: 'pilot-a', ttlMs: 30_000, logger });
    const b = new LeaderLease(await bus(), { name: 'takeover', identity: 'pilot-b', ttlMs: 30_000, logger });
    await a.tick();
    expect(a.isLeader).toBe(true);
    // What the server does to a key whose holder stopped renewing: it is gone.
    const kv = await new Kvm((await bus()).nc).open(`${busBuckets.lease}takeover`);
    await kv.purge('holder');
    await b.tick();
    expect(b.isLeader).toBe(true);
    await a.tick();
    expect(a.isLeader).toBe(false);
    expect(await a.holder()).toBe('pilot-b');
    await a.stop();
    expect(await b.holder()).toBe('pilot-b'); // a's stop did not release b's lease
    await b.stop();
  });

  it('steps down by itself when it could not renew for 2/3 of the TTL', async () => {
    let now = 1_000_000;
    const changes: boolean[] = [];
    const a = new LeaderLease(await bus(), { name: 'overdue', identity: 'pilot-a', ttlMs: 30_000, logger, now: () => now, onChange: (l) => changes.push(l) });
    await a.tick();
    expect(a.isLeader).toBe(true);
    now += 19_999;
    expect(a.isLeader).toBe(true);
    now += 1;
    expect(a.isLeader).toBe(false);
    expect(changes).toEqual([true, false]);
    await a.stop();
  });

  it('nats-server expires the key of a holder that stopped renewing, and another replica takes over', async () => {
    const a = new LeaderLease(await bus(), { name: 'expiry', identity: 'pilot-a', ttlMs: 3_000, logger });
    const b = new LeaderLease(await bus(), { name: 'expiry', identity: 'pilot-b', ttlMs: 3_000, logger });
    await a.tick(); // a "crashes" after this: it never renews
    expect(a.isLeader).toBe(true);
    b.start();
    await until(() => b.isLeader);
    expect(await b.holder()).toBe('pilot-b');
    await b.stop();
  });
});
