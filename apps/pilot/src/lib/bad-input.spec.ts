import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildAdminApp, listenAdmin, type AdminApp } from '@aviary/admin-api';
import { KvConfigStore } from '@aviary/config-store';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { configApi } from './config-api';

// Hostile input against pilot's config API over a real socket: it is answered with a clear 4xx,
// /healthz keeps answering meanwhile, and nothing of it stays in memory afterwards.

const token = 't0ken';
const fiftyThousandKeys = `${Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`).join('\n')}\n`;

let nats: NatsServer;
let bus: Bus;
let app: AdminApp;
let base: string;

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger: pino({ level: 'silent' }), registry: new Registry() });
  const store = await KvConfigStore.open(bus, { bucket: 'bad_input' });
  app = await buildAdminApp(
    { app: 'pilot', version: 't', description: 't', logger: pino({ level: 'silent' }), registry: new Registry(), adminToken: token, bodyLimit: 1024 * 1024, readiness: [] },
    configApi({ store, limits: { maxDocuments: 500, maxKeys: 5_000 } }),
  );
  base = `http://127.0.0.1:${await listenAdmin(app, '127.0.0.1', 0)}`;
});
afterAll(async () => {
  await app?.close();
  await bus?.close();
  await nats?.stop();
});

const post = (body: string) =>
  fetch(`${base}/api/v1/config`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' } });

/** Polls /healthz on its own connection until stopped; returns the slowest answer (or Infinity if one never came). */
function pollHealthz(): { stop(): Promise<{ polls: number; slowestMs: number }> } {
  let running = true;
  let polls = 0;
  let slowestMs = 0;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const ok = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.ok, () => false);
      slowestMs = Math.max(slowestMs, ok ? performance.now() - t : Infinity);
      polls++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { polls, slowestMs };
    },
  };
}

describe('pilot under hostile config input', () => {
  it('refuses the 488 KB, 50,000-key document with 413 naming the limit while /healthz keeps answering', async () => {
    const health = pollHealthz();
    const res = await post(fiftyThousandKeys);
    const { polls, slowestMs } = await health.stop();
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'TOO_MANY_KEYS', details: { limit: 'keys' } });
    expect(polls).toBeGreaterThan(0);
    expect(slowestMs).toBeLessThan(5_000); // answered at all; no finer timing claim on a shared machine
  });

  it('returns to its heap baseline after 1,000 rejected POSTs', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const lol = ['a: &a [x,x,x,x,x,x,x,x,x,x]'];
    for (let i = 1; i < 9; i++) lol.push(`l${i}: &l${i} [${Array(10).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
    const invalid = Array.from({ length: 60 }, (_, i) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad${i}}\nspec: {hosts: [a], bogus: ${'x'.repeat(200)}}\n`).join('---\n');
    const bad = [
      lol.join('\n'), // alias bomb: 400
      `${'['.repeat(5000)}${']'.repeat(5000)}`, // nesting: 400
      invalid, // 60 documents failing validation: 400 with 20 listed problems
      fiftyThousandKeys.slice(0, 60_000), // 6,000 keys: 413
      `kind: A\n${'x: [\n'.repeat(500)}`, // syntax errors: 400
    ];
    const send = async (n: number): Promise<Record<number, number>> => {
      const statuses: Record<number, number> = {};
      for (let i = 0; i < n; i++) {
        const res = await post(bad[i % bad.length]!);
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
      return statuses;
    };
    await send(50); // warm-up: code paths compiled, pools filled
    gc();
    const baseline = process.memoryUsage().heapUsed;
    const statuses = await send(1000);
    gc();
    const after = process.memoryUsage().heapUsed;
    expect(Object.keys(statuses).sort()).toEqual(['400', '413']);
    // Nothing of a thousand rejected bodies (≈ 20 MB in all, each parsed into far more) is kept.
    expect(after - baseline).toBeLessThan(8 * 1024 * 1024);
  }, 300_000);
});
