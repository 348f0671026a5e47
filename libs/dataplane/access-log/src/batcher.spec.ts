import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AviaryError } from '@aviary/errors';
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

  it('holds records while publishing fails, up to its bound (in flight included), and sends them in order with stable batch ids once it works', async () => {
    const reasons: Record<string, number> = {};
    let up = false;
    const attempts: string[] = [];
    const sent: Array<{ id: string; ns: number[] }> = [];
    let failed!: () => void;
    const firstFailure = new Promise<void>((r) => (failed = r));
    const b = new RecordBatcher<{ n: number }>({
      maxRecords: 2,
      flushMs: 60_000,
      maxBuffered: 4,
      retry: { initialMs: 1, maxMs: 4 },
      batchIdPrefix: 'p',
      publish: async (r, id) => {
        attempts.push(id);
        if (!up) {
          failed();
          throw new Error('nats down');
        }
        sent.push({ id, ns: r.map((x) => x.n) });
      },
      onDropped: (reason, n) => void (reasons[reason] = (reasons[reason] ?? 0) + n),
    });
    // 0,1 go out at once (and fail, so they are held); 2,3 queue behind them; 4 and 5 find the bound.
    for (let i = 0; i < 6; i++) b.add(rec(i));
    await firstFailure;
    expect(b.buffered).toBe(4);
    expect(reasons).toEqual({ buffer_full: 2 });
    up = true;
    await b.flush();
    expect(sent).toEqual([
      { id: 'p-1', ns: [0, 1] },
      { id: 'p-2', ns: [2, 3] },
    ]);
    // Every attempt at the first batch carried its id: a retry whose first attempt was stored is deduplicated.
    expect(new Set(attempts.slice(0, attempts.indexOf('p-2')))).toEqual(new Set(['p-1']));
    expect(b.retried).toBe(attempts.length - 2);
    expect(b.published).toBe(4);
    expect(b.dropped).toBe(2);
  });

  it('drops a batch the bus refuses for good (an invalid event) instead of retrying it', async () => {
    const reasons: Record<string, number> = {};
    let calls = 0;
    const b = new RecordBatcher<{ n: number }>({
      maxRecords: 2,
      flushMs: 60_000,
      publish: async () => {
        calls++;
        throw new AviaryError('INVALID_ARGUMENT', 'EVENT_INVALID', 'aviary.telemetry.v1.requests: data/records/0: bad');
      },
      onDropped: (reason, n) => void (reasons[reason] = (reasons[reason] ?? 0) + n),
    });
    b.add(rec(0));
    b.add(rec(1));
    await b.flush();
    expect(calls).toBe(1);
    expect(reasons).toEqual({ publish_failed: 2 });
  });

  it('gives up at the shutdown flush deadline and counts what it held as dropped (shutdown)', async () => {
    const reasons: Record<string, number> = {};
    const b = new RecordBatcher<{ n: number }>({
      maxRecords: 2,
      flushMs: 60_000,
      retry: { initialMs: 5, maxMs: 5 },
      publish: () => Promise.reject(new Error('nats down')),
      onDropped: (reason, n) => void (reasons[reason] = (reasons[reason] ?? 0) + n),
    });
    for (let i = 0; i < 3; i++) b.add(rec(i));
    await b.flush(50);
    expect(reasons).toEqual({ shutdown: 3 });
    expect(b.buffered).toBe(0);
    b.add(rec(9));
    expect(reasons).toEqual({ shutdown: 4 });
  });

  it('refuses options out of bounds with the field named', () => {
    expect(() => new RecordBatcher({ maxRecords: 0, flushMs: 10, publish: async () => {} })).toThrow(/maxRecords/);
    expect(() => new RecordBatcher({ maxRecords: 20_000, flushMs: 10, publish: async () => {} })).toThrow(/maxRecords/);
    expect(() => new RecordBatcher({ maxRecords: 10, flushMs: 0, publish: async () => {} })).toThrow(/flushMs/);
    expect(() => new RecordBatcher({ maxRecords: 10, flushMs: 10, maxBuffered: 5, publish: async () => {} })).toThrow(/maxBuffered/);
    expect(() => new RecordBatcher({ maxRecords: 10, flushMs: 10, retry: { initialMs: 10, maxMs: 5 }, publish: async () => {} })).toThrow(/retry/);
  });
});

describe('createTelemetryPublisher', () => {
  it('counts dropped records in aviary_agent_telemetry_records_dropped_total, held ones in …_buffered', async () => {
    const registry = new Registry();
    const p = createTelemetryPublisher({ publish: () => Promise.reject(new Error('no nats')), maxRecords: 1, maxBuffered: 1, flushMs: 10, retry: { initialMs: 5, maxMs: 5 }, registry });
    p.add({} as TelemetryRecord);
    p.add({} as TelemetryRecord);
    expect(await registry.metrics()).toMatch(/aviary_agent_telemetry_records_buffered 1\n/);
    await p.flush(50);
    const text = await registry.metrics();
    expect(text).toMatch(/aviary_agent_telemetry_records_dropped_total\{reason="buffer_full"\} 1/);
    expect(text).toMatch(/aviary_agent_telemetry_records_dropped_total\{reason="shutdown"\} 1/);
    expect(text).toMatch(/aviary_agent_telemetry_records_dropped_total\{reason="publish_failed"\} 0/);
    expect(text).toMatch(/aviary_agent_telemetry_publish_retries_total [1-9]/);
    expect(p.dropped).toBe(2);
  });
});
