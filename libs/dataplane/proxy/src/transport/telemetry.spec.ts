import { describe, expect, it } from 'vitest';
import { RecordBatcher } from './telemetry';
import type { ProxyRequestRecord } from './proxy';

const rec = (n: number): ProxyRequestRecord =>
  ({ reporter: 'source', responseCode: 200 + n, responseFlags: '-', protocol: 'http' }) as unknown as ProxyRequestRecord;

describe('RecordBatcher', () => {
  it('publishes full batches by size and the rest on flush', async () => {
    const batches: number[] = [];
    const b = new RecordBatcher({ maxRecords: 3, flushMs: 60_000, publish: async (r) => void batches.push(r.length) });
    for (let i = 0; i < 7; i++) b.add(rec(i));
    await b.flush();
    expect(batches).toEqual([3, 3, 1]);
    expect(b.published).toBe(7);
  });

  it('drops beyond its bound and counts failed publishes', async () => {
    const b = new RecordBatcher({ maxRecords: 2, flushMs: 60_000, maxBuffered: 2, publish: () => Promise.reject(new Error('nats down')) });
    for (let i = 0; i < 5; i++) b.add(rec(i));
    await b.flush();
    expect(b.dropped).toBe(5);
  });
});
