import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildAdminApp, listenAdmin, type AdminApp } from '@aviary/admin-api';
import { parseConfig } from '@aviary/config';
import { KvConfigStore } from '@aviary/config-store';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { configApi } from '../../apps/pilot/src/lib/config-api';
import { cliConfig } from './config';
import { runCommand } from './commands';

const dir = mkdtempSync(join(tmpdir(), 'aviary-cli-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const vs = (weights: [number, number]) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v1}
      weight: ${weights[0]}
    - destination: {host: reviews.default.svc.cluster.local, subset: v2}
      weight: ${weights[1]}
`;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l) }, out, err };
}

function config(pilotUrl = 'http://127.0.0.1:1') {
  const r = parseConfig(cliConfig, ['--pilot-url', pilotUrl, '--admin-token', 'tok'], {});
  if (r.kind !== 'config') throw new Error('config');
  return r.config;
}

describe('aviary CLI, offline', () => {
  it('validates with the same paths as pilot and exits 1 on errors', async () => {
    const c = capture();
    expect(await runCommand(['validate', '-f', file('bad.yaml', vs([60, 30]))], config(), c.io)).toBe(1);
    expect(c.err.join('\n')).toContain('document 0 (line 1): spec.http[0].route[1].weight: route weights must sum to 100');
    const ok = capture();
    expect(await runCommand(['validate', '-f', file('good.yaml', vs([80, 20]))], config(), ok.io)).toBe(0);
    expect(ok.out).toEqual(['1 document(s) valid']);
  });

  it('analyzes a file: a route to subsets no DestinationRule defines', async () => {
    const c = capture();
    expect(await runCommand(['analyze', '-f', file('a.yaml', vs([80, 20]))], config(), c.io)).toBe(1);
    expect(c.out.join('\n')).toContain('IST0101');
  });

  it('explains an unknown command', async () => {
    const c = capture();
    expect(await runCommand(['frobnicate'], config(), c.io)).toBe(2);
    expect(c.err[0]).toContain('unknown command "frobnicate"');
  });
});

describe('aviary CLI against pilot', () => {
  let nats: NatsServer;
  let bus: Bus;
  let app: AdminApp;
  let url: string;

  beforeAll(async () => {
    nats = await NatsServer.start();
    bus = await Bus.connect({ url: nats.url, source: 'test', logger: pino({ level: 'silent' }), registry: new Registry() });
    const store = await KvConfigStore.open(bus);
    app = await buildAdminApp(
      { app: 'pilot', version: 't', description: 't', logger: pino({ level: 'silent' }), registry: new Registry(), adminToken: 'tok', bodyLimit: 1 << 20, readiness: [] },
      configApi({ store, limits: { maxDocuments: 100, maxKeys: 20_000 } }),
    );
    url = `http://127.0.0.1:${await listenAdmin(app, '127.0.0.1', 0)}`;
  });
  afterAll(async () => {
    await app?.close();
    await bus?.close();
    await nats?.stop();
  });

  it('applies, dry-runs with a diff, gets and deletes', async () => {
    const a = capture();
    expect(await runCommand(['apply', '-f', file('v1.yaml', vs([80, 20]))], config(url), a.io)).toBe(0);
    expect(a.out).toEqual(['virtualservice/reviews (default) created']);
    const d = capture();
    expect(await runCommand(['apply', '--dry-run', '-f', file('v2.yaml', vs([50, 50]))], config(url), d.io)).toBe(0);
    expect(d.out).toEqual(['virtualservice/reviews (default) updated (dry run)', '  spec.http[0].route[0].weight: 80 -> 50', '  spec.http[0].route[1].weight: 20 -> 50']);
    const g = capture();
    expect(await runCommand(['get', 'vs'], config(url), g.io)).toBe(0);
    expect(g.out[0]).toMatch(/^default\s+reviews\s+\d+$/);
    const y = capture();
    await runCommand(['get', 'vs', 'reviews', '-o', 'yaml'], config(url), y.io);
    expect(y.out.join('\n')).toContain('weight: 80');
    const bad = capture();
    await expect(runCommand(['apply', '-f', file('bad2.yaml', vs([10, 10]))], config(url), bad.io)).rejects.toThrow('spec.http[0].route[1].weight');
    const del = capture();
    expect(await runCommand(['delete', 'vs', 'reviews'], config(url), del.io)).toBe(0);
    await expect(runCommand(['get', 'vs', 'reviews'], config(url), capture().io)).rejects.toThrow('404 RESOURCE_NOT_FOUND');
  });
});
