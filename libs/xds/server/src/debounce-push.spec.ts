/** The push debounce end to end: source changes with a reason → debounced pushes on a real ADS stream (manual clock). */
import { describe, expect, it } from 'vitest';
import { TranslatingSource, type ChangeReason, type Clock, type SnapshotInput } from '@aviary/xds-cache';
import { TypeUrl, type CanonicalMessage } from '@aviary/xds-protos';
import { RawAdsStream } from '@aviary/testing';
import { XdsServer, type PushDebounce } from './index';
import { testPeer, type TestPeer } from './testing/peer';

/** The model is one port: every proxy gets one ClusterLoadAssignment `c` with an endpoint on it. */
const translate = (_proxy: TestPeer, port: number): SnapshotInput => ({
  [TypeUrl.ClusterLoadAssignment]: [{ cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }] }],
});

/** Manual timers: a debounced push happens only when the test advances time. */
class ManualClock implements Clock {
  t = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private id = 0;
  now = (): number => this.t;
  setTimer = (fn: () => void, ms: number): unknown => (this.timers.set(++this.id, { at: this.t + ms, fn }), this.id);
  clearTimer = (h: unknown): void => void this.timers.delete(h as number);
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
}

const portOf = (r: CanonicalMessage): number => {
  const cla = (r.resources as CanonicalMessage[])[0] as { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { port_value: number } } } }[] }[] };
  return cla.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address.port_value;
};

async function withStream(debounce: PushDebounce, run: (ctx: { clock: ManualClock; change: (port: number, reason: ChangeReason) => void; stream: RawAdsStream; pushes: () => Promise<number> }) => Promise<void>): Promise<void> {
  const clock = new ManualClock();
  const source = new TranslatingSource<number, TestPeer>(1, { translate, now: clock.now });
  const server = new XdsServer({ source, nodeParser: testPeer, clock, debounce });
  const port = await server.listen('127.0.0.1:0');
  const stream = new RawAdsStream(port, false);
  try {
    stream.send({ node: RawAdsStream.node('p1', { NAMESPACE: 'a' }), type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['c'] });
    const first = await stream.next();
    stream.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['c'], version_info: first.version_info, response_nonce: first.nonce });
    // The first response counts: pushes() is what the changes caused.
    const sent = async () => ((await server.metrics.pushes.get()).values.find((v) => v.labels.type === 'eds')?.value ?? 0);
    const before = await sent();
    const change = (model: number, reason: ChangeReason) =>
      source.setModel(model, reason === 'endpoints' ? { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'c', reason } : { reason });
    await run({ clock, change, stream, pushes: async () => (await sent()) - before });
  } finally {
    stream.close();
    await server.stop(100);
  }
}

describe('XdsServer push debounce with leadingEndpoints', () => {
  const leading: PushDebounce = { quietMs: 100, maxDelayMs: 1000, leadingEndpoints: true };

  it('pushes an endpoint change after a quiet spell at once, without waiting for the quiet period', async () => {
    await withStream(leading, async ({ clock, change, stream, pushes }) => {
      clock.advance(1000);
      change(2, 'endpoints');
      clock.advance(0);
      expect(await pushes()).toBe(1);
      expect(portOf(await stream.next())).toBe(2);
    });
  });

  it('still waits the quiet period for a config change, and for the endpoint changes that follow within it', async () => {
    await withStream(leading, async ({ clock, change, stream, pushes }) => {
      clock.advance(1000);
      change(2, 'config');
      clock.advance(50);
      change(3, 'endpoints');
      clock.advance(99);
      expect(await pushes()).toBe(0);
      clock.advance(1);
      expect(await pushes()).toBe(1);
      expect(portOf(await stream.next())).toBe(3);
    });
  });

  it('coalesces a storm of 1,000 endpoint changes in one second into a few pushes ending with the last', async () => {
    await withStream(leading, async ({ clock, change, stream, pushes }) => {
      clock.advance(1000);
      for (let i = 0; i < 1000; i++) {
        change(10_000 + i, 'endpoints');
        clock.advance(1);
      }
      clock.advance(1000);
      expect(await pushes()).toBeGreaterThanOrEqual(2);
      expect(await pushes()).toBeLessThanOrEqual(3);
      let last = 0;
      const n = await pushes();
      for (let i = 0; i < n; i++) last = portOf(await stream.next());
      expect(last).toBe(10_999);
    });
  });
});

describe('XdsServer push debounce without leadingEndpoints (the default)', () => {
  it('holds an endpoint change for the quiet period like any other', async () => {
    await withStream({ quietMs: 100, maxDelayMs: 1000 }, async ({ clock, change, stream, pushes }) => {
      clock.advance(1000);
      change(2, 'endpoints');
      clock.advance(99);
      expect(await pushes()).toBe(0);
      clock.advance(1);
      expect(await pushes()).toBe(1);
      expect(portOf(await stream.next())).toBe(2);
    });
  });
});
