import { describe, expect, it } from 'vitest';
import type { Clock } from '@aviary/xds-cache';
import { SendBudget } from './send-budget';

/** A clock whose time moves only when the test says so. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  let timers: { at: number; fn: () => void }[] = [];
  return {
    now: () => now,
    setTimer: (fn, ms) => {
      const timer = { at: now + ms, fn };
      timers.push(timer);
      return timer;
    },
    clearTimer: (handle) => {
      timers = timers.filter((t) => t !== handle);
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) t.fn();
    },
  };
}

describe('SendBudget', () => {
  function setup() {
    const clock = manualClock();
    const budget = new SendBudget(100, 2_000, clock);
    const sent: string[] = [];
    const done = new Map<string, () => void>();
    const submit = (name: string, bytes: number): void =>
      budget.submit(bytes, (d) => {
        sent.push(name);
        done.set(name, d);
      });
    return { clock, budget, sent, done, submit };
  }

  it('sends what fits at once and the rest in submission order as writes complete', () => {
    const { budget, sent, done, submit } = setup();
    submit('a', 60);
    submit('b', 30);
    submit('c', 30);
    submit('d', 15);
    expect(sent).toEqual(['a', 'b']);
    expect(budget.heldSize).toBe(90);
    done.get('b')!();
    expect(sent).toEqual(['a', 'b', 'c']);
    done.get('a')!();
    expect(sent).toEqual(['a', 'b', 'c', 'd']);
    done.get('a')!();
    expect(budget.heldSize).toBe(45);
  });

  it('sends a response larger than the budget once nothing else is held', () => {
    const { sent, done, submit } = setup();
    submit('a', 10);
    submit('huge', 500);
    expect(sent).toEqual(['a']);
    done.get('a')!();
    expect(sent).toEqual(['a', 'huge']);
  });

  it('stops counting a response that is not written within holdMs, so a stalled stream does not hold the others', () => {
    const { clock, budget, sent, submit } = setup();
    submit('stalled', 80);
    submit('next', 80);
    clock.advance(1_999);
    expect(sent).toEqual(['stalled']);
    clock.advance(1);
    expect(sent).toEqual(['stalled', 'next']);
    expect(budget.heldSize).toBe(80);
  });

  it('keeps the order when a stream is gone and its send completes at once', () => {
    const { budget, sent, done, submit } = setup();
    submit('a', 100);
    for (const name of ['gone1', 'gone2']) {
      budget.submit(50, (d) => {
        sent.push(name);
        d();
      });
    }
    submit('b', 50);
    done.get('a')!();
    expect(sent).toEqual(['a', 'gone1', 'gone2', 'b']);
    expect(budget.heldSize).toBe(50);
    expect(budget.waitingCount).toBe(0);
  });
});
