import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { Registry } from 'prom-client';
import { buildAdminApp, listenAdmin, type AdminApp } from '@aviary/admin-api';
import { createLogger } from '@aviary/observability';
import { sampleRecord, ServiceGraph, type TelemetryRecord } from '@aviary/telemetry';
import { telemetryRoutes } from './api';
import { CanaryTimeline } from './canaries';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const NOW = Date.parse('2025-01-01T00:10:00Z');

/** A known graph: ingress → productpage → reviews (v1 healthy, v2 failing 20 %) and ratings. */
function knownGraph(): ServiceGraph {
  const g = new ServiceGraph({ slotMs: 1000, retentionMs: 600_000, maxEdges: 100 });
  const add = (n: number, over: (i: number) => Partial<TelemetryRecord>) => {
    for (let i = 0; i < n; i++) g.add(sampleRecord(over(i)), NOW - 299_000 + ((i * 7919) % 299_000));
  };
  add(1200, () => ({
    sourceWorkload: '', sourceNamespace: '', sourcePrincipal: '', sourceApp: undefined, sourceVersion: undefined,
    destinationWorkload: 'productpage-v1', destinationApp: 'productpage', destinationVersion: 'v1',
    destinationService: 'productpage.default.svc.cluster.local', connectionSecurityPolicy: 'none', durationMs: 30,
  }));
  add(900, () => ({ destinationWorkload: 'reviews-v1', destinationVersion: 'v1', durationMs: 8 }));
  add(300, (i) => ({ destinationWorkload: 'reviews-v2', destinationVersion: 'v2', responseCode: i % 5 === 0 ? 503 : 200, durationMs: i % 50 === 0 ? 900 : 40 }));
  add(300, () => ({
    sourceWorkload: 'reviews-v2', sourceApp: 'reviews', sourceVersion: 'v2',
    destinationWorkload: 'ratings-v1', destinationApp: 'ratings', destinationVersion: 'v1', destinationService: 'ratings.default.svc.cluster.local', durationMs: 3,
  }));
  return g;
}

describe('dashboard in headless Chromium', () => {
  let admin: AdminApp;
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    const graph = knownGraph();
    const canaries = new CanaryTimeline();
    const at = (s: number) => new Date(NOW - 240_000 + s * 1000).toISOString();
    const sample = { requests: 180, successRate: 100, p99Ms: 12, time: at(60) };
    canaries.add({ namespace: 'default', name: 'reviews', from: { phase: 'Pending', weight: 0 }, to: { phase: 'Progressing', weight: 10 }, stepIndex: 0, reason: 'Started', message: 'canary weight 10%', time: at(0) });
    canaries.add({ namespace: 'default', name: 'reviews', from: { phase: 'Progressing', weight: 10 }, to: { phase: 'Progressing', weight: 50 }, stepIndex: 1, reason: 'StepAdvanced', message: 'canary weight 50%', time: at(60), analysis: { verdict: 'Passed', canary: sample, reasons: [] } });
    canaries.add({
      namespace: 'shop', name: 'ratings', from: { phase: 'Progressing', weight: 20 }, to: { phase: 'RolledBack', weight: 0 }, stepIndex: 0, reason: 'RolledBack', message: '2 consecutive failed analyses', time: at(90),
      analysis: { verdict: 'Failed', canary: { ...sample, successRate: 80 }, reasons: ['success rate 80% < 99%'] },
    });
    admin = await buildAdminApp(
      { app: 'telemetry-collector', version: 'test', description: 'test', logger: createLogger('test', 'silent'), registry: new Registry(), adminToken: '', bodyLimit: 1 << 20, readiness: [] },
      telemetryRoutes({ graph, canaries, istioRegistry: new Registry(), now: () => NOW }),
    );
    url = `http://127.0.0.1:${await listenAdmin(admin, '127.0.0.1', 0)}`;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await admin?.close();
  });

  it('draws the nodes and edges of a known graph, with mTLS locks and golden-signal charts', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${url}/?window=5m&refresh=60000`);
    expect(page.url()).toBe(`${url}/dashboard?window=5m&refresh=60000`); // / redirects, keeping the query
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 10_000 });

    const nodes = await page.$$eval('svg#graph g.node', (els) => els.map((e) => `${e.getAttribute('data-kind')} ${e.getAttribute('data-id')}`).sort());
    expect(nodes).toEqual([
      'service service:productpage.default.svc.cluster.local',
      'service service:ratings.default.svc.cluster.local',
      'service service:reviews.default.svc.cluster.local',
      'unknown unknown',
      'workload workload:default/productpage@v1',
      'workload workload:default/ratings@v1',
      'workload workload:default/reviews@v1',
      'workload workload:default/reviews@v2',
    ]);
    const edges = await page.$$eval('svg#graph path.edge', (els) =>
      els.map((e) => ({ id: e.getAttribute('data-id'), width: Number(e.getAttribute('stroke-width')), colour: e.getAttribute('stroke'), rate: Number(e.getAttribute('data-rate')) })),
    );
    expect(edges).toHaveLength(7);
    const byId = new Map(edges.map((e) => [e.id, e]));
    const v1 = byId.get('service:reviews.default.svc.cluster.local->workload:default/reviews@v1')!;
    const v2 = byId.get('service:reviews.default.svc.cluster.local->workload:default/reviews@v2')!;
    expect(v1.rate).toBe(3);
    expect(v2.rate).toBe(1);
    expect(v1.width).toBeGreaterThan(v2.width); // thickness by rate
    expect(v1.colour).toBe('#22c55e'); // healthy
    expect(v2.colour).toBe('#ef4444'); // 20 % errors
    // Every mTLS edge carries a lock; the two plaintext ingress hops do not.
    expect(await page.locator('svg#graph g.lock').count()).toBe(5);
    const names = await page.$$eval('svg#graph g.node text.name', (els) => els.map((e) => e.textContent));
    expect(names).toEqual(expect.arrayContaining(['reviews', 'reviews v1', 'reviews v2', 'productpage']));
    const canaryCards = await page.$$eval('#canaries .canary', (els) => els.map((e) => [e.getAttribute('data-canary'), e.getAttribute('data-phase'), e.getAttribute('data-weight'), e.querySelector('svg.weights text')?.textContent, e.querySelector('.gates')?.textContent]));
    expect(canaryCards).toEqual([
      ['default/reviews', 'Progressing', '50', '10% → 50%', 'last analysis Passed: 180 req, 100% ok, p99 12.0ms'],
      ['shop/ratings', 'RolledBack', '0', '0%', 'last analysis Failed: 180 req, 80% ok, p99 12.0mssuccess rate 80% < 99%'],
    ]);
    const cards = await page.$$eval('#charts .card', (els) => els.map((e) => e.getAttribute('data-service')));
    expect(cards).toEqual(['productpage.default.svc.cluster.local', 'ratings.default.svc.cluster.local', 'reviews.default.svc.cluster.local']);
    expect(await page.locator('#charts .card svg.chart').count()).toBe(9);
    expect(errors).toEqual([]);
    expect(requests.every((r) => r.startsWith(url))).toBe(true); // self-contained: nothing from elsewhere

    const dir = join(process.cwd(), 'test-results');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'dashboard.png'), fullPage: true });
  });
});
