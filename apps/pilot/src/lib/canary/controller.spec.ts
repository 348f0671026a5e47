import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildAdminApp, type AdminApp } from '@aviary/admin-api';
import { KvConfigStore, WatchedObjects, withWatch, type ConfigStore } from '@aviary/config-store';
import { Bus, LeaderLease, Subjects, type EventData, type Event } from '@aviary/events';
import type { CanaryStatus, StoredObject } from '@aviary/mesh-api';
import { NatsServer } from '@aviary/nats-runner';
import { canaryApi } from './api';
import { CanaryController, canaryReadKinds } from './controller';

const logger = pino({ level: 'silent' });
const HOST = 'hello.demo.svc.cluster.local';
const T0 = Date.parse('2026-01-01T00:00:00Z');
let nats: NatsServer;
let bus: Bus;
let telemetry: Bus;
let bucket = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'pilot', logger, registry: new Registry() });
  telemetry = await Bus.connect({ url: nats.url, source: 'telemetry-collector', logger, registry: new Registry() });
});
afterAll(async () => {
  await telemetry?.close();
  await bus?.close();
  await nats?.stop();
});

const obj = (apiVersion: string, kind: string, name: string, spec: unknown): StoredObject => ({ apiVersion, kind, metadata: { name, namespace: 'demo' }, spec });
const dr = obj('networking.istio.io/v1', 'DestinationRule', 'hello', { host: HOST, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] });
const vs = obj('networking.istio.io/v1', 'VirtualService', 'hello', {
  hosts: ['*'],
  gateways: ['hello-gateway'],
  http: [
    {
      name: 'hello',
      route: [
        { destination: { host: HOST, subset: 'v1', port: { number: 80 } }, weight: 100 },
        { destination: { host: HOST, subset: 'v2', port: { number: 80 } }, weight: 0 },
      ],
    },
  ],
});
const canary = (extra: Record<string, unknown> = {}) =>
  obj('networking.aviary.dev/v1alpha1', 'Canary', 'hello', {
    target: { virtualService: 'hello', route: 'hello' },
    stable: { host: HOST, subset: 'v1' },
    canary: { host: HOST, subset: 'v2' },
    steps: [{ weight: 10 }, { weight: 50 }],
    analysis: { interval: '10s', minRequests: 10, successRate: 99, p99LatencyMs: 500, failedChecksLimit: 2 },
    ...extra,
  });

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A controller over a fresh bucket, with a hand-driven clock; the timer never fires during a test. */
async function setup(): Promise<{ store: ConfigStore; ctl: CanaryController; clock: { t: number }; received: EventData<typeof Subjects.telemetrySummary>[] }> {
  const store = await KvConfigStore.open(bus, { bucket: `canary_${bucket++}` });
  for (const o of [dr, vs, canary()]) await store.apply(o);
  const clock = { t: T0 };
  const ctl = new CanaryController({ store, bus, logger, domainSuffix: 'cluster.local', tickMs: 3_600_000, now: () => clock.t });
  ctl.start();
  return { store, ctl, clock, received: [] };
}

/** Publishes a summary as the collector does and waits until the controller has it. */
async function summary(ctl: CanaryController, timeMs: number, v2: { errorRatio: number; p99Ms?: number; requests?: number }, windowSeconds = 0.5): Promise<void> {
  const data: EventData<typeof Subjects.telemetrySummary> = {
    service: HOST,
    namespace: 'demo',
    windowSeconds,
    requests: 200,
    requestsPerSecond: 20,
    errorRatio: v2.errorRatio / 2,
    p50Ms: 5,
    p90Ms: 10,
    p99Ms: 20,
    time: new Date(timeMs).toISOString(),
    versions: [
      { version: 'v1', requests: 100, requestsPerSecond: 10, errorRatio: 0, p50Ms: 5, p90Ms: 10, p99Ms: 20 },
      { version: 'v2', requests: v2.requests ?? 100, requestsPerSecond: 10, errorRatio: v2.errorRatio, p50Ms: 5, p90Ms: 10, p99Ms: v2.p99Ms ?? 20 },
    ],
  };
  await bus.nc.flush();
  telemetry.publish(Subjects.telemetrySummary, data);
  await until('the controller to receive the summary', () => ctl.latestSummaryTime(HOST) === data.time);
}

const weights = async (store: ConfigStore): Promise<number[]> => {
  const o = await store.get({ kind: 'VirtualService', namespace: 'demo', name: 'hello' });
  return ((o!.spec as { http: { route: { weight: number }[] }[] }).http[0]!.route).map((d) => d.weight);
};
const status = async (store: ConfigStore): Promise<CanaryStatus> => (await store.get({ kind: 'Canary', namespace: 'demo', name: 'hello' }))!.status as unknown as CanaryStatus;

describe('CanaryController with a real nats-server', () => {
  it('takes a healthy canary 0 → 10 → 50 → 100 through the config store, surviving a restart, and publishes replayable events', async () => {
    const { store, ctl, clock } = await setup();
    await ctl.reconcileAll();
    expect(await weights(store)).toEqual([90, 10]);
    expect(await status(store)).toMatchObject({ phase: 'Progressing', currentWeight: 10, stepIndex: 0, reason: 'Started' });

    // Fresh healthy data, but the step's minimum duration (one interval) has not passed.
    clock.t = T0 + 2_000;
    await summary(ctl, T0 + 1_500, { errorRatio: 0 });
    await ctl.reconcileAll();
    expect(await weights(store)).toEqual([90, 10]);
    expect((await status(store)).lastAnalysis).toMatchObject({ verdict: 'Passed', canary: { requests: 100, successRate: 100 } });

    // A restart: a new controller with nothing in memory continues from the stored status.
    await ctl.stop();
    const ctl2 = new CanaryController({ store, bus, logger, domainSuffix: 'cluster.local', tickMs: 3_600_000, now: () => clock.t });
    ctl2.start();
    clock.t = T0 + 12_000;
    await ctl2.reconcileAll(); // no summary since the restart: a gap, no decision
    expect(await weights(store)).toEqual([90, 10]);
    expect((await status(store)).conditions.find((c) => c.type === 'TelemetryFresh')).toMatchObject({ status: 'False' });
    await summary(ctl2, T0 + 11_500, { errorRatio: 0 });
    await ctl2.reconcileAll();
    expect(await weights(store)).toEqual([50, 50]);
    clock.t = T0 + 23_000;
    await summary(ctl2, T0 + 22_500, { errorRatio: 0.001 });
    await ctl2.reconcileAll();
    expect(await weights(store)).toEqual([0, 100]);
    expect(await status(store)).toMatchObject({ phase: 'Promoted', currentWeight: 100, reason: 'Promoted' });
    await ctl2.stop();

    // Every transition is in the durable stream, in order.
    const events: Event<'aviary.canary.v1.event'>[] = [];
    const consumer = await bus.consumeDurable(Subjects.canaryEvent, `replay_${bucket}`, (e) => {
      if (e.data.time >= new Date(T0).toISOString()) events.push(e);
    });
    await until('the replayed events', () => events.length >= 3);
    await consumer.stop();
    expect(events.slice(-3).map((e) => `${e.data.reason} ${e.data.from.weight}->${e.data.to.weight} ${e.data.to.phase}`)).toEqual([
      'Started 0->10 Progressing',
      'StepAdvanced 10->50 Progressing',
      'Promoted 50->100 Promoted',
    ]);
    expect(events.at(-1)!.data.analysis).toMatchObject({ verdict: 'Passed', canary: { requests: 100 } });
  });

  it('rolls a canary failing 20 % back to 0 after two failed analyses, and takes no decision on stale data', async () => {
    const { store, ctl, clock } = await setup();
    await ctl.reconcileAll();
    clock.t = T0 + 1_000;
    await summary(ctl, T0 + 900, { errorRatio: 0.2 });
    await ctl.reconcileAll();
    expect(await status(store)).toMatchObject({ phase: 'Progressing', failedChecks: 1, lastAnalysis: { verdict: 'Failed', reasons: ['success rate 80% < 99%'] } });
    // Ten minutes later, with only that old summary: a gap, nothing happens.
    clock.t = T0 + 600_000;
    await ctl.reconcileAll();
    expect(await status(store)).toMatchObject({ phase: 'Progressing', failedChecks: 1 });
    expect(await weights(store)).toEqual([90, 10]);
    await summary(ctl, T0 + 599_000, { errorRatio: 0.2 });
    await ctl.reconcileAll();
    expect(await weights(store)).toEqual([100, 0]);
    expect(await status(store)).toMatchObject({ phase: 'RolledBack', currentWeight: 0, failedChecks: 2, reason: 'RolledBack' });
    await ctl.stop();
  });

  it('judges a step only on summary windows that begin after the step started: a healthy v2 window from before the step does not dilute a failing one', async () => {
    const { store, ctl, clock } = await setup();
    await ctl.reconcileAll(); // step 1 (10 %) starts at T0
    // The collector sums a 10 s window. At T0+5 s it still holds v2's healthy traffic from before
    // the step (an earlier canary, say): not judged, whatever it says.
    clock.t = T0 + 5_000;
    await summary(ctl, T0 + 5_000, { errorRatio: 0.004, requests: 1_000 }, 10);
    await ctl.reconcileAll();
    const before = await status(store);
    expect(before).toMatchObject({ phase: 'Progressing', currentWeight: 10, failedChecks: 0 });
    expect(before.lastAnalysis).toBeUndefined();
    expect(before.conditions.find((c) => c.type === 'TelemetryFresh')).toMatchObject({ status: 'False', message: expect.stringContaining('starts before the current step started') });
    // The first window wholly inside the step shows the canary as it is, and so does the next.
    clock.t = T0 + 10_500;
    await summary(ctl, T0 + 10_000, { errorRatio: 0.2 }, 10);
    await ctl.reconcileAll();
    expect(await status(store)).toMatchObject({ failedChecks: 1, lastAnalysis: { verdict: 'Failed', canary: { successRate: 80, windowSeconds: 10, time: new Date(T0 + 10_000).toISOString() } } });
    clock.t = T0 + 20_500;
    await summary(ctl, T0 + 20_000, { errorRatio: 0.2 }, 10);
    await ctl.reconcileAll();
    expect(await status(store)).toMatchObject({ phase: 'RolledBack', currentWeight: 0, failedChecks: 2 });
    expect(await weights(store)).toEqual([100, 0]);
    await ctl.stop();
  });

  it('drives a Gateway API HTTPRoute rule: backendRefs weights from the per-Service summaries', async () => {
    const { store, ctl, clock } = await setup();
    await store.delete({ kind: 'Canary', namespace: 'demo', name: 'hello' });
    const svc = (v: string): string => `hello-${v}.demo.svc.cluster.local`;
    await store.apply(
      obj('gateway.networking.k8s.io/v1', 'HTTPRoute', 'hello', {
        parentRefs: [{ name: 'hello-gateway' }],
        hostnames: ['hello.example.com'],
        rules: [{ name: 'split', backendRefs: [{ name: 'hello-v1', port: 80, weight: 1 }, { name: 'hello-v2', port: 80, weight: 0 }] }],
      }),
    );
    await store.apply(obj('networking.aviary.dev/v1alpha1', 'Canary', 'hello-route', { ...(canary().spec as object), target: { httpRoute: 'hello', route: 'split' }, stable: { host: 'hello-v1' }, canary: { host: svc('v2') } }));
    const backendWeights = async (): Promise<number[]> => ((await store.get({ kind: 'HTTPRoute', namespace: 'demo', name: 'hello' }))!.spec as { rules: { backendRefs: { weight: number }[] }[] }).rules[0]!.backendRefs.map((b) => b.weight);
    await ctl.reconcileAll();
    expect(await backendWeights()).toEqual([90, 10]);
    // The canary is its own Service: its summary is the service's, without versions.
    const publish = async (service: string, timeMs: number, errorRatio: number): Promise<void> => {
      await bus.nc.flush();
      telemetry.publish(Subjects.telemetrySummary, { service, namespace: 'demo', windowSeconds: 1, requests: 100, requestsPerSecond: 100, errorRatio, p50Ms: 5, p90Ms: 10, p99Ms: 20, time: new Date(timeMs).toISOString() });
      await until('the controller to receive the summary', () => ctl.latestSummaryTime(service) === new Date(timeMs).toISOString());
    };
    clock.t = T0 + 12_000;
    await publish(svc('v1'), T0 + 11_500, 0);
    await publish(svc('v2'), T0 + 11_500, 0);
    await ctl.reconcileAll();
    expect(await backendWeights()).toEqual([50, 50]);
    clock.t = T0 + 23_000;
    await publish(svc('v2'), T0 + 22_500, 0.2);
    await ctl.reconcileAll();
    clock.t = T0 + 34_000;
    await publish(svc('v2'), T0 + 33_500, 0.2);
    await ctl.reconcileAll();
    expect(await backendWeights()).toEqual([100, 0]);
    const stored = (await store.get({ kind: 'Canary', namespace: 'demo', name: 'hello-route' }))!.status as unknown as CanaryStatus;
    expect(stored).toMatchObject({ phase: 'RolledBack', currentWeight: 0, lastAnalysis: { verdict: 'Failed', canary: { successRate: 80 } } });
    await ctl.stop();
  });

  it('reads from the watched copy: a tick asks the store nothing, and reads its own writes back before the watch reports them', async () => {
    const kv = await KvConfigStore.open(bus, { bucket: `canary_${bucket++}` });
    for (const o of [dr, vs, canary()]) await kv.apply(o);
    let storeReads = 0;
    let conflicts = 0;
    // A watch that lags: after the initial objects, its events wait until released.
    let lagging = false;
    const lagged: (() => void)[] = [];
    const store: ConfigStore = {
      ...withWatch(kv, (listener) => kv.watch((e) => (lagging ? lagged.push(() => listener(e)) : listener(e)))),
      list: (filter) => (storeReads++, kv.list(filter)),
      get: (ref) => (storeReads++, kv.get(ref)),
      updateStatus: (ref, st, rv) => kv.updateStatus(ref, st, rv).catch((err: unknown) => (conflicts++, Promise.reject(err))),
    };
    const reads = new WatchedObjects(store, canaryReadKinds);
    const watch = await reads.watching(store).watch(() => undefined);
    await watch.initialized;
    lagging = true;
    const clock = { t: T0 };
    const ctl = new CanaryController({ store, bus, logger, domainSuffix: 'cluster.local', tickMs: 3_600_000, now: () => clock.t, reads });
    ctl.start();
    const before = storeReads;
    await ctl.reconcileAll();
    await ctl.reconcileAll();
    clock.t = T0 + 11_000;
    await summary(ctl, T0 + 10_500, { errorRatio: 0 });
    await ctl.reconcileAll();
    clock.t = T0 + 22_000;
    await summary(ctl, T0 + 21_500, { errorRatio: 0 });
    await ctl.reconcileAll();
    expect(storeReads).toBe(before);
    expect(conflicts).toBe(0);
    expect(await weights(kv)).toEqual([0, 100]);
    expect(await status(kv)).toMatchObject({ phase: 'Promoted', currentWeight: 100 });
    // The lagging events, older than what the controller wrote back, change nothing.
    lagging = false;
    for (const deliver of lagged.splice(0)) deliver();
    expect((await reads.get({ kind: 'Canary', namespace: 'demo', name: 'hello' }))!.status).toMatchObject({ phase: 'Promoted' });
    await ctl.stop();
    await watch.stop();
  });

  it('waits (Pending) while the target is not usable, and starts once it is', async () => {
    const { store, ctl } = await setup();
    await store.delete({ kind: 'DestinationRule', namespace: 'demo', name: 'hello' });
    await ctl.reconcileAll();
    expect(await status(store)).toMatchObject({ phase: 'Pending', currentWeight: 0, reason: 'TargetNotReady', message: `no DestinationRule defines subset v2 of ${HOST}` });
    expect(await weights(store)).toEqual([100, 0]);
    await store.apply(dr);
    await ctl.reconcileAll();
    expect(await status(store)).toMatchObject({ phase: 'Progressing', currentWeight: 10 });
    await ctl.stop();
  });
});

describe('canary REST API', () => {
  let app: AdminApp;
  let store: ConfigStore;
  let ctl: CanaryController;
  beforeAll(async () => {
    ({ store, ctl } = await setup());
    await ctl.reconcileAll();
    app = await buildAdminApp(
      { app: 'pilot', version: 't', description: 't', logger, registry: new Registry(), adminToken: 't0ken', bodyLimit: 1 << 16, readiness: [] },
      canaryApi({ store, controller: ctl }),
    );
  });
  afterAll(async () => {
    await app?.close();
    await ctl?.stop();
  });
  const auth = { authorization: 'Bearer t0ken' };

  it('lists and gets canaries with their status', async () => {
    const list = await app.inject({ method: 'GET', url: '/api/v1/canaries' });
    expect(list.statusCode).toBe(200);
    expect(list.json().items).toEqual([expect.objectContaining({ namespace: 'demo', name: 'hello', status: expect.objectContaining({ phase: 'Progressing', currentWeight: 10 }) })]);
    expect((await app.inject({ method: 'GET', url: '/api/v1/canaries/other' })).json()).toEqual({ items: [] });
    expect((await app.inject({ method: 'GET', url: '/api/v1/canaries/demo/nope' })).statusCode).toBe(404);
    // In the OpenAPI document, the command as an admin write.
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/canaries', '/api/v1/canaries/{namespace}/{name}', '/api/v1/canaries/{namespace}/{name}/{command}']));
    expect(doc.paths['/api/v1/canaries/{namespace}/{name}/{command}']!['post']!.security).toEqual([{ bearerAuth: [] }]);
  });

  it('pauses, resumes and aborts with the admin token; refuses a command the phase does not allow', async () => {
    expect((await app.inject({ method: 'POST', url: '/api/v1/canaries/demo/hello/pause' })).statusCode).toBe(401);
    const paused = await app.inject({ method: 'POST', url: '/api/v1/canaries/demo/hello/pause', headers: auth });
    expect(paused.statusCode, paused.body).toBe(200);
    expect(paused.json().status).toMatchObject({ phase: 'Paused', currentWeight: 10, reason: 'Paused' });
    const again = await app.inject({ method: 'POST', url: '/api/v1/canaries/demo/hello/pause', headers: auth });
    expect(again.statusCode).toBe(412);
    expect(again.json()).toMatchObject({ code: 'CANARY_INVALID_COMMAND' });
    expect((await app.inject({ method: 'POST', url: '/api/v1/canaries/demo/hello/resume', headers: auth })).json().status).toMatchObject({ phase: 'Progressing' });
    const aborted = await app.inject({ method: 'POST', url: '/api/v1/canaries/demo/hello/abort', headers: auth });
    expect(aborted.json().status).toMatchObject({ phase: 'RolledBack', currentWeight: 0, reason: 'Aborted' });
    expect(await weights(store)).toEqual([100, 0]);
    expect((await app.inject({ method: 'POST', url: '/api/v1/canaries/demo/hello/explode', headers: auth })).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/api/v1/canaries/demo/nope/promote', headers: auth })).statusCode).toBe(404);
  });
  it('with two replicas only the holder of the lease reconciles; the other takes over when it leaves', async () => {
    const { store, ctl: first, clock } = await setup();
    await first.stop();
    const replica = (id: string) => {
      const lease = new LeaderLease(bus, { name: `canary-test-${bucket}`, identity: id, ttlMs: 30_000, logger });
      const ctl = new CanaryController({ store, bus, logger, domainSuffix: 'cluster.local', tickMs: 3_600_000, now: () => clock.t, isLeader: () => lease.isLeader });
      ctl.start();
      return { lease, ctl };
    };
    const a = replica('pilot-a');
    const b = replica('pilot-b');
    await b.lease.tick();
    await a.lease.tick();
    expect([a.lease.isLeader, b.lease.isLeader]).toEqual([false, true]);
    await a.ctl.reconcileAll(); // not the leader: reads and writes nothing
    expect(await weights(store)).toEqual([100, 0]);
    expect(await status(store)).toBeUndefined();
    await b.ctl.reconcileAll();
    expect(await weights(store)).toEqual([90, 10]);
    // The leader leaves (a rolling update): it releases the lease and the other replica continues.
    await b.ctl.stop();
    await b.lease.stop();
    await a.lease.tick();
    expect(a.lease.isLeader).toBe(true);
    clock.t = T0 + 12_000;
    await summary(a.ctl, T0 + 11_500, { errorRatio: 0 });
    await a.ctl.reconcileAll();
    expect(await weights(store)).toEqual([50, 50]);
    await a.ctl.stop();
    await a.lease.stop();
  });
});
