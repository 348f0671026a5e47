import { describe, expect, it } from 'vitest';
import { Debouncer, type Clock } from './index';

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements Clock {
  t = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
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

function setup(quietMs = 100, maxDelayMs = 500, leading?: (value: number[]) => boolean) {
  const clock = new FakeClock();
  const flushed: { at: number; value: number[] }[] = [];
  const d = new Debouncer<number[]>({
    quietMs,
    maxDelayMs,
    clock,
    merge: (a, b) => [...a, ...b],
    flush: (value) => flushed.push({ at: clock.now(), value }),
    ...(leading && { leading }),
  });
  return { clock, flushed, d };
}

/** Leading edge for values made only of non-negative numbers ("endpoint changes"); negatives stand for config changes. */
const endpointsOnly = (value: number[]) => value.every((n) => n >= 0);

describe('Debouncer', () => {
  it('flushes once after a quiet period, merging the burst', () => {
    const { clock, flushed, d } = setup();
    d.push([1]);
    clock.advance(50);
    d.push([2]);
    clock.advance(99);
    expect(flushed).toEqual([]);
    clock.advance(1);
    expect(flushed).toEqual([{ at: 150, value: [1, 2] }]);
    expect(d.pending).toBe(false);
  });

  it('never waits longer than maxDelay for a continuous burst', () => {
    const { clock, flushed, d } = setup(100, 300);
    for (let i = 0; i < 10; i++) {
      d.push([i]);
      clock.advance(60);
    }
    expect(flushed[0]).toEqual({ at: 300, value: [0, 1, 2, 3, 4] });
    expect(flushed[1]).toEqual({ at: 600, value: [5, 6, 7, 8, 9] });
  });

  it('flushNow and cancel', () => {
    const { clock, flushed, d } = setup();
    d.push([1]);
    d.flushNow();
    expect(flushed).toEqual([{ at: 0, value: [1] }]);
    d.push([2]);
    d.cancel();
    clock.advance(1000);
    expect(flushed).toHaveLength(1);
    expect(() => new Debouncer({ quietMs: 10, maxDelayMs: 5, merge: (a) => a, flush: () => undefined })).toThrow(RangeError);
  });

  describe('leading edge', () => {
    it('flushes the first qualifying value after a quiet period at the end of the turn, not after quietMs', () => {
      const { clock, flushed, d } = setup(100, 1000, endpointsOnly);
      clock.advance(5000);
      d.push([1]);
      expect(flushed).toEqual([]);
      expect(d.pending).toBe(true);
      clock.advance(0);
      expect(flushed).toEqual([{ at: 5000, value: [1] }]);
      expect(d.leadingFlushes).toBe(1);
    });

    it('takes values pushed before its timer fires along, while they qualify', () => {
      const { clock, flushed, d } = setup(100, 1000, endpointsOnly);
      d.push([1]);
      d.push([2]);
      clock.advance(0);
      expect(flushed).toEqual([{ at: 0, value: [1, 2] }]);
    });

    it('falls back to the quiet period when a non-qualifying value joins, and never leads with one', () => {
      const { clock, flushed, d } = setup(100, 1000, endpointsOnly);
      d.push([1]);
      d.push([-1]);
      clock.advance(99);
      expect(flushed).toEqual([]);
      clock.advance(1);
      expect(flushed).toEqual([{ at: 100, value: [1, -1] }]);
      clock.advance(1000);
      d.push([-2]);
      clock.advance(99);
      expect(flushed).toHaveLength(1);
      clock.advance(1);
      expect(flushed[1]).toEqual({ at: 1200, value: [-2] });
      expect(d.leadingFlushes).toBe(0);
    });

    it('debounces values within quietMs of the previous one: a burst is one leading flush and a coalesced tail', () => {
      const { clock, flushed, d } = setup(100, 1000, endpointsOnly);
      d.push([0]);
      clock.advance(0);
      for (let i = 1; i <= 5; i++) {
        clock.advance(20);
        d.push([i]);
      }
      clock.advance(100);
      expect(flushed).toEqual([
        { at: 0, value: [0] },
        { at: 200, value: [1, 2, 3, 4, 5] },
      ]);
      // Quiet again for quietMs since the last value: the next one leads again.
      d.push([6]);
      clock.advance(0);
      expect(flushed[2]).toEqual({ at: 200, value: [6] });
      expect(d.leadingFlushes).toBe(2);
    });

    it('coalesces a storm of 1,000 changes in one second into a handful of flushes, each value within maxDelay', () => {
      const { clock, flushed, d } = setup(100, 1000, endpointsOnly);
      const pushedAt = new Map<number, number>();
      for (let i = 0; i < 1000; i++) {
        pushedAt.set(i, clock.now());
        d.push([i]);
        clock.advance(1);
      }
      clock.advance(2000);
      expect(flushed.length).toBeLessThanOrEqual(3);
      expect(d.leadingFlushes).toBe(1);
      const delivered = flushed.flatMap((f) => f.value);
      expect(delivered).toEqual([...Array(1000).keys()]);
      for (const f of flushed) for (const v of f.value) expect(f.at - pushedAt.get(v)!).toBeLessThanOrEqual(1000);
    });

    it('a storm that never pauses flushes once per maxDelay', () => {
      const { clock, flushed, d } = setup(100, 1000, endpointsOnly);
      for (let i = 0; i < 10_000; i++) {
        d.push([i]);
        clock.advance(1);
      }
      clock.advance(2000);
      // One leading flush, then one per maxDelay of the 10 s storm, plus the tail.
      expect(flushed.length).toBeGreaterThanOrEqual(10);
      expect(flushed.length).toBeLessThanOrEqual(12);
      expect(flushed.flatMap((f) => f.value)).toHaveLength(10_000);
    });

    it('cancel drops a leading value too', () => {
      const { clock, flushed, d } = setup(100, 1000, endpointsOnly);
      d.push([1]);
      d.cancel();
      clock.advance(1000);
      expect(flushed).toEqual([]);
      expect(d.pending).toBe(false);
    });
  });
});
