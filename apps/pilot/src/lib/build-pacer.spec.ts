import { describe, expect, it } from 'vitest';
import { BuildPacer } from './build-pacer';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pacer(minIntervalMs: number, buildMs = 0) {
  let clock = 1_000_000;
  let builds = 0;
  const published: Array<{ result: number; observedAt: number; at: number }> = [];
  const p = new BuildPacer<number>({
    minIntervalMs,
    // a clock that moves with real time, plus `buildMs` for every build (a build "takes" that long)
    now: () => clock + performance.now(),
    build: () => {
      clock += buildMs;
      return ++builds;
    },
    publish: (result, observedAt) => published.push({ result, observedAt, at: performance.now() }),
  });
  return { p, published };
}

describe('BuildPacer', () => {
  it('builds once, on the next turn, for a burst of requests after a quiet spell', async () => {
    const { p, published } = pacer(50);
    for (let i = 0; i < 100; i++) p.request();
    expect(published).toEqual([]);
    await turn();
    expect(published.map((b) => b.result)).toEqual([1]);
    p.cancel();
  });

  it('spaces builds at least minIntervalMs apart while requests keep coming', async () => {
    const { p, published } = pacer(100);
    p.buildNow();
    const builtAt = performance.now();
    p.request();
    p.request();
    await turn();
    await sleep(50);
    expect(published.map((b) => b.result)).toEqual([1]);
    while (published.length < 2) await sleep(5);
    expect(published[1]!.at - builtAt).toBeGreaterThanOrEqual(95);
    expect(published[1]!.observedAt).toBeGreaterThan(published[0]!.observedAt);
  });

  it('spaces builds by twice the last build time when that is longer', async () => {
    const { p, published } = pacer(10, 100);
    p.buildNow();
    const builtAt = performance.now();
    p.request();
    await sleep(120);
    expect(published).toHaveLength(1);
    while (published.length < 2) await sleep(5);
    expect(published[1]!.at - builtAt).toBeGreaterThanOrEqual(190);
  });

  it('cancel drops a requested build', async () => {
    const { p, published } = pacer(50);
    p.request();
    p.cancel();
    await turn();
    p.buildNow();
    p.request();
    p.cancel();
    await sleep(80);
    expect(published.map((b) => b.result)).toEqual([1]);
  });
});
