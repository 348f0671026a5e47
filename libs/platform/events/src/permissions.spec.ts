import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { NatsServer } from '@aviary/nats-runner';
import { Bus } from './bus';
import { busBuckets, busInboxPrefix, busPermissions, busRoles, natsAuthorizationConfig, PILOT_INBOX_PREFIX, type BusRole } from './permissions';
import { Subjects } from './subjects';

const logger = pino({ level: 'silent' });
const password = (role: BusRole): string => `secret-of-${role}`;
let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start({ config: natsAuthorizationConfig(busRoles.map((role) => ({ user: role, password: password(role), role }))) });
});
afterAll(async () => {
  await nats?.stop();
});

async function bus(role: BusRole): Promise<Bus> {
  return Bus.connect({ url: nats.url, source: role, logger, registry: new Registry(), user: role, password: password(role), manageStreams: role !== 'gateway', inboxPrefix: busInboxPrefix(role) });
}

/** The server's answer to one operation: the permission error it reports, if any. */
async function refusal(nc: NatsConnection, op: () => void): Promise<string | undefined> {
  const errors: string[] = [];
  const watching = (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
  })();
  op();
  await nc.flush();
  await new Promise((r) => setTimeout(r, 200));
  void watching;
  return errors.find((e) => /permission/i.test(e));
}

describe('bus permissions, enforced by nats-server', () => {
  it('refuses a client without credentials, and one with a wrong password', async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/authorization/i);
    await expect(connect({ servers: nats.url, reconnect: false, user: 'pilot', pass: 'guess' })).rejects.toThrow(/authorization/i);
  });

  it('refuses a proxy publishing a CA signing request, config events or status, and listening to anything but its inboxes', async () => {
    const gw = await bus('gateway');
    expect(await refusal(gw.nc, () => gw.nc.publish(Subjects.caSign, '{}'))).toMatch(/publish.*aviary\.ca\.v1\.sign/i);
    expect(await refusal(gw.nc, () => gw.nc.publish(Subjects.configChanged, '{}'))).toMatch(/publish/i);
    expect(await refusal(gw.nc, () => gw.nc.publish(Subjects.xdsStatus, '{}'))).toMatch(/publish/i);
    expect(await refusal(gw.nc, () => gw.nc.subscribe(Subjects.caSign))).toMatch(/subscri/i);
    expect(await refusal(gw.nc, () => gw.nc.subscribe(Subjects.telemetryRequests))).toMatch(/subscri/i);
    await gw.close();
  });

  it('lets a proxy publish request records into the collector\'s stream, and nothing before the stream exists', async () => {
    const gw = await bus('gateway');
    const records = { proxyId: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', records: [] };
    // The stream is the collector's: a proxy cannot create it.
    await expect(gw.publishDurable(Subjects.telemetryRequests, records)).rejects.toThrow(/AVIARY_TELEMETRY/);
    const collector = await bus('telemetry-collector');
    const got: unknown[] = [];
    const consumer = await collector.consumeDurable(Subjects.telemetryRequests, 'permissions-spec', (e) => void got.push(e.data));
    expect(await gw.publishDurable(Subjects.telemetryRequests, records)).toBeGreaterThan(0);
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([records]);
    await consumer.stop();
    await collector.close();
    await gw.close();
  });

  it('lets citadel alone answer signing requests and write the CA bucket', async () => {
    const pilot = await bus('pilot');
    const citadel = await bus('citadel');
    expect(await refusal(pilot.nc, () => pilot.nc.subscribe(Subjects.caSign, { queue: Subjects.caSign }))).toMatch(/subscri.*aviary\.ca\.v1\.sign/i);
    citadel.reply(Subjects.caSign, () => Promise.resolve({ ok: false, code: 'INVALID_ARGUMENT', message: 'test reply' }));
    await citadel.nc.flush();
    const answer = await pilot.request(Subjects.caSign, { csr: 'x', dnsNames: ['pilot'], ttlSeconds: 3600 }, 5_000);
    expect(answer).toMatchObject({ ok: false, message: 'test reply' });
    const ca = await new Kvm(citadel.nc).create('aviary-ca');
    await ca.put('bundle', '{}');
    // a proxy reads the bundle but cannot write it
    const gw = await bus('gateway');
    const gwCa = await new Kvm(gw.nc).open('aviary-ca');
    expect((await gwCa.get('bundle'))?.string()).toBe('{}');
    await expect(gwCa.put('bundle', '{"forged":true}')).rejects.toThrow();
    await gw.close();
    const forged = (await new Kvm(pilot.nc).open('aviary-ca')).put('bundle', '{"forged":true}');
    await expect(forged).rejects.toThrow();
    expect((await ca.get('bundle'))?.string()).toBe('{}');
    await pilot.close();
    await citadel.close();
  });

  it('lets pilot alone read or write the credentials bucket (private keys), and see its replies', async () => {
    const pilot = await bus('pilot');
    const kv = await new Kvm(pilot.nc).create(busBuckets.credentials, { history: 1 });
    await kv.put('istio-system.cert', '{"privateKey":"secret"}');
    expect((await kv.get('istio-system.cert'))?.string()).toContain('secret');
    // Every other role: no get (direct or stream), no watch (consumer), no subscription to the
    // bucket's subjects or to pilot's inbox, no write.
    for (const role of ['citadel', 'telemetry-collector', 'injector-webhook', 'gateway'] as const) {
      const other = await bus(role);
      const otherKv = await new Kvm(jetstream(other.nc, { timeout: 1_000 })).open(busBuckets.credentials).catch(() => undefined);
      if (otherKv !== undefined) {
        await expect(otherKv.get('istio-system.cert'), role).rejects.toThrow();
        await expect(otherKv.watch({ key: '>' }), role).rejects.toThrow();
        await expect(otherKv.put('istio-system.cert', '{}'), role).rejects.toThrow();
      }
      expect(await refusal(other.nc, () => other.nc.subscribe(`$KV.${busBuckets.credentials}.>`)), role).toMatch(/subscri/i);
      expect(await refusal(other.nc, () => other.nc.subscribe(`${PILOT_INBOX_PREFIX}.>`)), role).toMatch(/subscri/i);
      await other.close();
    }
    const observer = await connect({ servers: nats.url, user: 'observer', pass: password('observer') });
    expect(await refusal(observer, () => observer.subscribe(`${PILOT_INBOX_PREFIX}.>`))).toMatch(/subscri/i);
    expect(await refusal(observer, () => observer.subscribe(`$KV.${busBuckets.credentials}.>`))).toMatch(/subscri/i);
    await observer.close();
    expect((await kv.get('istio-system.cert'))?.string()).toContain('secret');
    await pilot.close();
  });

  it('lets an observer read Aviary\'s subjects and publish nothing', async () => {
    const nc = await connect({ servers: nats.url, user: 'observer', pass: password('observer') });
    expect(await refusal(nc, () => nc.subscribe(Subjects.configChanged))).toBeUndefined();
    expect(await refusal(nc, () => nc.publish(Subjects.configChanged, '{}'))).toMatch(/publish/i);
    await nc.close();
  });

  it('gives the control-plane apps everything except what another app owns', () => {
    expect(busPermissions('pilot').subscribe.deny).toContain(Subjects.caSign);
    expect(busPermissions('citadel').subscribe.deny).not.toContain(Subjects.caSign);
    expect(busPermissions('citadel').publish.deny).toContain(Subjects.configChanged);
    expect(busPermissions('pilot').publish.deny).not.toContain(Subjects.configChanged);
    for (const role of busRoles.filter((r) => r !== 'gateway' && r !== 'observer')) expect(busPermissions(role).publish.deny).toContain(Subjects.telemetryRequests);
    expect(busPermissions('gateway').publish.allow).toContain(Subjects.telemetryRequests);
  });
});
