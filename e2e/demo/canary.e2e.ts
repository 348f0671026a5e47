import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh, root } from '../support/mesh';
import { apply, CANARY_MESH_ENV, COLLECTOR, demoVirtualService, HOST, PILOT, remove, requestLoops, until, type Answer } from '../support/demo';

/**
 * Progressive delivery in the local mesh demo: a Canary drives the demo VirtualService's route
 * from v1 to v2 under load through the ingress gateway. Short intervals: the collector publishes
 * summaries every second over a 3 s window, the controller ticks every 250 ms, analyses run every
 * 2 s (the 50 % step lasts 10 s, so the canary is still in flight for the dashboard screenshot). The measured numbers are printed
 * (and asserted against bounds).
 */

const INTERVAL_MS = 2_000;
let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({
    args: ['--demo', '--keep-going'],
    env: CANARY_MESH_ENV,
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});

const canary = `apiVersion: networking.aviary.dev/v1alpha1
kind: Canary
metadata: { name: hello, namespace: demo }
spec:
  target: { virtualService: hello, route: hello }
  stable: { host: ${HOST}, subset: v1 }
  canary: { host: ${HOST}, subset: v2 }
  steps: [{ weight: 20 }, { weight: 50, minDurationSeconds: 10 }, { weight: 80 }]
  analysis: { interval: ${INTERVAL_MS / 1000}s, maxDataAge: 5s, minRequests: 10, successRate: 95, p99LatencyMs: 3000, failedChecksLimit: 2 }
  failurePolicy: Rollback
`;

interface Status {
  phase: string;
  currentWeight: number;
  lastTransitionTime: string;
  lastAnalysis?: { time: string; verdict: string; canary: { requests: number; successRate: number; p99Ms: number } };
}
interface Sample {
  t: number;
  status: Status | undefined;
}

const canaryStatus = async (): Promise<Status | undefined> => ((await (await fetch(`${PILOT}/api/v1/canaries/demo/hello`)).json()) as { status?: Status }).status;

/** Polls the Canary every 100 ms until `done`; every distinct status is kept with the time it was seen. */
async function watch(done: (s: Status) => boolean, timeoutMs: number): Promise<Sample[]> {
  const seen: Sample[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await canaryStatus().catch(() => undefined);
    if (JSON.stringify(s) !== JSON.stringify(seen.at(-1)?.status)) seen.push({ t: Date.now(), status: s });
    if (s !== undefined && done(s)) return seen;
    if (Date.now() > deadline) throw new Error(`canary not finished in ${timeoutMs} ms: ${JSON.stringify(seen.slice(-5))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The collector's dashboard in headless Chromium once it shows the canary in flight: the README's screenshot. */
async function screenshotInFlight(): Promise<{ phase: string | null; weight: string | null }> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${COLLECTOR}/dashboard?window=30s&refresh=500`);
    const card = await page.waitForSelector('#canaries .canary[data-phase="Progressing"]', { timeout: 15_000 });
    await page.waitForSelector('svg#graph g.node[data-id="workload:demo/hello@v2"]', { timeout: 15_000 });
    const dir = join(root, 'docs', 'images');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'canary-dashboard.png'), fullPage: true });
    return { phase: await card.getAttribute('data-phase'), weight: await card.getAttribute('data-weight') };
  } finally {
    await browser.close();
  }
}

const count = (answers: readonly Answer[], f: (a: Answer) => boolean): number => answers.filter(f).length;

async function restart(): Promise<void> {
  await remove(mesh, 'canaries', 'hello');
  await apply(mesh, demoVirtualService({ v1: 100, v2: 0 }));
}

describe('canary in the local demo', () => {
  it('takes a healthy v2 from 0 to 100 % through the steps with no failed request', async () => {
    await apply(mesh, demoVirtualService({ v1: 100, v2: 0 }));
    const load = requestLoops(4);
    await until('traffic through the ingress', async () => (load.answers.length > 50 ? true : undefined));
    const started = Date.now();
    await apply(mesh, canary);
    const [timeline, shot] = await Promise.all([watch((s) => s.phase !== 'Progressing' && s.phase !== 'Pending', 60_000), screenshotInFlight()]);
    const promotedAt = Date.now();
    expect(shot.phase).toBe('Progressing');
    // Requests sent after promotion reach v2 only once the proxies have the new route.
    await until('all traffic on v2', async () => (load.answers.slice(-20).every((a) => a.version === 'v2') ? true : undefined));
    await load.stop();
    const final = timeline.at(-1)!.status!;
    expect(final).toMatchObject({ phase: 'Promoted', currentWeight: 100 });
    const weights = [...new Set(timeline.map((s) => s.status?.currentWeight ?? 0))];
    expect(weights).toEqual([20, 50, 80, 100].filter((w) => weights.includes(w)));
    expect(weights.at(-1)).toBe(100);
    const failed = count(load.answers, (a) => a.status !== 200) + load.failures.length;
    console.log(
      `[canary e2e] healthy: promoted in ${((promotedAt - started) / 1000).toFixed(1)} s; weights seen ${weights.join(' → ')}; ` +
        `${load.answers.length} requests (${count(load.answers, (a) => a.version === 'v2')} to v2), ${failed} failed`,
    );
    expect(failed).toBe(0);
  });

  it('rolls a v2 that fails 20 % of its requests back to 0 within two analysis intervals', async () => {
    await restart();
    const load = requestLoops(4, '/fail-percent/v2/20');
    await until('v1-only traffic', async () => (load.answers.length > 50 && load.answers.slice(-20).every((a) => a.version === 'v1') ? true : undefined));
    const startIndex = load.answers.length;
    const started = Date.now();
    await apply(mesh, canary);
    const timeline = await watch((s) => s.phase !== 'Progressing' && s.phase !== 'Pending', 60_000);
    const final = timeline.at(-1)!;
    expect(final.status).toMatchObject({ phase: 'RolledBack', currentWeight: 0 });
    const firstFailed = timeline.find((s) => s.status?.lastAnalysis?.verdict === 'Failed')!;
    const firstFailedAt = Date.parse(firstFailed.status!.lastAnalysis!.time);
    const rolledBackAt = Date.parse(final.status!.lastTransitionTime);
    // The rollback is written by the analysis after the first failed one: one interval later.
    expect(rolledBackAt - firstFailedAt).toBeLessThanOrEqual(2 * INTERVAL_MS);
    // Then no request reaches v2 once the proxies have the route back (and none fails after that).
    await until('all traffic back on v1', async () => (load.answers.slice(-40).every((a) => a.version === 'v1') ? true : undefined));
    const settledIndex = load.answers.length;
    await new Promise((r) => setTimeout(r, 1_000));
    await load.stop();
    const episode = load.answers.slice(startIndex, settledIndex);
    const failed = count(episode, (a) => a.status !== 200) + load.failures.length;
    const toV2 = count(episode, (a) => a.version === 'v2');
    console.log(
      `[canary e2e] failing v2 (20 %): first failed analysis ${((firstFailedAt - started) / 1000).toFixed(1)} s after the Canary was applied, ` +
        `rolled back ${((rolledBackAt - firstFailedAt) / 1000).toFixed(1)} s later (${((rolledBackAt - started) / 1000).toFixed(1)} s in all); ` +
        `episode: ${episode.length} user requests, ${toV2} to v2, ${failed} failed (${((100 * failed) / Math.max(1, episode.length)).toFixed(2)} %); ` +
        `last analysis: ${JSON.stringify(final.status!.lastAnalysis?.canary)}`,
    );
    // Bounded: only the canary's share (20 %) of requests can fail, 20 % of those.
    expect(failed / episode.length).toBeLessThan(0.1);
    expect(count(load.answers.slice(settledIndex), (a) => a.status !== 200)).toBe(0);
  });
});

describe('canary latency gate', () => {
  it('rolls back a v2 whose p99 regresses past the gate (400 ms delay, gate 200 ms)', async () => {
    await restart();
    const load = requestLoops(8, '/delay-if/v2/400');
    await until('v1-only traffic', async () => (load.answers.length > 50 && load.answers.slice(-20).every((a) => a.version === 'v1') ? true : undefined));
    const started = Date.now();
    await apply(mesh, canary.replace('p99LatencyMs: 3000', 'p99LatencyMs: 200'));
    const timeline = await watch((s) => s.phase !== 'Progressing' && s.phase !== 'Pending', 60_000);
    await load.stop();
    const final = timeline.at(-1)!.status! as Status & { message?: string };
    expect(final).toMatchObject({ phase: 'RolledBack', currentWeight: 0 });
    expect(final.message).toMatch(/p99 [\d.]+ms > 200ms/);
    console.log(`[canary e2e] latency regression: rolled back ${((Date.parse(final.lastTransitionTime) - started) / 1000).toFixed(1)} s after the Canary was applied; ${final.message}`);
    expect(count(load.answers, (a) => a.status !== 200) + load.failures.length).toBe(0);
  });
});
