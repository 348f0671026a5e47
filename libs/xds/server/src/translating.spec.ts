/** How a translation layer plugs in: a TranslatingSource over a model, served per proxy. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TranslatingSource, type Clock, type SnapshotInput } from '@aviary/xds-cache';
import { TypeUrl, type CanonicalMessage } from '@aviary/xds-protos';
import { XdsServer } from './index';
import { RawAdsStream } from '@aviary/testing';
import { testPeer, type TestPeer } from './testing/peer';

interface Model {
  readonly revision: number;
  /** namespace → listener ports */
  readonly ports: Readonly<Record<string, readonly number[]>>;
}

const translate = (proxy: TestPeer, model: Model): SnapshotInput => ({
  [TypeUrl.Listener]: (model.ports[proxy.namespace] ?? []).map((port) => ({
    name: `${proxy.namespace}-${port}`,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
  })),
});

describe('XdsServer over a TranslatingSource', () => {
  let server: XdsServer<TestPeer>;
  let source: TranslatingSource<Model, TestPeer>;
  let port: number;
  let translations = 0;
  const streams: RawAdsStream[] = [];

  beforeAll(async () => {
    source = new TranslatingSource<Model, TestPeer>(
      { revision: 1, ports: { a: [80], b: [81, 82] } },
      { groupOf: (p) => p.namespace, translate: (p, m) => (translations++, translate(p, m)) },
    );
    server = new XdsServer({ source, nodeParser: testPeer, debounce: { quietMs: 0, maxDelayMs: 0 } });
    port = await server.listen('127.0.0.1:0');
  });

  afterAll(async () => {
    for (const s of streams) s.close();
    await server.stop(100);
  });

  const lds = async (id: string, namespace: string): Promise<RawAdsStream> => {
    const s = new RawAdsStream(port, false);
    streams.push(s);
    s.send({ node: RawAdsStream.node(id, { NAMESPACE: namespace }), type_url: TypeUrl.Listener });
    return s;
  };
  const names = (r: CanonicalMessage) => ((r.resources as CanonicalMessage[] | undefined) ?? []).map((l) => l.name);

  it('serves each proxy the translation of its group, translating once per group and model', async () => {
    const a1 = await lds('p1', 'a');
    const a2 = await lds('p2', 'a');
    const b1 = await lds('p3', 'b');
    expect(names(await a1.next())).toEqual(['a-80']);
    expect(names(await a2.next())).toEqual(['a-80']);
    expect(names(await b1.next())).toEqual(['b-81', 'b-82']);
    expect(translations).toBe(2);

    source.setModel({ revision: 2, ports: { a: [80, 90], b: [81, 82] } }, { types: [TypeUrl.Listener], affects: (p) => p.namespace === 'a' });
    expect(names(await a1.next())).toEqual(['a-80', 'a-90']);
    expect(names(await a2.next())).toEqual(['a-80', 'a-90']);
    expect(translations).toBe(3);
    source.setModel({ revision: 3, ports: { a: [80, 90], b: [81] } });
    expect(names(await b1.next())).toEqual(['b-81']);
    expect(a1.pending + a2.pending).toBe(0);
  });
});

describe('XdsServer pushes a named change only to streams that watch one of the names', () => {
  it('does not ask the source for a stream whose by-name subscription names none of them', async () => {
    const model = (rev: number): Model => ({ revision: rev, ports: { a: [80], b: [81] } });
    const edsTranslate = (proxy: TestPeer, m: Model): SnapshotInput => ({
      [TypeUrl.ClusterLoadAssignment]: ['x', 'y'].map((n) => ({ cluster_name: `${proxy.namespace}-${n}`, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: m.revision } } } }] }] })),
    });
    let translated: string[] = [];
    const source = new TranslatingSource<Model, TestPeer>(model(1), { groupOf: (p) => p.id, translate: (p, m) => (translated.push(p.id), edsTranslate(p, m)) });
    const server = new XdsServer({ source, nodeParser: testPeer, debounce: { quietMs: 0, maxDelayMs: 0 } });
    const port = await server.listen('127.0.0.1:0');
    const watchX = new RawAdsStream(port, false);
    const watchY = new RawAdsStream(port, false);
    try {
      for (const [s, name] of [[watchX, 'a-x'], [watchY, 'a-y']] as const) {
        s.send({ node: RawAdsStream.node(name, { NAMESPACE: 'a' }), type_url: TypeUrl.ClusterLoadAssignment, resource_names: [name] });
        const r = await s.next();
        s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: r.version_info, response_nonce: r.nonce, resource_names: [name] });
      }
      translated = [];
      source.setModel(model(2), { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'a-x' });
      const pushed = await watchX.next();
      expect(((pushed.resources as CanonicalMessage[]) ?? []).map((c) => c.cluster_name)).toEqual(['a-x']);
      expect(translated).toEqual(['a-x']);
      expect(watchY.pending).toBe(0);
    } finally {
      watchX.close();
      watchY.close();
      await server.stop(100);
    }
  });

  it('keeps debounced changes apart: a change for one proxy does not widen another change to everyone', async () => {
    const clock = new ManualClock();
    let translated: string[] = [];
    const source = new TranslatingSource<Model, TestPeer>({ revision: 1, ports: { a: [80], b: [81] } }, { translate: (p, m) => (translated.push(p.namespace), translate(p, m)), now: clock.now });
    const server = new XdsServer({ source, nodeParser: testPeer, clock, debounce: { quietMs: 100, maxDelayMs: 1000 } });
    const port = await server.listen('127.0.0.1:0');
    const a = new RawAdsStream(port, false);
    const b = new RawAdsStream(port, false);
    try {
      for (const [s, ns] of [[a, 'a'], [b, 'b']] as const) {
        s.send({ node: RawAdsStream.node(`p.${ns}`, { NAMESPACE: ns }), type_url: TypeUrl.Listener });
        const r = await s.next();
        s.send({ type_url: TypeUrl.Listener, version_info: r.version_info, response_nonce: r.nonce });
      }
      translated = [];
      source.setModel({ revision: 2, ports: { a: [80, 90], b: [81] } }, { types: [TypeUrl.Listener], affects: (p) => p.namespace === 'a' });
      // For everyone, but a type nobody subscribed to: merged with the first it used to become LDS for everyone.
      source.setModel({ revision: 2, ports: { a: [80, 90], b: [81] } }, { types: [TypeUrl.Cluster] });
      clock.advance(100);
      expect(((await a.next()).resources as CanonicalMessage[]).map((l) => l.name)).toEqual(['a-80', 'a-90']);
      expect(translated).toEqual(['a']);
      expect(b.pending).toBe(0);
    } finally {
      a.close();
      b.close();
      await server.stop(100);
    }
  });
});

/** Manual timers: the debounced push happens only when the test says time has passed. */
class ManualClock implements Clock {
  t = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  private id = 0;
  now = (): number => this.t;
  setTimer = (fn: () => void, ms: number): unknown => (this.timers.set(++this.id, { at: this.t + ms, fn }), this.id);
  clearTimer = (h: unknown): void => void this.timers.delete(h as number);
  advance(ms: number): void {
    this.t += ms;
    for (const [id, timer] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at > this.t) break;
      this.timers.delete(id);
      timer.fn();
    }
  }
}

describe('XdsServer debouncing', () => {
  it('merges a burst of model changes into one push after the quiet period', async () => {
    const clock = new ManualClock();
    const source = new TranslatingSource<Model, TestPeer>({ revision: 1, ports: { a: [80] } }, { translate, now: clock.now });
    const server = new XdsServer({ source, nodeParser: testPeer, clock, debounce: { quietMs: 100, maxDelayMs: 1000 } });
    const port = await server.listen('127.0.0.1:0');
    const s = new RawAdsStream(port, false);
    try {
      s.send({ node: RawAdsStream.node('p1', { NAMESPACE: 'a' }), type_url: TypeUrl.Listener });
      const first = await s.next();
      s.send({ type_url: TypeUrl.Listener, version_info: first.version_info, response_nonce: first.nonce });
      source.setModel({ revision: 2, ports: { a: [80, 81] } });
      clock.advance(60);
      source.setModel({ revision: 3, ports: { a: [80, 81, 82] } });
      clock.advance(99);
      expect(s.pending).toBe(0);
      expect(server.proxies()[0]!.types[0]!.sentVersion).toBe(first.version_info);
      clock.advance(1);
      const pushed = await s.next();
      expect(((pushed.resources as CanonicalMessage[]) ?? []).map((l) => l.name)).toEqual(['a-80', 'a-81', 'a-82']);
    } finally {
      s.close();
      await server.stop(100);
    }
  });
});
