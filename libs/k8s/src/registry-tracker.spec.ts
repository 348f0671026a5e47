import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '@aviary/config-store';
import { refKey } from '@aviary/mesh-api';
import { RegistryTracker } from './registry-tracker';
import { translateRegistry } from './registry-translate';

const ns = fc.constantFrom('a', 'b');
const serviceArb = fc.record({
  kind: fc.constant('service' as const),
  namespace: ns,
  name: fc.constantFrom('s1', 's2', 's3'),
  externalName: fc.constantFrom(false, false, false, false, true),
  grpc: fc.boolean(),
  selector: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
});
const endpointArb = fc.record({
  ip: fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'),
  ready: fc.constantFrom(true, false, undefined),
  pod: fc.option(fc.record({ name: fc.constantFrom('p1', 'p2', 'p3', 'p4'), namespace: fc.option(ns, { nil: undefined }) }), { nil: undefined }),
  nodeName: fc.option(fc.constantFrom('n1', 'n2'), { nil: undefined }),
  zone: fc.option(fc.constantFrom('z1', 'z2'), { nil: undefined }),
});
const sliceArb = fc.record({
  kind: fc.constant('slice' as const),
  namespace: ns,
  name: fc.constantFrom('e1', 'e2', 'e3', 'e4'),
  service: fc.option(fc.constantFrom('s1', 's2', 's3'), { nil: undefined }),
  fqdn: fc.constantFrom(false, false, false, true),
  grpcPort: fc.option(fc.constantFrom(9091, 9092), { nil: undefined }),
  endpoints: fc.array(endpointArb, { maxLength: 3 }),
});
const podArb = fc.record({
  kind: fc.constant('pod' as const),
  namespace: ns,
  name: fc.constantFrom('p1', 'p2', 'p3', 'p4'),
  app: fc.constantFrom('x', 'y'),
  sa: fc.option(fc.constantFrom('sa1', 'sa2'), { nil: undefined }),
  nodeName: fc.option(fc.constantFrom('n1', 'n2'), { nil: undefined }),
});
const nodeArb = fc.record({
  kind: fc.constant('node' as const),
  namespace: fc.constant(''),
  name: fc.constantFrom('n1', 'n2'),
  zone: fc.option(fc.constantFrom('z1', 'z2'), { nil: undefined }),
  heartbeat: fc.nat(3),
});
const objectArb = fc.oneof(serviceArb, sliceArb, podArb, nodeArb);
type Obj = typeof objectArb extends fc.Arbitrary<infer T> ? T : never;
const opArb = fc.record({ delete: fc.constantFrom(false, false, true), object: objectArb });

function service(o: Extract<Obj, { kind: 'service' }>): V1Service {
  return {
    metadata: { namespace: o.namespace, name: o.name },
    spec: {
      ...(o.externalName ? { type: 'ExternalName', externalName: 'example.com' } : { clusterIP: '10.96.0.1' }),
      ports: [{ name: 'http', port: 80 }, ...(o.grpc ? [{ name: 'grpc', port: 9090, appProtocol: 'grpc' }] : [])],
      ...(o.selector && { selector: { app: o.selector } }),
    },
  };
}
function slice(o: Extract<Obj, { kind: 'slice' }>): V1EndpointSlice {
  return {
    metadata: { namespace: o.namespace, name: o.name, ...(o.service && { labels: { 'kubernetes.io/service-name': o.service } }) },
    addressType: o.fqdn ? 'FQDN' : 'IPv4',
    ports: [{ name: 'http', port: 8080 }, ...(o.grpcPort ? [{ name: 'grpc', port: o.grpcPort }] : [])],
    endpoints: o.endpoints.map((e) => ({
      addresses: [e.ip],
      ...(e.ready !== undefined && { conditions: { ready: e.ready } }),
      ...(e.pod && { targetRef: { kind: 'Pod', name: e.pod.name, ...(e.pod.namespace && { namespace: e.pod.namespace }) } }),
      ...(e.nodeName && { nodeName: e.nodeName }),
      ...(e.zone && { zone: e.zone }),
    })),
  };
}
function pod(o: Extract<Obj, { kind: 'pod' }>): V1Pod {
  return { metadata: { namespace: o.namespace, name: o.name, labels: { app: o.app } }, spec: { containers: [], ...(o.sa && { serviceAccountName: o.sa }), ...(o.nodeName && { nodeName: o.nodeName }) } };
}
function node(o: Extract<Obj, { kind: 'node' }>): V1Node {
  return { metadata: { name: o.name, labels: { 'kubernetes.io/hostname': o.name, ...(o.zone && { 'topology.kubernetes.io/zone': o.zone, 'topology.kubernetes.io/region': 'r1' }) }, annotations: { heartbeat: String(o.heartbeat) } } };
}

/** The cluster as plain maps, and the tracker fed the same events. */
class Cluster {
  readonly services = new Map<string, V1Service>();
  readonly slices = new Map<string, V1EndpointSlice>();
  readonly pods = new Map<string, V1Pod>();
  readonly nodes = new Map<string, V1Node>();
  readonly tracker = new RegistryTracker('cluster.local');
  /** What the tracker's events say exists: ref key → spec JSON. */
  readonly reported = new Map<string, string>();

  apply(del: boolean, o: Obj): void {
    const key = `${o.namespace}/${o.name}`;
    const put = <T>(map: Map<string, T>, k: string, value: T, feed: (t: 'added' | 'updated' | 'deleted', v: T) => void): void => {
      const had = map.get(k);
      if (del) {
        if (had === undefined) return;
        map.delete(k);
        feed('deleted', had);
      } else {
        map.set(k, value);
        feed(had === undefined ? 'added' : 'updated', value);
      }
    };
    if (o.kind === 'service') put(this.services, key, service(o), (t, v) => this.tracker.service(t, v));
    else if (o.kind === 'slice') put(this.slices, key, slice(o), (t, v) => this.tracker.slice(t, v));
    else if (o.kind === 'pod') put(this.pods, key, pod(o), (t, v) => this.tracker.pod(t, v));
    else put(this.nodes, o.name, node(o), (t, v) => this.tracker.node(t, v));
  }

  flush(revision: number): ChangeEvent[] {
    const events = this.tracker.flush(revision);
    for (const e of events) {
      if (e.op === 'deleted') this.reported.delete(refKey(e.ref));
      else this.reported.set(refKey(e.ref), JSON.stringify(e.object!.spec));
    }
    return events;
  }

  truth(): Map<string, string> {
    const objects = translateRegistry({ services: [...this.services.values()], endpointSlices: [...this.slices.values()], pods: this.pods, nodes: this.nodes }, 'cluster.local');
    return new Map(objects.map((o) => [refKey({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name }), JSON.stringify(o.spec)]));
  }
}

describe('RegistryTracker', () => {
  it('reports, after any sequence of event batches, exactly what translating the whole registry gives', () => {
    fc.assert(
      fc.property(fc.array(objectArb, { maxLength: 12 }), fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 }), (initial, batches) => {
        const c = new Cluster();
        for (const o of initial) c.apply(false, o);
        c.flush(1);
        expect(c.reported).toEqual(c.truth());
        batches.forEach((batch, i) => {
          const before = new Map(c.reported);
          for (const op of batch) c.apply(op.delete, op.object);
          const events = c.flush(i + 2);
          const truth = c.truth();
          expect(c.reported).toEqual(truth);
          // no event without an effective change
          for (const e of events) expect(before.get(refKey(e.ref))).not.toBe(e.op === 'deleted' ? undefined : truth.get(refKey(e.ref)));
        });
      }),
      { numRuns: 500 },
    );
  });

  it('re-translates a Pod change and reports only its WorkloadEntry; a Node heartbeat reports nothing', () => {
    const c = new Cluster();
    c.apply(false, { kind: 'service', namespace: 'a', name: 's1', externalName: false, grpc: false, selector: 'x' });
    c.apply(false, { kind: 'node', namespace: '', name: 'n1', zone: 'z1', heartbeat: 0 });
    c.apply(false, { kind: 'pod', namespace: 'a', name: 'p1', app: 'x', sa: 'sa1', nodeName: 'n1' });
    c.apply(false, { kind: 'slice', namespace: 'a', name: 'e1', service: 's1', fqdn: false, grpcPort: undefined, endpoints: [{ ip: '10.0.0.1', ready: true, pod: { name: 'p1', namespace: undefined }, nodeName: 'n1', zone: undefined }] });
    expect(c.flush(1).map((e) => `${e.op} ${refKey(e.ref)}`)).toEqual(['created ServiceEntry/a/k8s-service.s1', 'created WorkloadEntry/a/k8s-pod.p1']);
    c.apply(false, { kind: 'pod', namespace: 'a', name: 'p1', app: 'x', sa: 'sa2', nodeName: 'n1' });
    const events = c.flush(2);
    expect(events.map((e) => `${e.op} ${refKey(e.ref)}`)).toEqual(['updated WorkloadEntry/a/k8s-pod.p1']);
    expect(events[0]!.object).toMatchObject({ metadata: { resourceVersion: '2' }, spec: { serviceAccount: 'sa2', locality: 'r1/z1' } });
    c.apply(false, { kind: 'node', namespace: '', name: 'n1', zone: 'z1', heartbeat: 1 });
    expect(c.flush(3)).toEqual([]);
    c.apply(false, { kind: 'node', namespace: '', name: 'n1', zone: 'z2', heartbeat: 1 });
    expect(c.flush(4).map((e) => `${e.op} ${refKey(e.ref)}`)).toEqual(['updated WorkloadEntry/a/k8s-pod.p1']);
    c.apply(true, { kind: 'slice', namespace: 'a', name: 'e1', service: 's1', fqdn: false, grpcPort: undefined, endpoints: [] });
    expect(c.flush(5).map((e) => `${e.op} ${refKey(e.ref)}`)).toEqual(['deleted WorkloadEntry/a/k8s-pod.p1']);
  });
});
