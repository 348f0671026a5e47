import { describe, expect, it } from 'vitest';
import { TypeUrl } from '@aviary/xds-api';
import { StatusPublisher } from './status-publisher';

const CDS = TypeUrl.Cluster;
const LDS = TypeUrl.Listener;

function publisher() {
  const out: Array<{ proxyId: string; event: string; typeUrl?: string; version?: string }> = [];
  let t = 1_000;
  // flushMs is large: the tests flush by hand, the timer never fires.
  const p = new StatusPublisher((d) => void out.push(d), { flushMs: 3_600_000, ackIntervalMs: 1_000 }, () => t);
  return { p, out, advance: (ms: number) => void (t += ms) };
}

describe('StatusPublisher', () => {
  it('publishes connected, nack and disconnected at the end of the turn and holds ACKs until the flush', async () => {
    const { p, out } = publisher();
    p.push({ event: 'connected', proxyId: 'a' });
    p.push({ event: 'ack', proxyId: 'a', typeUrl: CDS, version: '1' });
    p.push({ event: 'ack', proxyId: 'a', typeUrl: LDS, version: '1' });
    expect(out).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(out).toEqual([{ proxyId: 'a', event: 'connected' }]);
    p.flush();
    expect(out.slice(1)).toEqual([
      { proxyId: 'a', event: 'ack', typeUrl: CDS, version: '1' },
      { proxyId: 'a', event: 'ack', typeUrl: LDS, version: '1' },
    ]);
    p.close();
  });

  it('keeps the latest version and publishes at most one ack per proxy and type per interval', () => {
    const { p, out, advance } = publisher();
    p.push({ event: 'ack', proxyId: 'a', typeUrl: CDS, version: '1' });
    p.push({ event: 'ack', proxyId: 'a', typeUrl: CDS, version: '2' });
    p.flush();
    expect(out).toEqual([{ proxyId: 'a', event: 'ack', typeUrl: CDS, version: '2' }]);
    advance(500);
    p.push({ event: 'ack', proxyId: 'a', typeUrl: CDS, version: '3' });
    p.push({ event: 'ack', proxyId: 'b', typeUrl: CDS, version: '3' });
    p.flush();
    expect(out.slice(1)).toEqual([{ proxyId: 'b', event: 'ack', typeUrl: CDS, version: '3' }]);
    p.push({ event: 'ack', proxyId: 'a', typeUrl: CDS, version: '4' });
    advance(500);
    p.flush();
    expect(out.slice(2)).toEqual([{ proxyId: 'a', event: 'ack', typeUrl: CDS, version: '4' }]);
    p.close();
  });

  it("publishes a proxy's held ACKs before its nack or disconnect", async () => {
    const { p, out } = publisher();
    p.push({ event: 'ack', proxyId: 'a', typeUrl: CDS, version: '1' });
    p.push({ event: 'ack', proxyId: 'b', typeUrl: CDS, version: '1' });
    p.push({ event: 'nack', proxyId: 'a', typeUrl: CDS, version: '2', error: 'bad' });
    p.push({ event: 'ack', proxyId: 'a', typeUrl: LDS, version: '1' });
    p.push({ event: 'disconnected', proxyId: 'a' });
    await new Promise((r) => setImmediate(r));
    expect(out.map((e) => `${e.proxyId} ${e.event} ${e.version ?? ''}`)).toEqual(['a ack 1', 'a nack 2', 'a ack 1', 'a disconnected ']);
    p.close();
    expect(out.at(-1)).toEqual({ proxyId: 'b', event: 'ack', typeUrl: CDS, version: '1' });
  });
});
