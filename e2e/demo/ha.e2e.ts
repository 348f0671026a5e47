import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh } from '../support/mesh';
import { counter, expectNoFailures, firstPid, sample, servingReplica, xdsState } from '../support/faults';
import { AGENT_ADMINS, apply, COLLECTOR, demoVirtualService, get, requestLoops, until } from '../support/demo';

/**
 * High availability under traffic: the launcher with `--demo --pilot-replicas 2 --nats-nodes 3
 * --citadel-replicas 2 --collector-replicas 2` (two pilots sharing the NATS KV config store, a
 * 3-node JetStream cluster with every stream and bucket replicated 3 times, two citadels on one
 * CA state, two collectors each reading every request record; proxies given both pilots' and
 * both citadels' addresses; workload certificates of 20 s, so every proxy renews every ~10 s).
 * Faults, each with 0 failed requests: a pilot replica SIGKILLed (its proxies move to the other
 * replica within 2 s, long before the launcher restarts it), a NATS node SIGKILLed (config
 * writes and telemetry go on), a citadel replica SIGKILLed (every proxy renews its certificate
 * through the other), a collector replica SIGKILLed (the other counts every request; the
 * restarted one resumes its durable consumer and rebuilds its graph from the stream).
 * Numbers measured are printed (`[ha] …`).
 */

/** Long enough that a killed pilot is not back before its proxies had to move. */
const RESTART_INITIAL_MS = 8_000;
const PILOTS = ['http://127.0.0.1:15014', 'http://127.0.0.1:25014'] as const;
const PILOT_NAMES = ['pilot', 'pilot-2'] as const;
const REPLICA_IDS = ['pilot-1', 'pilot-2'] as const;
const CITADELS = ['http://127.0.0.1:15016', 'http://127.0.0.1:25016'] as const;
const COLLECTORS = [COLLECTOR, 'http://127.0.0.1:25020'] as const;
/** Workload certificate lifetime: renewed at half of it, so several renewals happen during a fault. */
const CERT_TTL_SECONDS = 20;

let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({
    args: ['--demo', '--pilot-replicas', '2', '--nats-nodes', '3', '--citadel-replicas', '2', '--collector-replicas', '2', '--demo-cert-ttl-seconds', String(CERT_TTL_SECONDS), '--restart-initial-ms', String(RESTART_INITIAL_MS)],
  });
}, 150_000);

afterAll(async () => {
  // Every restart the launcher made during the suite, for the record.
  for (const line of (mesh?.output ?? '').split('\n').filter((l) => / exited \(| restarted \(pid/.test(l))) process.stdout.write(`[ha] launcher: ${line}\n`);
  await mesh?.stop();
});

const report = (line: string): void => void process.stdout.write(`[ha] ${line}\n`);

/** A substring of each demo proxy's node id, in AGENT_ADMINS order (ingress, hello-v1, hello-v2 sidecars). */
const NODE_NAMES = ['istio-ingressgateway', 'hello-v1', 'hello-v2'] as const;

/** Which pilot replica holds this proxy's ADS stream now. */
async function servedBy(admin: string): Promise<string | undefined> {
  const i = await servingReplica(PILOTS, NODE_NAMES[AGENT_ADMINS.indexOf(admin as (typeof AGENT_ADMINS)[number])]!);
  return i === undefined ? undefined : REPLICA_IDS[i];
}

const sourceRecords = (collector: string = COLLECTOR): Promise<number> => counter(`${collector}/stats/prometheus`, 'istio_requests_total', ['reporter="source"', 'source_workload="istio-ingressgateway"']);

/** notAfter (Unix seconds) of the workload certificate each demo proxy holds now. */
const certificateExpiries = (): Promise<number[]> => Promise.all(AGENT_ADMINS.map((a) => counter(`${a}/metrics`, 'aviary_agent_certificate_expiry_timestamp_seconds')));
const workloadCertsIssued = (citadel: string): Promise<number> => counter(`${citadel}/metrics`, 'aviary_ca_certificates_issued_total', ['kind="workload"']);

/** Requests to the demo's hello service in a collector's service graph over the last `window`. */
async function graphRequests(collector: string, window: string): Promise<number> {
  const res = await fetch(`${collector}/api/v1/services/summaries?window=${window}`, { signal: AbortSignal.timeout(5_000) });
  const { services } = (await res.json()) as { services: Array<{ service: string; requests: number }> };
  return services.filter((s) => s.service.startsWith('hello.')).reduce((sum, s) => sum + s.requests, 0);
}

describe('high availability under traffic (2 pilots, 3 NATS nodes)', () => {
  it('serves the demo through either pilot; a config write through one replica reaches every proxy', async () => {
    expect(mesh.output).toMatch(/nats-server-3 +nats:\/\//);
    expect(mesh.output).toMatch(/citadel-2 +http:\/\/127\.0\.0\.1:25016/);
    expect(mesh.output).toMatch(/telemetry-collector-2 +http:\/\/127\.0\.0\.1:25020/);
    // Both citadels sign with one CA: the same bundle.
    const bundles = await Promise.all(CITADELS.map(async (c) => (await fetch(`${c}/api/v1/bundle`)).json()));
    expect(bundles[1]).toEqual(bundles[0]);
    const served = await Promise.all(AGENT_ADMINS.map(servedBy));
    report(`proxies served by: ${AGENT_ADMINS.map((a, i) => `${a.slice(-5)} ${served[i]}`).join(', ')}`);
    expect(served.every((s) => s !== undefined)).toBe(true);
    await apply(mesh, demoVirtualService({ responseHeader: ['x-ha', 'via-pilot-2'] }), PILOTS[1]);
    await until('the write through pilot-2 at the ingress', async () => ((await get()).headers.get('x-ha') === 'via-pilot-2' ? true : undefined), 15_000);
    await apply(mesh, demoVirtualService(), PILOTS[0]);
  });

  it('a pilot replica SIGKILLed: its proxies reconnect to the other within 2 s, 0 failed requests, config still flows', async () => {
    // Kill the replica serving the most proxies (so the fault moves at least one).
    const served = await Promise.all(AGENT_ADMINS.map(servedBy));
    const victim: 0 | 1 = served.filter((s) => s === REPLICA_IDS[0]).length >= served.filter((s) => s === REPLICA_IDS[1]).length ? 0 : 1;
    const survivor: 0 | 1 = victim === 0 ? 1 : 0;
    const moved = AGENT_ADMINS.filter((_, i) => served[i] === REPLICA_IDS[victim]);
    expect(moved.length).toBeGreaterThan(0);
    const load = requestLoops(4);
    const down = new Map<string, number>();
    const up = new Map<string, number>();
    // Reconnected: connected with a new connection to pilot. The survivor can answer faster than
    // any sample, so a proxy may never be seen disconnected.
    const connectionsBefore = new Map(await Promise.all(AGENT_ADMINS.map(async (a) => [a, (await xdsState(a)).connections] as const)));
    const sampler = sample(50, async (t) => {
      await Promise.all(
        AGENT_ADMINS.map(async (admin) => {
          const s = await xdsState(admin);
          if (s.connected === 0 && !down.has(admin)) down.set(admin, t);
          if (s.connected === 1 && s.connections > (connectionsBefore.get(admin) ?? Infinity) && !up.has(admin)) up.set(admin, t);
        }),
      );
    });
    let killedAt = 0;
    try {
      await until('200 answers before the fault', async () => (load.answers.length >= 200 ? true : undefined));
      killedAt = Date.now();
      process.kill(firstPid(mesh.stateDir, PILOT_NAMES[victim]), 'SIGKILL');
      await until('the moved proxies connected again', async () => (moved.every((a) => up.has(a)) ? true : undefined), 10_000);
      const reconnectedAt = Date.now();
      // Before the launcher brings the killed replica back: they are on the survivor.
      expect(reconnectedAt - killedAt).toBeLessThan(RESTART_INITIAL_MS);
      let last: Array<string | undefined> = [];
      await until(
        `the moved proxies listed by ${REPLICA_IDS[survivor]}`,
        async () => {
          last = await Promise.all(moved.map(servedBy));
          return last.every((r) => r === REPLICA_IDS[survivor]) ? true : undefined;
        },
        5_000,
      ).catch(() => expect(last).toEqual(moved.map(() => REPLICA_IDS[survivor])));
      report(`moved proxies listed by ${REPLICA_IDS[survivor]} ${Date.now() - killedAt} ms after the kill`);
      const changedAt = Date.now();
      await apply(mesh, demoVirtualService({ responseHeader: ['x-ha', 'after-pilot-kill'] }), PILOTS[survivor]);
      const seenAt = await until('the new route at the ingress', async () => ((await get()).headers.get('x-ha') === 'after-pilot-kill' ? Date.now() : undefined), 15_000);
      const from = load.answers.length;
      await until('200 more answers', async () => (load.answers.length - from >= 200 ? true : undefined));
      const gaps = moved.map((a) => (up.get(a) ?? NaN) - killedAt);
      report(`${REPLICA_IDS[victim]} SIGKILL: ${moved.length} proxies moved to ${REPLICA_IDS[survivor]} after ${gaps.join(', ')} ms (ADS down → up: ${moved.map((a) => (down.has(a) ? `${(up.get(a) ?? NaN) - down.get(a)!} ms` : 'never seen down')).join(', ')})`);
      report(`a VirtualService change through ${REPLICA_IDS[survivor]} served by the ingress after ${seenAt - changedAt} ms; requests ${load.answers.length}, failed ${load.failures.length + load.answers.filter((a) => a.status !== 200).length}`);
      for (const g of gaps) expect(g).toBeLessThanOrEqual(2_000);
    } finally {
      await sampler.stop();
      await load.stop();
      await apply(mesh, demoVirtualService(), PILOTS[survivor]);
    }
    expectNoFailures(load);
    await mesh.waitFor(`${PILOT_NAMES[victim]} is ready again (restart 1)`, 60_000);
  });

  it('a NATS node SIGKILLed: 0 failed requests, config writes and telemetry go on, nothing dropped', async () => {
    const INGRESS = AGENT_ADMINS[0];
    const dropped = (admin: string): Promise<number> => counter(`${admin}/metrics`, 'aviary_agent_telemetry_records_dropped_total');
    const droppedBefore = await Promise.all(AGENT_ADMINS.map(dropped));
    await until('earlier telemetry delivered', async () => ((await counter(`${INGRESS}/metrics`, 'aviary_agent_telemetry_records_buffered')) === 0 ? true : undefined));
    await until('the collector caught up', async () => {
      const a = await sourceRecords();
      await new Promise((r) => setTimeout(r, 1_500));
      return (await sourceRecords()) === a ? true : undefined;
    }, 30_000);
    const before = await sourceRecords();
    const load = requestLoops(4, '/', { perLoopPerSecond: 100 });
    let seenAt = 0;
    let killedAt = 0;
    try {
      await until('200 answers before the fault', async () => (load.answers.length >= 200 ? true : undefined));
      const pid = Number(/nats-server-1 +nats:\/\/\S+ \(pid (\d+)/.exec(mesh.output)?.[1]);
      expect(pid).toBeGreaterThan(0);
      killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      // A config write right after: the KV bucket has replicas on the two nodes left.
      await until('a config write accepted', async () => {
        const res = await fetch(`${PILOTS[0]}/api/v1/config`, { method: 'POST', headers: { authorization: `Bearer ${mesh.token}`, 'content-type': 'application/yaml' }, body: demoVirtualService({ responseHeader: ['x-ha', 'after-nats-kill'] }) });
        return res.status === 200 ? true : undefined;
      }, 20_000);
      seenAt = await until('the new route at the ingress', async () => ((await get()).headers.get('x-ha') === 'after-nats-kill' ? Date.now() : undefined), 20_000);
      const from = load.answers.length;
      await until('400 more answers', async () => (load.answers.length - from >= 400 ? true : undefined));
    } finally {
      await load.stop();
    }
    expectNoFailures(load);
    await until('telemetry delivered', async () => ((await counter(`${INGRESS}/metrics`, 'aviary_agent_telemetry_records_buffered')) === 0 ? true : undefined), 30_000);
    expect(await Promise.all(AGENT_ADMINS.map(dropped))).toEqual(droppedBefore);
    const sent = load.answers.length;
    const counted = await until('the collector to count every request', async () => {
      const n = (await sourceRecords()) - before;
      return n >= sent ? n : undefined;
    }, 60_000).catch(async () => (await sourceRecords()) - before);
    report(`NATS node 1 SIGKILL: a config write after it served by the ingress after ${seenAt - killedAt} ms; requests ${sent}, failed 0; the collector counted ${counted} of ${sent}`);
    expect(counted).toBeGreaterThanOrEqual(sent);
    await mesh.waitFor('nats-server-1 restarted', 60_000);
    await apply(mesh, demoVirtualService(), PILOTS[0]);
  });

  it('a citadel replica SIGKILLed: 0 failed requests; every proxy renews its certificate through the other, signed by the same CA', async () => {
    const load = requestLoops(4, '/', { perLoopPerSecond: 50 });
    const issuedBefore = await workloadCertsIssued(CITADELS[1]);
    let killedAt = 0;
    let renewedAt = 0;
    let issuedWhileDown = 0;
    try {
      await until('200 answers before the fault', async () => (load.answers.length >= 200 ? true : undefined));
      killedAt = Date.now();
      process.kill(firstPid(mesh.stateDir, 'citadel'), 'SIGKILL');
      // A certificate whose notAfter is past kill + TTL was issued after the kill.
      const threshold = killedAt / 1000 + CERT_TTL_SECONDS;
      renewedAt = await until('every proxy holding a certificate issued after the kill', async () => ((await certificateExpiries()).every((e) => e > threshold) ? Date.now() : undefined), 3 * CERT_TTL_SECONDS * 1000);
      issuedWhileDown = (await workloadCertsIssued(CITADELS[1])) - issuedBefore;
      await mesh.waitFor('citadel is ready again (restart 1)', 60_000);
      const from = load.answers.length;
      await until('200 more answers', async () => (load.answers.length - from >= 200 ? true : undefined));
    } finally {
      await load.stop();
    }
    expectNoFailures(load);
    const bundles = await Promise.all(CITADELS.map(async (c) => (await fetch(`${c}/api/v1/bundle`)).json()));
    expect(bundles[1]).toEqual(bundles[0]);
    report(`citadel SIGKILL: every proxy renewed ${renewedAt - killedAt} ms after the kill; citadel-2 issued ${issuedWhileDown} workload certificates meanwhile; requests ${load.answers.length}, failed 0`);
    expect(issuedWhileDown).toBeGreaterThan(0);
  });

  it('a collector replica SIGKILLed: 0 failed requests; the other counts every request; the restarted one rebuilds the same graph', async () => {
    // Both collectors caught up with every earlier record before the load starts.
    const caughtUp = async (c: string): Promise<boolean> => {
      const a = await sourceRecords(c);
      await new Promise((r) => setTimeout(r, 1_500));
      return (await sourceRecords(c)) === a;
    };
    await until('both collectors caught up', async () => ((await caughtUp(COLLECTORS[0])) && (await caughtUp(COLLECTORS[1])) ? true : undefined), 30_000);
    const before = await sourceRecords(COLLECTORS[1]);
    const load = requestLoops(4, '/', { perLoopPerSecond: 100 });
    let atKill = 0;
    let t0 = 0;
    try {
      await until('200 answers before the fault', async () => (load.answers.length >= 200 ? true : undefined));
      atKill = load.answers.length;
      t0 = Date.now();
      // The launcher's output names every restart: the collector's current pid is its last one.
      const earlier = [...mesh.output.matchAll(/telemetry-collector restarted \(pid (\d+), restart (\d+)\)/g)];
      if (earlier.length > 0) {
        const log = readFileSync(join(mesh.stateDir, 'logs', 'telemetry-collector.log'), 'utf8').split('\n');
        report(`telemetry-collector had restarted before this test (${earlier.length}×): ${mesh.output.split('\n').filter((l) => l.startsWith('telemetry-collector exited')).join(' | ')}; log errors: ${log.filter((l) => /"level":(50|60)/.test(l)).slice(-5).join(' | ')}`);
      }
      const restarts = earlier.length;
      process.kill(earlier.length > 0 ? Number(earlier.at(-1)![1]) : firstPid(mesh.stateDir, 'telemetry-collector'), 'SIGKILL');
      await mesh.waitFor(`telemetry-collector is ready again (restart ${restarts + 1})`, 60_000);
      const from = load.answers.length;
      await until('200 more answers', async () => (load.answers.length - from >= 200 ? true : undefined));
    } finally {
      await load.stop();
    }
    const stoppedAt = Date.now();
    expectNoFailures(load);
    await until('telemetry delivered', async () => ((await counter(`${AGENT_ADMINS[0]}/metrics`, 'aviary_agent_telemetry_records_buffered')) === 0 ? true : undefined), 30_000);
    const sent = load.answers.length;
    const survivor = await until('the surviving collector to count every request', async () => {
      const n = (await sourceRecords(COLLECTORS[1])) - before;
      return n >= sent ? n : undefined;
    }, 60_000).catch(async () => (await sourceRecords(COLLECTORS[1])) - before);
    expect(survivor).toBeGreaterThanOrEqual(sent);
    // The restarted replica counts (from zero: a counter reset) what it had not acknowledged.
    const restarted = await until('the restarted collector to count every request since the crash', async () => {
      const n = await sourceRecords(COLLECTORS[0]);
      return n >= sent - atKill ? n : undefined;
    }, 60_000).catch(() => sourceRecords(COLLECTORS[0]));
    expect(restarted).toBeGreaterThanOrEqual(sent - atKill);
    // The same graph, whichever replica is asked: the restarted one read the records it had
    // counted before the crash back from the stream. Both are asked for the window that covers
    // the whole load, with no traffic meanwhile.
    const window = `${Math.ceil((Date.now() - t0) / 1000) + 30}s`;
    await until('both collectors to show the same graph', async () => {
      const [a, b] = await Promise.all(COLLECTORS.map((c) => graphRequests(c, window)));
      return a !== undefined && a === b && a >= sent ? true : undefined;
    }, 30_000).catch(async () => {
      const [a, b] = await Promise.all(COLLECTORS.map((c) => graphRequests(c, window)));
      expect(a).toBe(b);
      expect(a).toBeGreaterThanOrEqual(sent);
    });
    const graphs = await Promise.all(COLLECTORS.map((c) => graphRequests(c, window)));
    report(`collector SIGKILL → ready again after ${stoppedAt - t0} ms or less (launcher back-off ${RESTART_INITIAL_MS} ms); requests ${sent} (${sent - atKill} after the crash): the survivor counted ${survivor}, the restarted one ${restarted} (from zero); hello requests in both graphs over ${window}: ${graphs.join(' / ')}`);
  });

  it('graceful shutdown stops every replica and node', async () => {
    expect(await mesh.stop()).toBe(0);
    expect(mesh.output).toMatch(/nats-server-3\s+stopped/);
    expect(mesh.output).toMatch(/pilot-2\s+exited 0/);
  });
});
