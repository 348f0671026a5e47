import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSnapshot, SnapshotBuilder, type MeshSnapshot, type ModelChangeEvent, type ModelObject } from './index';
import { WorkloadSelection } from './workloads';

const options = { trustDomain: 'cluster.local' };
const namespaces = ['a', 'b'] as const;
const apps = ['x', 'y', 'z'] as const;

function obj(kind: string, namespace: string, name: string, spec: unknown): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}

/** ServiceEntries: one per (namespace, app), one selecting two labels, one with an empty selector, one claiming a host twice. */
function serviceEntries(): ModelObject[] {
  const out: ModelObject[] = [];
  for (const ns of namespaces) {
    for (const app of apps) {
      out.push(obj('ServiceEntry', ns, `se-${app}`, { hosts: [`${app}.${ns}.svc.cluster.local`], ports: [{ number: 80, name: 'http' }, { number: 9090, name: 'grpc', targetPort: 9091 }], resolution: 'STATIC', workloadSelector: { labels: { app } } }));
    }
    out.push(obj('ServiceEntry', ns, 'se-x-v2', { hosts: [`x-v2.${ns}.svc.cluster.local`], ports: [{ number: 80, name: 'http' }], workloadSelector: { labels: { app: 'x', version: 'v2' } } }));
    out.push(obj('ServiceEntry', ns, 'se-all', { hosts: [`all.${ns}.svc.cluster.local`], ports: [{ number: 80, name: 'http' }], workloadSelector: { labels: {} } }));
    // claims the host of se-x as well: only the first declaration (by key) counts
    out.push(obj('ServiceEntry', ns, 'se-z-dup', { hosts: [`x.${ns}.svc.cluster.local`, `z2.${ns}.svc.cluster.local`], ports: [{ number: 80, name: 'http' }], workloadSelector: { labels: { app: 'z' } } }));
  }
  return out;
}

const workloadArb = fc.record({
  namespace: fc.constantFrom(...namespaces),
  name: fc.constantFrom('w0', 'w1', 'w2', 'w3', 'w4', 'w5'),
  app: fc.option(fc.constantFrom(...apps), { nil: undefined }),
  version: fc.option(fc.constantFrom('v1', 'v2'), { nil: undefined }),
  address: fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', 'not-an-ip', '2001:db8::1'),
  sa: fc.option(fc.constantFrom('sa1', 'sa2'), { nil: undefined }),
  grpcPort: fc.option(fc.constantFrom(7000, 7001), { nil: undefined }),
});
type Workload = typeof workloadArb extends fc.Arbitrary<infer T> ? T : never;

function workloadEntry(w: Workload): ModelObject {
  const labels = { ...(w.app && { app: w.app }), ...(w.version && { version: w.version }) };
  return obj('WorkloadEntry', w.namespace, w.name, { address: w.address, labels, ...(w.sa && { serviceAccount: w.sa }), ...(w.grpcPort && { ports: { grpc: w.grpcPort } }) });
}

const opArb = fc.oneof(
  { arbitrary: workloadArb.map((w) => ({ op: 'put' as const, w })), weight: 6 },
  { arbitrary: workloadArb.map((w) => ({ op: 'delete' as const, w })), weight: 3 },
  { arbitrary: workloadArb.map((w) => ({ op: 'invalid' as const, w })), weight: 1 },
);

const refOf = (o: ModelObject) => ({ kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name });
const keyOf = (o: ModelObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;

/** Everything about the registry a translator can see, as one comparable value. */
function registryView(s: MeshSnapshot) {
  return {
    services: JSON.stringify(s.services.all()),
    endpoints: s.services.all().map((svc) => [svc.hostname, s.endpoints.fingerprint(svc.hostname)]),
    at: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '2001:db8::1'].map((ip) => [ip, [...s.endpoints.hostsAt(ip)].sort()]),
    problems: JSON.stringify(s.problems),
  };
}

describe('incremental WorkloadEntry builds', () => {
  it('equal a from-scratch build after any sequence of WorkloadEntry batches, and report exactly the changed hosts', () => {
    fc.assert(
      fc.property(fc.array(workloadArb, { maxLength: 8 }), fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), (initial, batches) => {
        const objects = new Map<string, ModelObject>();
        const builder = new SnapshotBuilder(options);
        for (const o of [...serviceEntries(), ...initial.map(workloadEntry)]) {
          objects.set(keyOf(o), o);
          builder.apply({ op: 'created', ref: refOf(o), object: o });
        }
        let previous = builder.build().snapshot;
        for (const batch of batches) {
          for (const { op, w } of batch) {
            const o = op === 'invalid' ? { ...workloadEntry(w), spec: 'not an object' } : workloadEntry(w);
            const event: ModelChangeEvent = op === 'delete' ? { op: 'deleted', ref: refOf(o) } : { op: 'updated', ref: refOf(o), object: o };
            if (op === 'delete') objects.delete(keyOf(o));
            else objects.set(keyOf(o), o);
            builder.apply(event);
          }
          const delta = builder.build();
          const full = buildSnapshot(objects.values(), options);
          expect(registryView(delta.snapshot)).toEqual(registryView(full));
          const hosts = full.services.all().map((s) => s.hostname);
          const changed = hosts.filter((h) => previous.endpoints.fingerprint(h) !== full.endpoints.fingerprint(h));
          expect(delta.endpointsChanged).toEqual(changed);
          expect(delta.servicesChanged).toEqual([]);
          // services are untouched by WorkloadEntries: the same index object
          expect(delta.snapshot.services).toBe(previous.services);
          previous = delta.snapshot;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a ServiceEntry change between WorkloadEntry batches still equals a from-scratch build', () => {
    const builder = new SnapshotBuilder(options);
    const objects = [...serviceEntries(), workloadEntry({ namespace: 'a', name: 'w0', app: 'x', version: 'v2', address: '10.0.0.1', sa: 'sa1', grpcPort: undefined })];
    for (const o of objects) builder.apply({ op: 'created', ref: refOf(o), object: o });
    builder.build();
    const relabelled = obj('ServiceEntry', 'a', 'se-x', { hosts: ['x.a.svc.cluster.local'], ports: [{ number: 80, name: 'http' }], workloadSelector: { labels: { version: 'v2' } } });
    builder.apply({ op: 'updated', ref: refOf(relabelled), object: relabelled });
    const afterSe = builder.build();
    const next = objects.map((o) => (keyOf(o) === keyOf(relabelled) ? relabelled : o));
    expect(afterSe.configChanged).toBe(true);
    expect(registryView(afterSe.snapshot)).toEqual(registryView(buildSnapshot(next, options)));
    const moved = workloadEntry({ namespace: 'a', name: 'w0', app: 'y', version: 'v2', address: '10.0.0.2', sa: 'sa1', grpcPort: undefined });
    builder.apply({ op: 'updated', ref: refOf(moved), object: moved });
    const afterWe = builder.build();
    expect(registryView(afterWe.snapshot)).toEqual(registryView(buildSnapshot(next.map((o) => (keyOf(o) === keyOf(moved) ? moved : o)), options)));
    expect(afterWe.endpointsChanged).toEqual(['all.a.svc.cluster.local', 'x-v2.a.svc.cluster.local', 'x.a.svc.cluster.local', 'y.a.svc.cluster.local']);
  });
});

describe('WorkloadSelection', () => {
  const entry = (name: string, labels: Record<string, string>, namespace = 'a') => ({
    kind: 'WorkloadEntry',
    namespace,
    name,
    key: `WorkloadEntry/${namespace}/${name}`,
    spec: { address: '10.0.0.1', labels },
  });

  it('selects by every label of the selector, within the namespace, sorted by key; relabelling and deleting update it', () => {
    const s = new WorkloadSelection();
    s.set(entry('w2', { app: 'x', version: 'v1' }));
    s.set(entry('w1', { app: 'x', version: 'v2' }));
    s.set(entry('w3', { app: 'x' }, 'b'));
    expect(s.select('a', { app: 'x' }).map((e) => e.name)).toEqual(['w1', 'w2']);
    expect(s.select('a', { app: 'x', version: 'v2' }).map((e) => e.name)).toEqual(['w1']);
    expect(s.select('a', {}).map((e) => e.name)).toEqual(['w1', 'w2']);
    expect(s.select('a', { app: 'nope' })).toEqual([]);
    expect(s.select('c', {})).toEqual([]);
    s.set(entry('w1', { app: 'y' }));
    expect(s.select('a', { app: 'x' }).map((e) => e.name)).toEqual(['w2']);
    expect(s.select('a', { app: 'y' }).map((e) => e.name)).toEqual(['w1']);
    s.delete('a', 'WorkloadEntry/a/w2');
    expect(s.select('a', { app: 'x' })).toEqual([]);
    expect(s.select('b', { app: 'x' }).map((e) => e.name)).toEqual(['w3']);
  });
});
