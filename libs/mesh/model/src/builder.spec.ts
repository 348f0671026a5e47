import { describe, expect, it } from 'vitest';
import { buildSnapshot, SnapshotBuilder, type ModelChangeEvent, type ModelObject } from './index';

function obj(kind: string, name: string, spec: unknown, namespace = 'default'): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}
let revision = 0;
const created = (o: ModelObject): ModelChangeEvent => ({ op: 'created', ref: { kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name }, revision: ++revision, object: o });
const updated = (o: ModelObject): ModelChangeEvent => ({ ...created(o), op: 'updated' });
const deleted = (o: ModelObject): ModelChangeEvent => ({ op: 'deleted', ref: { kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name }, revision: ++revision });

const se = (extra: Record<string, unknown> = {}) =>
  obj('ServiceEntry', 'reviews', { hosts: ['reviews.default.svc.cluster.local'], ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: 'reviews' } }, ...extra });
const ratings = obj('ServiceEntry', 'ratings', { hosts: ['ratings.default.svc.cluster.local'], ports: [{ number: 9080, name: 'http' }], workloadSelector: { labels: { app: 'ratings' } } });
const we = (name: string, address: string, labels: Record<string, string>, sa = 'reviews') => obj('WorkloadEntry', name, { address, labels, serviceAccount: sa });
const vs = (weight: number) => obj('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight }] }] });

function started() {
  const b = new SnapshotBuilder({ trustDomain: 'cluster.local' });
  b.applyAll([se(), ratings, we('r1', '10.0.0.1', { app: 'reviews' }), we('t1', '10.0.1.1', { app: 'ratings' }, 'ratings'), vs(100)].map(created));
  return { b, first: b.build() };
}

describe('SnapshotBuilder', () => {
  it('the first build is a full change and equals buildSnapshot of the same objects', () => {
    const { first } = started();
    expect(first.configChanged).toBe(true);
    expect(first.previous).toBeUndefined();
    expect(first.snapshot.generation).toBe(1);
    const full = buildSnapshot([se(), ratings, we('r1', '10.0.0.1', { app: 'reviews' }), we('t1', '10.0.1.1', { app: 'ratings' }, 'ratings'), vs(100)], { trustDomain: 'cluster.local' });
    expect(JSON.stringify(first.snapshot.services.all())).toBe(JSON.stringify(full.services.all()));
    expect(first.snapshot.endpoints.fingerprint('reviews.default.svc.cluster.local')).toBe(full.endpoints.fingerprint('reviews.default.svc.cluster.local'));
  });

  it('a new WorkloadEntry is an endpoint-only change of the services that select it', () => {
    const { b, first } = started();
    expect(b.apply(created(we('r2', '10.0.0.2', { app: 'reviews' })))).toBe(true);
    const d = b.build();
    expect(d).toMatchObject({ configChanged: false, changedKinds: ['WorkloadEntry'], servicesChanged: [], endpointsChanged: ['reviews.default.svc.cluster.local'], affectedAddresses: ['10.0.0.2'] });
    expect(d.snapshot.virtualServices).toBe(first.snapshot.virtualServices);
    expect(d.snapshot.endpoints.forServicePort('reviews.default.svc.cluster.local', 9080)).toHaveLength(2);
  });

  it('a removed WorkloadEntry is endpoint-only; an identity change is a config change (SANs move)', () => {
    const { b } = started();
    b.apply(created(we('r2', '10.0.0.2', { app: 'reviews' })));
    b.build();
    b.apply(deleted(we('r1', '10.0.0.1', { app: 'reviews' })));
    expect(b.build()).toMatchObject({ configChanged: false, endpointsChanged: ['reviews.default.svc.cluster.local'], affectedAddresses: ['10.0.0.1'] });
    b.apply(created(we('r1', '10.0.0.1', { app: 'reviews' }, 'other-sa')));
    // the last endpoint with a service account going away also changes the SANs
    expect(b.build()).toMatchObject({ configChanged: true, endpointsChanged: ['reviews.default.svc.cluster.local'] });
    b.apply(deleted(we('r1', '10.0.0.1', { app: 'reviews' })));
    expect(b.build()).toMatchObject({ configChanged: true, endpointsChanged: ['reviews.default.svc.cluster.local'] });
  });

  it('relabelling a WorkloadEntry moves its endpoint between services', () => {
    const { b } = started();
    b.apply(updated(we('r1', '10.0.0.1', { app: 'ratings' }, 'ratings')));
    const d = b.build();
    expect(d.endpointsChanged).toEqual(['ratings.default.svc.cluster.local', 'reviews.default.svc.cluster.local']);
    expect(d.snapshot.endpoints.forServicePort('reviews.default.svc.cluster.local', 9080)).toHaveLength(0);
  });

  it('an endpoint change rebuilds only the services that select it; the rest stay the same objects', () => {
    const { b, first } = started();
    const reviews = 'reviews.default.svc.cluster.local';
    const ratingsHost = 'ratings.default.svc.cluster.local';
    b.apply(updated(we('r1', '10.0.0.7', { app: 'reviews' })));
    const d = b.build();
    expect(d).toMatchObject({ configChanged: false, endpointsChanged: [reviews], affectedAddresses: ['10.0.0.1', '10.0.0.7'] });
    expect(d.snapshot.services.get(ratingsHost)).toBe(first.snapshot.services.get(ratingsHost));
    expect(d.snapshot.endpoints.forService(ratingsHost)).toBe(first.snapshot.endpoints.forService(ratingsHost));
    expect(d.snapshot.endpoints.forServicePort(reviews, 9080).map((e) => e.address)).toEqual(['10.0.0.7']);
    // A host claimed first by another ServiceEntry is not reused from the earlier build.
    b.apply(created(obj('ServiceEntry', 'a-first', { hosts: [ratingsHost], ports: [{ number: 7000, name: 'tcp' }] })));
    const dup = b.build();
    expect(dup.snapshot.services.get(ratingsHost)?.source).toBe('ServiceEntry/default/a-first');
    expect(dup.snapshot.problems.map((p) => p.code)).toEqual(['DUPLICATE_SERVICE_HOST']);
    b.apply(deleted(obj('ServiceEntry', 'a-first', {})));
    expect(JSON.stringify(b.build().snapshot.services.all())).toBe(JSON.stringify(first.snapshot.services.all()));
  });

  it('routing config changes are config changes and rebuild only their index', () => {
    const { b, first } = started();
    b.apply(updated(vs(50)));
    const d = b.build();
    expect(d).toMatchObject({ configChanged: true, changedKinds: ['VirtualService'], endpointsChanged: [], servicesChanged: [] });
    expect(d.snapshot.services).toBe(first.snapshot.services);
    expect(d.snapshot.virtualServices).not.toBe(first.snapshot.virtualServices);
  });

  it('a ServiceEntry port change is a service (config) change', () => {
    const { b } = started();
    b.apply(updated(se({ ports: [{ number: 9081, name: 'http', protocol: 'HTTP' }] })));
    expect(b.build()).toMatchObject({ configChanged: true, servicesChanged: ['reviews.default.svc.cluster.local'] });
  });

  it('an update that does not change the spec changes nothing; build without changes returns the same snapshot', () => {
    const { b, first } = started();
    expect(b.apply(updated(vs(100)))).toBe(false);
    expect(b.pending).toBe(false);
    const d = b.build();
    expect(d.snapshot).toBe(first.snapshot);
    expect(d).toMatchObject({ configChanged: false, endpointsChanged: [], changedKinds: [] });
  });

  it('reset() replaces the input and drops objects that are gone', () => {
    const { b } = started();
    b.reset([se(), we('r9', '10.0.0.9', { app: 'reviews' })]);
    const d = b.build();
    expect(d.snapshot.services.get('ratings.default.svc.cluster.local')).toBeUndefined();
    expect(d.snapshot.endpoints.forServicePort('reviews.default.svc.cluster.local', 9080).map((e) => e.address)).toEqual(['10.0.0.9']);
    expect(d.snapshot.virtualServices.all()).toEqual([]);
    expect(b.revision).toBeGreaterThan(0);
  });

  it('a malformed object becomes a problem and leaves the model', () => {
    const { b } = started();
    b.apply(updated(obj('DestinationRule', 'bad', { host: 7 })));
    const d = b.build();
    expect(d.snapshot.problems.map((p) => p.resource)).toContain('DestinationRule/default/bad');
    b.apply(deleted(obj('DestinationRule', 'bad', {})));
    expect(b.build().snapshot.problems).toEqual([]);
  });
});
