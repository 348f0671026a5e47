import { describe, expect, it } from 'vitest';
import { buildSnapshot, SnapshotBuilder, type ModelChangeEvent, type ModelObject } from './index';
import { mergeHttpRoute, mergeMatches } from './delegate';

function vs(name: string, spec: Record<string, unknown>, namespace = 'default'): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec };
}

const root = vs('root', {
  hosts: ['bookinfo.com'],
  gateways: ['istio-system/ingress'],
  http: [
    { name: 'pp', match: [{ uri: { prefix: '/productpage' }, headers: { x: { exact: '1' } } }], delegate: { name: 'productpage', namespace: 'nsA' }, timeout: '5s', headers: { request: { set: { root: 'yes' } } } },
    { route: [{ destination: { host: 'fallback' } }] },
  ],
});
const delegate = vs(
  'productpage',
  {
    http: [
      { name: 'v2', match: [{ uri: { prefix: '/productpage/v2' }, headers: { y: { exact: '2' } } }], route: [{ destination: { host: 'productpage', subset: 'v2' } }], timeout: '1s' },
      { match: [{ uri: { prefix: '/reviews' } }], route: [{ destination: { host: 'reviews' } }] },
      { route: [{ destination: { host: 'productpage.nsA.svc.cluster.local' } }] },
    ],
  },
  'nsA',
);

const gatewayRoutes = (objects: ModelObject[]) =>
  buildSnapshot(objects, { trustDomain: 'cluster.local' })
    .virtualServices.forGateway('istio-system/ingress')
    .map((b) => b.entry.spec.http);

describe('delegate VirtualServices merged into their root', () => {
  it('intersects matches, inherits unset root fields, resolves delegate short hosts in its namespace, drops conflicting routes', () => {
    const [http] = gatewayRoutes([root, delegate]);
    expect(http).toEqual([
      {
        name: 'pp-v2',
        match: [{ uri: { prefix: '/productpage/v2' }, headers: { x: { exact: '1' }, y: { exact: '2' } } }],
        route: [{ destination: { host: 'productpage.nsA.svc.cluster.local', subset: 'v2' } }],
        timeout: '1s',
        headers: { request: { set: { root: 'yes' } } },
      },
      // `/reviews` is not under `/productpage`: Istio drops that delegate route.
      {
        name: 'pp',
        match: [{ uri: { prefix: '/productpage' }, headers: { x: { exact: '1' } } }],
        route: [{ destination: { host: 'productpage.nsA.svc.cluster.local' } }],
        timeout: '5s',
        headers: { request: { set: { root: 'yes' } } },
      },
      { route: [{ destination: { host: 'fallback' } }] },
    ]);
  });

  it('a missing delegate contributes no routes; the delegate itself routes nothing', () => {
    const snap = buildSnapshot([root], { trustDomain: 'cluster.local' });
    expect(snap.virtualServices.forGateway('istio-system/ingress')[0]!.entry.spec.http).toEqual([{ route: [{ destination: { host: 'fallback' } }] }]);
    const alone = buildSnapshot([delegate], { trustDomain: 'cluster.local' });
    expect(alone.virtualServices.forHost('productpage.nsA.svc.cluster.local', 'nsA')).toBeUndefined();
    expect(alone.virtualServices.all().map((e) => e.key)).toEqual(['VirtualService/nsA/productpage']);
  });

  it('honours the delegate exportTo (cross-namespace) and defaults the delegate namespace to the root', () => {
    const hidden = vs('productpage', { exportTo: ['.'], http: [{ route: [{ destination: { host: 'productpage' } }] }] }, 'nsA');
    expect(gatewayRoutes([root, hidden])[0]).toHaveLength(1);
    const toDefault = vs('productpage', { exportTo: ['default'], http: [{ route: [{ destination: { host: 'productpage' } }] }] }, 'nsA');
    expect(gatewayRoutes([root, toDefault])[0]).toHaveLength(2);
    const sameNs = vs('r', { hosts: ['reviews'], http: [{ delegate: { name: 'd' } }] });
    const d = vs('d', { exportTo: ['.'], http: [{ route: [{ destination: { host: 'reviews' } }] }] });
    const merged = buildSnapshot([sameNs, d], { trustDomain: 'cluster.local' }).virtualServices.forHost('reviews.default.svc.cluster.local', 'default')!;
    expect(merged.entry.spec.http).toEqual([{ route: [{ destination: { host: 'reviews.default.svc.cluster.local' } }] }]);
  });

  it('a change of only the delegate is a config change that rebuilds the root (a full push reaches its proxies)', () => {
    let revision = 0;
    const event = (o: ModelObject, op: 'created' | 'updated'): ModelChangeEvent => ({ op, ref: { kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name }, revision: ++revision, object: o });
    const b = new SnapshotBuilder({ trustDomain: 'cluster.local' });
    b.applyAll([event(root, 'created'), event(delegate, 'created')]);
    b.build();
    const changed = vs('productpage', { http: [{ route: [{ destination: { host: 'other' } }] }] }, 'nsA');
    expect(b.apply(event(changed, 'updated'))).toBe(true);
    const d = b.build();
    expect(d.configChanged).toBe(true);
    const next = d.snapshot;
    expect(next.virtualServices.forGateway('istio-system/ingress')[0]!.entry.spec.http![0]!.route).toEqual([{ destination: { host: 'other.nsA.svc.cluster.local' } }]);
  });
});

describe('mergeMatches (Istio mergeHTTPMatchRequests)', () => {
  it('takes either side when the other has none', () => {
    expect(mergeMatches([], [{ uri: { exact: '/a' } }])).toEqual([{ uri: { exact: '/a' } }]);
    expect(mergeMatches([{ uri: { exact: '/a' } }], [])).toEqual([{ uri: { exact: '/a' } }]);
  });

  it('merges each delegate match with every compatible root match', () => {
    const merged = mergeMatches(
      [{ name: 'r', uri: { prefix: '/a' }, method: { exact: 'GET' } }, { uri: { prefix: '/b' } }, { uri: { prefix: '/a' }, port: 80, sourceLabels: { app: 'x' } }],
      [{ name: 'l', uri: { prefix: '/a/1' }, queryParams: { q: { exact: '1' } } }],
    );
    expect(merged).toEqual([
      { name: 'r-l', uri: { prefix: '/a/1' }, method: { exact: 'GET' }, queryParams: { q: { exact: '1' } } },
      { name: 'l', uri: { prefix: '/a/1' }, port: 80, sourceLabels: { app: 'x' }, queryParams: { q: { exact: '1' } } },
    ]);
  });

  it('conflicts as Istio: exact vs other exact or prefix, prefix outside the root prefix, regex against anything, port, sourceNamespace, ignoreUriCase, gateways', () => {
    const conflicts: [object, object][] = [
      [{ uri: { exact: '/a' } }, { uri: { exact: '/b' } }],
      [{ uri: { exact: '/a' } }, { uri: { prefix: '/a' } }],
      [{ uri: { prefix: '/a' } }, { uri: { exact: '/b' } }],
      [{ uri: { regex: '/a.*' } }, { uri: { prefix: '/a' } }],
      [{ uri: { prefix: '/a' } }, { uri: { regex: '/a.*' } }],
      [{ headers: { x: { exact: '1' } } }, { headers: { x: { exact: '2' } } }],
      [{ port: 80 }, { port: 81 }],
      [{ sourceNamespace: 'a' }, { sourceNamespace: 'b' }],
      [{ sourceNamespace: 'a' }, {}],
      [{ ignoreUriCase: true }, {}],
      [{ sourceLabels: { app: 'a' } }, { sourceLabels: { app: 'b' } }],
      [{ gateways: ['g1'] }, { gateways: ['g2'] }],
    ];
    for (const [r, l] of conflicts) expect(mergeMatches([r], [l]), JSON.stringify([r, l])).toBeUndefined();
    expect(mergeMatches([{ uri: { exact: '/a' } }], [{ uri: { exact: '/a' } }])).toEqual([{ uri: { exact: '/a' } }]);
    expect(mergeMatches([{ uri: { regex: '/a.*' } }], [{ method: { exact: 'GET' } }])).toEqual([{ uri: { regex: '/a.*' }, method: { exact: 'GET' } }]);
  });

  it('drops the whole route when one delegate match fits no root match', () => {
    expect(mergeMatches([{ uri: { prefix: '/a' } }], [{ uri: { prefix: '/a/1' } }, { uri: { prefix: '/b' } }])).toBeUndefined();
  });
});

describe('mergeHttpRoute (Istio mergeHTTPRoute)', () => {
  it('keeps what the delegate route sets and takes the rest from the root', () => {
    const merged = mergeHttpRoute(
      { delegate: { name: 'd' }, retries: { attempts: 3 }, corsPolicy: { allowOrigins: [{ exact: 'a' }] }, rewrite: { uri: '/' }, timeout: '9s' },
      { route: [{ destination: { host: 'x' } }], timeout: '1s' },
    );
    expect(merged).toEqual({ route: [{ destination: { host: 'x' } }], timeout: '1s', retries: { attempts: 3 }, corsPolicy: { allowOrigins: [{ exact: 'a' }] }, rewrite: { uri: '/' } });
  });
});
