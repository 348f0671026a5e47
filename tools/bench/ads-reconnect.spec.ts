import { describe, expect, it } from 'vitest';
import { ADS_BACKOFF, backoffIntervalMs, backoffMs, resumeRequests, type HeldType } from './ads-reconnect';

const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const node = { id: 'sidecar~10.1.0.1~svc-0-0.bench-0~bench-0.svc.cluster.local', cluster: 'bench-0' };

const held = (typeUrl: string, over: Partial<HeldType> = {}): HeldType => ({ typeUrl, names: [], version: '', received: new Map(), requested: true, ...over });

describe('backoff', () => {
  it("doubles Envoy's 500 ms interval per attempt up to 30 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100, 5000].map((a) => backoffIntervalMs(a))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
    expect(ADS_BACKOFF).toEqual({ baseMs: 500, maxMs: 30_000 });
  });

  it('waits a uniform share of the interval: nothing at 0, just under the interval near 1', () => {
    expect(backoffMs(0, () => 0)).toBe(0);
    expect(backoffMs(0, () => 0.5)).toBe(250);
    expect(backoffMs(3, () => 0.999_999)).toBe(3999);
    expect(backoffMs(40, () => 0.5)).toBe(15_000);
    expect(backoffMs(1, () => 0.5, { baseMs: 100, maxMs: 150 })).toBe(75);
  });
});

describe('resumeRequests', () => {
  it('opens a fresh stream as Envoy does: the node with wildcard CDS, then wildcard LDS', () => {
    const fresh = [held(CDS), held(EDS, { requested: false }), held(LDS), held(RDS, { requested: false })];
    expect(resumeRequests('sotw', node, fresh)).toEqual([
      { node, type_url: CDS, version_info: '', resource_names: [] },
      { type_url: LDS, version_info: '', resource_names: [] },
    ]);
    expect(resumeRequests('delta', node, fresh)).toEqual([
      { node, type_url: CDS, resource_names_subscribe: [], initial_resource_versions: {} },
      { type_url: LDS, resource_names_subscribe: [], initial_resource_versions: {} },
    ]);
  });

  it('SotW: re-sends every requested type with its last accepted version and names, no nonce', () => {
    const types = [
      held(CDS, { version: 'c7', received: new Map([['outbound|80||a', ''], ['outbound|80||b', '']]) }),
      held(EDS, { names: ['outbound|80||a', 'outbound|80||b'], version: 'e9', received: new Map([['outbound|80||a', '']]) }),
      held(LDS, { version: 'l3' }),
      held(RDS, { requested: false }),
    ];
    const requests = resumeRequests('sotw', node, types);
    expect(requests).toEqual([
      { node, type_url: CDS, version_info: 'c7', resource_names: [] },
      { type_url: EDS, version_info: 'e9', resource_names: ['outbound|80||a', 'outbound|80||b'] },
      { type_url: LDS, version_info: 'l3', resource_names: [] },
    ]);
    expect(requests.some((r) => 'response_nonce' in r)).toBe(false);
  });

  it('delta: re-subscribes by name and reports every resource held with its version', () => {
    const types = [
      held(CDS, { version: 'c7', received: new Map([['outbound|80||a', 'v1'], ['outbound|80||b', 'v2']]) }),
      held(EDS, { names: ['outbound|80||a', 'outbound|80||b'], received: new Map([['outbound|80||a', 'v5']]) }),
      held(LDS, { requested: true }),
      held(RDS, { names: ['80'], received: new Map([['80', 'r1']]) }),
    ];
    expect(resumeRequests('delta', node, types)).toEqual([
      { node, type_url: CDS, resource_names_subscribe: [], initial_resource_versions: { 'outbound|80||a': 'v1', 'outbound|80||b': 'v2' } },
      { type_url: EDS, resource_names_subscribe: ['outbound|80||a', 'outbound|80||b'], initial_resource_versions: { 'outbound|80||a': 'v5' } },
      { type_url: LDS, resource_names_subscribe: [], initial_resource_versions: {} },
      { type_url: RDS, resource_names_subscribe: ['80'], initial_resource_versions: { '80': 'r1' } },
    ]);
  });

  it('copies what the stream holds, so later changes to its state do not alter requests written', () => {
    const names = ['a'];
    const received = new Map([['a', 'v1']]);
    const [req] = resumeRequests('delta', node, [held(EDS, { names, received })]) as Array<{ resource_names_subscribe: string[]; initial_resource_versions: Record<string, string> }>;
    names.push('b');
    received.set('b', 'v2');
    expect(req!.resource_names_subscribe).toEqual(['a']);
    expect(req!.initial_resource_versions).toEqual({ a: 'v1' });
  });
});
