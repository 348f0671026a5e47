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

function setup(quietMs = 100, maxDelayMs = 500) {
  const clock = new FakeClock();
  const flushed: { at: number; value: number[] }[] = [];
  const d = new Debouncer<number[]>({ quietMs, maxDelayMs, clock, merge: (a, b) => [...a, ...b], flush: (value) => flushed.push({ at: clock.now(), value }) });
  return { clock, flushed, d };
}

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
});
