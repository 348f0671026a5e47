import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RecordBatcher } from './batcher';
import { createTelemetryPublisher } from './publisher';
import type { TelemetryRecord } from './record';

const rec = (n: number): { n: number } => ({ n });

describe('RecordBatcher', () => {
  it('publishes full batches by size and the rest on flush', async () => {
    const batches: number[][] = [];
    const b = new RecordBatcher<{ n: number }>({ maxRecords: 3, flushMs: 60_000, publish: async (r) => void batches.push(r.map((x) => x.n)) });
    for (let i = 0; i < 7; i++) b.add(rec(i));
    await b.flush();
    expect(batches).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(b.published).toBe(7);
  });

  it('publishes a partial batch after flushMs', async () => {
    const got: number[] = [];
    const b = new RecordBatcher<{ n: number }>({ maxRecords: 100, flushMs: 20, publish: async (r) => void got.push(r.length) });
    b.add(rec(1));
    b.add(rec(2));
    await new Promise((r) => setTimeout(r, 80));
    expect(got).toEqual([2]);
  });

  it('drops beyond its bound and counts failed publishes, by reason', async () => {
    const reasons: Record<string, number> = {};
    const b = new RecordBatcher<{ n: number }>({
      maxRecords: 2,
      flushMs: 60_000,
      maxBuffered: 2,
      publish: () => Promise.reject(new Error('nats down')),
      onDropped: (reason, n) => void (reasons[reason] = (reasons[reason] ?? 0) + n),
    });
    // 0,1 go out at once (and fail); 2,3 fill the buffer behind them; 4 finds it full.
    for (let i = 0; i < 5; i++) b.add(rec(i));
    await b.flush();
    expect(b.dropped).toBe(5);
    expect(reasons).toEqual({ publish_failed: 4, buffer_full: 1 });
  });

  it('refuses options out of bounds with the field named', () => {
    expect(() => new RecordBatcher({ maxRecords: 0, flushMs: 10, publish: async () => {} })).toThrow(/maxRecords/);
    expect(() => new RecordBatcher({ maxRecords: 20_000, flushMs: 10, publish: async () => {} })).toThrow(/maxRecords/);
    expect(() => new RecordBatcher({ maxRecords: 10, flushMs: 0, publish: async () => {} })).toThrow(/flushMs/);
    expect(() => new RecordBatcher({ maxRecords: 10, flushMs: 10, maxBuffered: 5, publish: async () => {} })).toThrow(/maxBuffered/);
  });
});

describe('createTelemetryPublisher', () => {
  it('counts dropped records in aviary_agent_telemetry_records_dropped_total', async () => {
    const registry = new Registry();
    const p = createTelemetryPublisher({ publish: () => Promise.reject(new Error('no nats')), maxRecords: 1, maxBuffered: 1, flushMs: 10, registry });
    p.add({} as TelemetryRecord);
    p.add({} as TelemetryRecord);
    await p.flush();
    const text = await registry.metrics();
    expect(text).toMatch(/aviary_agent_telemetry_records_dropped_total\{reason="publish_failed"\} 2/);
    expect(text).toMatch(/aviary_agent_telemetry_records_dropped_total\{reason="buffer_full"\} 0/);
    expect(p.dropped).toBe(2);
  });
});
