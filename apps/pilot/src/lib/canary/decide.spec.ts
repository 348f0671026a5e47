import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CanarySpec, CanaryStatus } from '@aviary/mesh-api';
import { command, decide, evaluate, maxWeightOf, planOf, targetProblem, type CanaryPlan, type Observation } from './decide';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const spec = (over: Partial<CanarySpec> = {}): CanarySpec => ({
  target: { virtualService: 'hello', route: 'hello' },
  stable: { host: 'hello', subset: 'v1' },
  canary: { host: 'hello', subset: 'v2' },
  steps: [{ weight: 10 }, { weight: 50 }],
  analysis: { interval: '10s', minRequests: 10, successRate: 99, p99LatencyMs: 500, failedChecksLimit: 2 },
  ...over,
});
/** The collector's summary window in most cases here: 1 s, shorter than any step. */
const WINDOW_MS = 1_000;
const healthy = (timeMs: number, requests = 100, windowMs = WINDOW_MS): Observation => ({ canary: { requests, errorRatio: 0, p99Ms: 20, timeMs, windowMs }, stable: { requests, errorRatio: 0, p99Ms: 20, timeMs, windowMs } });
const failing = (timeMs: number, windowMs = WINDOW_MS): Observation => ({ canary: { requests: 100, errorRatio: 0.2, p99Ms: 20, timeMs, windowMs }, stable: { requests: 100, errorRatio: 0, p99Ms: 20, timeMs, windowMs } });

/** Runs decide every second for `seconds`, with the observation `obs(t)` (a summary each second). */
function run(plan: CanaryPlan, start: CanaryStatus | undefined, from: number, seconds: number, obs: (t: number) => Observation): { status: CanaryStatus; weights: number[]; reasons: string[] } {
  let status = start;
  const weights: number[] = [];
  const reasons: string[] = [];
  for (let i = 0; i < seconds; i++) {
    const t = from + i * 1000;
    const d = decide(plan, status, 1, obs(t), t);
    status = d.status;
    weights.push(status.currentWeight);
    if (d.transition) reasons.push(d.transition.reason);
  }
  return { status: status!, weights, reasons };
}

describe('planOf', () => {
  it('fills defaults and expands stepWeight/maxWeight', () => {
    const p = planOf(spec({ steps: undefined, stepWeight: 20, maxWeight: 50, analysis: undefined }));
    expect(p.steps.map((s) => s.weight)).toEqual([20, 40, 50]);
    expect(p).toMatchObject({ intervalMs: 30_000, minRequests: 1, failedChecksLimit: 2, maxDataAgeMs: 60_000, failurePolicy: 'Rollback' });
    expect(p.steps[0]!.minDurationMs).toBe(30_000);
    expect(planOf(spec({ steps: [{ weight: 10, minDurationSeconds: 60 }] })).steps).toEqual([{ weight: 10, minDurationMs: 60_000 }]);
  });
});

describe('evaluate', () => {
  const plan = planOf(spec({ analysis: { minRequests: 10, successRate: 99, p99LatencyMs: 500, compareToStable: { maxSuccessRateDrop: 1, maxLatencyRatio: 2 } } }));
  it('passes, fails with every failed gate named, or is inconclusive on too few requests', () => {
    expect(evaluate(plan, { requests: 100, errorRatio: 0.001, p99Ms: 30, timeMs: T0, windowMs: WINDOW_MS }, { requests: 100, errorRatio: 0, p99Ms: 20, timeMs: T0, windowMs: WINDOW_MS }, T0).verdict).toBe('Passed');
    const bad = evaluate(plan, { requests: 100, errorRatio: 0.2, p99Ms: 900, timeMs: T0, windowMs: WINDOW_MS }, { requests: 100, errorRatio: 0, p99Ms: 20, timeMs: T0, windowMs: WINDOW_MS }, T0);
    expect(bad.verdict).toBe('Failed');
    expect(bad.reasons).toEqual(['success rate 80% < 99%', 'p99 900ms > 500ms', "success rate 80% is 20 points below stable's 100% (max drop 1)", "p99 900ms > 2 × stable's 20ms"]);
    expect(bad.canary).toEqual({ requests: 100, successRate: 80, p99Ms: 900, time: new Date(T0).toISOString(), windowSeconds: 1 });
    expect(evaluate(plan, { requests: 3, errorRatio: 1, p99Ms: 1, timeMs: T0, windowMs: WINDOW_MS }, undefined, T0)).toMatchObject({ verdict: 'Inconclusive' });
  });
  it('needs stable traffic only for the relative gates', () => {
    const rel = planOf(spec({ analysis: { compareToStable: { maxLatencyRatio: 1.5 } } }));
    expect(evaluate(rel, { requests: 100, errorRatio: 0, p99Ms: 30, timeMs: T0, windowMs: WINDOW_MS }, undefined, T0).verdict).toBe('Inconclusive');
  });
});

describe('decide', () => {
  const plan = planOf(spec());

  it('goes 0 → 10 → 50 → 100 when healthy, one step per passed analysis after the step minimum', () => {
    const r = run(plan, undefined, T0, 40, healthy);
    expect(r.reasons).toEqual(['Started', 'StepAdvanced', 'Promoted']);
    expect(r.status).toMatchObject({ phase: 'Promoted', currentWeight: 100, failedChecks: 0 });
    expect([...new Set(r.weights)]).toEqual([10, 50, 100]);
    expect(r.status.lastAnalysis?.verdict).toBe('Passed');
    expect(r.status.conditions.find((c) => c.type === 'Progressing')?.status).toBe('False');
    expect(r.status.conditions.find((c) => c.type === 'TelemetryFresh')?.status).toBe('True');
  });

  it('rolls back to 0 after failedChecksLimit consecutive failed analyses, within two intervals', () => {
    const started = decide(plan, undefined, 1, {}, T0).status;
    const r = run(plan, started, T0 + 1000, 30, failing);
    expect(r.status).toMatchObject({ phase: 'RolledBack', currentWeight: 0, failedChecks: 2, reason: 'RolledBack' });
    expect(r.status.message).toContain('success rate 80% < 99%');
    // The first analysis is due at once (T0+1s, data newer than the step), the second one interval later.
    expect(Date.parse(r.status.lastTransitionTime) - T0).toBe(11_000);
  });

  it('pauses instead when the failure policy says so, keeping the weight', () => {
    const p = planOf(spec({ failurePolicy: 'Pause' }));
    const r = run(p, decide(p, undefined, 1, {}, T0).status, T0 + 1000, 30, failing);
    expect(r.status).toMatchObject({ phase: 'Paused', currentWeight: 10, reason: 'PausedOnFailure' });
  });

  it('a pass in between resets the count of consecutive failures', () => {
    const plan = planOf(spec({ steps: [{ weight: 10, minDurationSeconds: 3600 }] }));
    let s = decide(plan, undefined, 1, {}, T0).status;
    let i = 0;
    for (const ok of [false, true, false, true, false]) {
      const t = T0 + 11_000 + i++ * 10_000;
      s = decide(plan, s, 1, ok ? healthy(t) : failing(t), t).status;
    }
    expect(s.phase).toBe('Progressing');
    expect(s.failedChecks).toBe(1);
  });

  it('takes no decision on a telemetry gap: old, missing or not newer than the step', () => {
    const s = decide(plan, undefined, 1, {}, T0).status;
    const none = decide(plan, s, 1, {}, T0 + 20_000);
    expect(none.transition).toBeUndefined();
    expect(none.status.currentWeight).toBe(10);
    expect(none.status.conditions.find((c) => c.type === 'TelemetryFresh')).toMatchObject({ status: 'False', reason: 'Stale' });
    const old = decide(plan, s, 1, failing(T0 + 1000), T0 + 60_000);
    expect(old.status.failedChecks).toBe(0);
    expect(old.status.conditions.find((c) => c.type === 'TelemetryFresh')?.message).toContain('59s old');
    const beforeStep = decide(plan, s, 1, failing(T0 - 1000), T0 + 10_000);
    expect(beforeStep.status.failedChecks).toBe(0);
    // The same summary is judged once.
    const once = decide(plan, s, 1, failing(T0 + 5000), T0 + 10_000).status;
    expect(once.failedChecks).toBe(1);
    expect(decide(plan, once, 1, failing(T0 + 5000), T0 + 20_000).status.failedChecks).toBe(1);
  });

  describe('windows against the step start', () => {
    const W = 10_000;
    it('a window that began before the step started is not judged, healthy or failing: no analysis, TelemetryFresh False', () => {
      const s = decide(plan, undefined, 1, {}, T0).status;
      for (const obs of [healthy(T0 + 9_999, 1000, W), failing(T0 + 9_999, W)]) {
        const d = decide(plan, s, 1, obs, T0 + 10_000);
        expect(d.transition).toBeUndefined();
        expect(d.status).toMatchObject({ currentWeight: 10, failedChecks: 0 });
        expect(d.status.lastAnalysis).toBeUndefined();
        expect(d.status.conditions.find((c) => c.type === 'TelemetryFresh')).toMatchObject({ status: 'False', message: expect.stringContaining('starts before the current step started') });
      }
    });
    it('a window that began at or after the step started is judged, and two failing ones roll back one interval apart', () => {
      const s = decide(plan, undefined, 1, {}, T0).status;
      const first = decide(plan, s, 1, failing(T0 + W, W), T0 + W);
      expect(first.status).toMatchObject({ failedChecks: 1, lastAnalysis: { verdict: 'Failed', canary: { windowSeconds: 10, time: new Date(T0 + W).toISOString() } } });
      const second = decide(plan, first.status, 1, failing(T0 + 2 * W, W), T0 + 2 * W);
      expect(second.status).toMatchObject({ phase: 'RolledBack', currentWeight: 0 });
    });
    it('after a step advances, windows that still cover the previous step are not judged for the new one', () => {
      // Healthy 1 s windows: analyses at T0+1 s and T0+11 s, the second one past the step minimum advances.
      const r = run(plan, undefined, T0, 12, healthy);
      expect(r.status).toMatchObject({ currentWeight: 50, stepIndex: 1 });
      const advancedAt = Date.parse(r.status.stepStartedAt!);
      const spanning = decide(plan, r.status, 1, failing(advancedAt + W - 1, W), advancedAt + W);
      expect(spanning.status).toMatchObject({ currentWeight: 50, failedChecks: 0 });
      const inside = decide(plan, r.status, 1, failing(advancedAt + W, W), advancedAt + W);
      expect(inside.status).toMatchObject({ currentWeight: 50, failedChecks: 1 });
    });
    it('with a window as long as the step minimum, a healthy step advances on the first window inside it', () => {
      const s = decide(plan, undefined, 1, {}, T0).status;
      const r = run(plan, s, T0 + 1_000, 30, (t) => healthy(t, 100, W));
      expect(r.reasons).toEqual(['StepAdvanced', 'Promoted']);
      // Step 1 from T0: its first whole window ends at T0+10 s; step 2 from T0+10 s: at T0+20 s.
      expect(Date.parse(r.status.lastTransitionTime) - T0).toBe(20_000);
    });
  });

  it('holds a step on too few requests (neither pass nor failure)', () => {
    const s = decide(plan, undefined, 1, {}, T0).status;
    const d = decide(plan, s, 1, healthy(T0 + 9000, 3), T0 + 10_000);
    expect(d.transition).toBeUndefined();
    expect(d.status).toMatchObject({ currentWeight: 10, failedChecks: 0, lastAnalysis: { verdict: 'Inconclusive' } });
  });

  it('restarts a finished canary when its spec changes, and waits while a target is not ready', () => {
    const done = run(plan, undefined, T0, 40, healthy).status;
    expect(decide(plan, done, 1, healthy(T0 + 50_000), T0 + 50_000).transition).toBeUndefined();
    const again = decide(plan, done, 2, {}, T0 + 50_000);
    expect(again.transition).toMatchObject({ reason: 'Restarted', to: { phase: 'Progressing', weight: 10 } });
    const pending = targetProblem(undefined, 1, 'VirtualService demo/hello not found', T0);
    expect(pending.status).toMatchObject({ phase: 'Pending', currentWeight: 0, reason: 'TargetNotReady', message: 'VirtualService demo/hello not found' });
    expect(decide(plan, pending.status, 1, {}, T0 + 1000).transition).toMatchObject({ reason: 'Started' });
    const lost = targetProblem(again.status, 2, 'route gone', T0 + 51_000);
    expect(lost.transition).toMatchObject({ reason: 'TargetLost', to: { phase: 'Failed' } });
  });
});

describe('command', () => {
  const plan = planOf(spec());
  const started = decide(plan, undefined, 1, {}, T0).status;
  it('pauses and resumes (no decision while paused), promotes and aborts', () => {
    const paused = command(plan, started, 'pause', T0 + 1000).status;
    expect(paused).toMatchObject({ phase: 'Paused', currentWeight: 10 });
    expect(decide(plan, paused, 1, failing(T0 + 20_000), T0 + 20_000).status).toEqual(paused);
    const resumed = command(plan, paused, 'resume', T0 + 30_000).status;
    expect(resumed).toMatchObject({ phase: 'Progressing', currentWeight: 10, failedChecks: 0, stepStartedAt: new Date(T0 + 30_000).toISOString() });
    expect(command(plan, started, 'promote', T0).status).toMatchObject({ phase: 'Promoted', currentWeight: 100, reason: 'PromotedManually' });
    expect(command(plan, started, 'abort', T0).status).toMatchObject({ phase: 'RolledBack', currentWeight: 0, reason: 'Aborted' });
  });
  it('refuses commands the phase does not allow', () => {
    const done = command(plan, started, 'abort', T0).status;
    expect(() => command(plan, done, 'promote', T0)).toThrow(expect.objectContaining({ code: 'CANARY_INVALID_COMMAND' }));
    expect(() => command(plan, started, 'resume', T0)).toThrow(/cannot resume a canary in phase Progressing/);
  });
});

describe('properties', () => {
  type Tick = { dt: number; kind: 'healthy' | 'failing' | 'slow' | 'few' | 'gap' | 'old'; cmd?: 'pause' | 'resume' | 'promote' | 'abort' };
  const tick = fc.record(
    {
      dt: fc.integer({ min: 100, max: 20_000 }),
      kind: fc.constantFrom<Tick['kind']>('healthy', 'failing', 'slow', 'few', 'gap', 'old'),
      cmd: fc.constantFrom<Tick['cmd']>('pause', 'resume', 'promote', 'abort'),
    },
    { requiredKeys: ['dt', 'kind'] },
  );
  const plans = fc
    .record({
      steps: fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 6 }).map((ws) => ws.sort((a, b) => a - b).map((weight) => ({ weight }))),
      interval: fc.integer({ min: 1, max: 30 }),
      limit: fc.integer({ min: 1, max: 4 }),
      policy: fc.constantFrom<'Rollback' | 'Pause'>('Rollback', 'Pause'),
    })
    .map((p) => planOf(spec({ steps: p.steps, analysis: { interval: `${p.interval}s`, minRequests: 10, successRate: 99, p99LatencyMs: 500, failedChecksLimit: p.limit }, failurePolicy: p.policy })));
  const observe = (k: Tick['kind'], t: number): Observation => {
    switch (k) {
      case 'healthy':
        return healthy(t - 10);
      case 'failing':
        return failing(t - 10);
      case 'slow':
        return { canary: { requests: 100, errorRatio: 0, p99Ms: 5000, timeMs: t - 10, windowMs: WINDOW_MS } };
      case 'few':
        return healthy(t - 10, 2);
      case 'gap':
        return {};
      case 'old':
        return failing(t - 10 * 60_000);
    }
  };

  it('while only healthy data arrives, weights never decrease and stay within maxWeight until promotion', () => {
    fc.assert(
      fc.property(plans, fc.array(fc.record({ dt: fc.integer({ min: 100, max: 20_000 }), kind: fc.constantFrom<Tick['kind']>('healthy', 'few', 'gap', 'old') }), { maxLength: 60 }), (plan, ticks) => {
        let t = T0;
        let s = decide(plan, undefined, 1, {}, t).status;
        for (const k of ticks) {
          t += k.dt;
          // 'old' here is stale healthy-looking data: still no failure can come of it
          const obs = k.kind === 'old' ? healthy(t - 10 * 60_000) : observe(k.kind, t);
          const next = decide(plan, s, 1, obs, t).status;
          expect(next.currentWeight).toBeGreaterThanOrEqual(s.currentWeight);
          if (next.phase !== 'Promoted') expect(next.currentWeight).toBeLessThanOrEqual(maxWeightOf(plan));
          expect(['Progressing', 'Promoted']).toContain(next.phase);
          s = next;
        }
      }),
    );
  });

  it('under any telemetry and commands: weight ≤ maxWeight unless Promoted (100), RolledBack is always 0, stale data never changes phase or weight', () => {
    fc.assert(
      fc.property(plans, fc.array(tick, { maxLength: 80 }), (plan, ticks) => {
        let t = T0;
        let s = decide(plan, undefined, 1, {}, t).status;
        let consecutiveFailures = 0;
        for (const k of ticks) {
          t += k.dt;
          let next: CanaryStatus;
          if (k.cmd !== undefined) {
            try {
              next = command(plan, s, k.cmd, t).status;
            } catch {
              next = s;
            }
          } else {
            const d = decide(plan, s, 1, observe(k.kind, t), t);
            next = d.status;
            if (k.kind === 'gap' || k.kind === 'old') {
              expect(next.phase).toBe(s.phase);
              expect(next.currentWeight).toBe(s.currentWeight);
            }
            if (next.lastAnalysis !== s.lastAnalysis && next.lastAnalysis?.verdict === 'Failed') consecutiveFailures++;
            else if (next.lastAnalysis !== s.lastAnalysis && next.lastAnalysis?.verdict === 'Passed') consecutiveFailures = 0;
            if (next.phase === 'RolledBack' && s.phase !== 'RolledBack') expect(consecutiveFailures).toBeGreaterThanOrEqual(plan.failedChecksLimit);
          }
          if (next.phase === 'RolledBack') expect(next.currentWeight).toBe(0);
          if (next.phase === 'Promoted') expect(next.currentWeight).toBe(100);
          else expect(next.currentWeight).toBeLessThanOrEqual(maxWeightOf(plan));
          if (next.phase !== s.phase || next.currentWeight !== s.currentWeight) consecutiveFailures = 0;
          s = next;
        }
      }),
    );
  });
});
