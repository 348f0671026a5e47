import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { LocalMesh, root } from '../support/mesh';

const pilot = 'http://127.0.0.1:15014';
const bookinfo = readFileSync(join(root, 'apps/pilot/src/lib/__fixtures__/bookinfo.yaml'), 'utf8');
const stateDir = mkdtempSync(join(tmpdir(), 'aviary-e2e-config-'));
let mesh: LocalMesh | undefined;

afterAll(async () => {
  await mesh?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

async function apply(body: string, token: string, query = ''): Promise<Response> {
  return fetch(`${pilot}/api/v1/config${query}`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' } });
}

describe('mesh config through the running local mesh', () => {
  it('applies Bookinfo, shows a dry-run diff, refuses invalid documents, announces changes, and survives a restart', async () => {
    mesh = await LocalMesh.start({ stateDir });
    const token = mesh.token;
    const nc = await connect(mesh.natsObserver);
    const events: string[] = [];
    const sub = nc.subscribe('aviary.config.v1.changed', { callback: (_e, m) => void events.push((m.json() as { data: { op: string; kind: string; name: string } }).data.kind) });
    await nc.flush();

    const created = await apply(bookinfo, token);
    expect(created.status, await created.clone().text()).toBe(200);
    expect(((await created.json()) as { results: unknown[] }).results).toHaveLength(5);
    for (let i = 0; i < 100 && events.length < 5; i++) await new Promise((r) => setTimeout(r, 20));
    expect(events.sort()).toEqual(['DestinationRule', 'ServiceEntry', 'VirtualService', 'WorkloadEntry', 'WorkloadEntry']);

    const dry = await apply(bookinfo.replace('weight: 90', 'weight: 70').replace('weight: 10', 'weight: 30'), token, '?dryRun=true');
    const plan = (await dry.json()) as { results: Array<{ kind: string; action: string; diff?: Array<{ path: string; from: number; to: number }> }> };
    expect(plan.results.find((r) => r.kind === 'VirtualService')).toMatchObject({ action: 'updated', diff: [{ path: 'spec.http[1].route[0].weight', from: 90, to: 70 }, { path: 'spec.http[1].route[1].weight', from: 10, to: 30 }] });

    const invalid = await apply('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [x]\n  http:\n  - route:\n    - destination: {host: x}\n      weight: 30\n    - destination: {host: y}\n      weight: -30\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: y}\nspec: {host: y, unknownField: 1}\n', token);
    expect(invalid.status).toBe(400);
    const errors = ((await invalid.json()) as { details: { errors: Array<{ document: number; path: string }> } }).details.errors;
    expect(errors.map((e) => e.document)).toEqual(expect.arrayContaining([0, 1]));
    expect(errors.some((e) => e.document === 1 && e.path === 'spec.unknownField')).toBe(true);

    await sub.drain();
    await nc.close();
    expect(await mesh.stop({ keepState: true })).toBe(0);

    mesh = await LocalMesh.start({ stateDir });
    const after = (await (await fetch(`${pilot}/api/v1/config/workloadentries/default`)).json()) as { items: Array<{ metadata: { name: string } }> };
    expect(after.items.map((i) => i.metadata.name)).toEqual(['reviews-v1', 'reviews-v2']);
    const vs = (await (await fetch(`${pilot}/api/v1/config/virtualservices/default/reviews`)).json()) as { spec: { http: Array<{ route: Array<{ weight: number }> }> } };
    expect(vs.spec.http[1]?.route.map((r) => r.weight)).toEqual([90, 10]);
  });
});
