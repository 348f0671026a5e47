import { AviaryError } from '@aviary/errors';
import { parseDuration, type CanaryAnalysisResult, type CanaryCondition, type CanaryPhase, type CanarySample, type CanarySpec, type CanaryStatus } from '@aviary/mesh-api';

/**
 * The canary controller's decisions, as pure functions of (plan, stored status, telemetry, time):
 * no clock, no I/O. The controller reads the Canary and the latest summaries, calls `decide`, and
 * writes what comes back (route weights, then status). Everything the next decision needs is in
 * the returned status, so a restarted pilot continues where the last one stopped.
 */

export interface PlannedStep {
  readonly weight: number;
  readonly minDurationMs: number;
}

export interface CanaryPlan {
  readonly steps: readonly PlannedStep[];
  readonly intervalMs: number;
  readonly minRequests: number;
  /** Minimum canary success rate, percent. */
  readonly successRate?: number;
  readonly p99LatencyMs?: number;
  readonly maxSuccessRateDrop?: number;
  readonly maxLatencyRatio?: number;
  readonly failedChecksLimit: number;
  readonly maxDataAgeMs: number;
  readonly failurePolicy: 'Rollback' | 'Pause';
}

export const DEFAULT_INTERVAL_MS = 30_000;
export const DEFAULT_FAILED_CHECKS_LIMIT = 2;

/** The steps and gates of a (validated) spec, defaults filled in. */
export function planOf(spec: CanarySpec): CanaryPlan {
  const a = spec.analysis ?? {};
  const intervalMs = (a.interval === undefined ? undefined : parseDuration(a.interval)) ?? DEFAULT_INTERVAL_MS;
  const minMs = (s: number | undefined): number => (s === undefined ? intervalMs : s * 1000);
  let steps: PlannedStep[];
  if (spec.steps !== undefined) steps = spec.steps.map((s) => ({ weight: s.weight, minDurationMs: minMs(s.minDurationSeconds) }));
  else {
    const step = Math.max(1, spec.stepWeight ?? 10);
    const max = Math.min(100, Math.max(step, spec.maxWeight ?? 50));
    steps = [];
    for (let w = step; w < max; w += step) steps.push({ weight: w, minDurationMs: intervalMs });
    steps.push({ weight: max, minDurationMs: intervalMs });
  }
  return {
    steps,
    intervalMs,
    minRequests: Math.max(1, a.minRequests ?? 1),
    ...(a.successRate === undefined ? {} : { successRate: a.successRate }),
    ...(a.p99LatencyMs === undefined ? {} : { p99LatencyMs: a.p99LatencyMs }),
    ...(a.compareToStable?.maxSuccessRateDrop === undefined ? {} : { maxSuccessRateDrop: a.compareToStable.maxSuccessRateDrop }),
    ...(a.compareToStable?.maxLatencyRatio === undefined ? {} : { maxLatencyRatio: a.compareToStable.maxLatencyRatio }),
    failedChecksLimit: Math.max(1, a.failedChecksLimit ?? DEFAULT_FAILED_CHECKS_LIMIT),
    maxDataAgeMs: (a.maxDataAge === undefined ? undefined : parseDuration(a.maxDataAge)) ?? 2 * intervalMs,
    failurePolicy: spec.failurePolicy ?? 'Rollback',
  };
}

/** The largest weight the canary gets before promotion. */
export function maxWeightOf(plan: CanaryPlan): number {
  return plan.steps[plan.steps.length - 1]?.weight ?? 0;
}

/** One side's telemetry: the summary of its version (or host) over the window `[timeMs - windowMs, timeMs]`. */
export interface Sample {
  readonly requests: number;
  /** 0..1. */
  readonly errorRatio: number;
  readonly p99Ms: number;
  /** End of the window. */
  readonly timeMs: number;
  /** Length of the window (the collector's summaryWindowSeconds). */
  readonly windowMs: number;
}

export interface Observation {
  readonly canary?: Sample;
  readonly stable?: Sample;
}

/** Why a transition happened: a closed set (event field and log field). */
export const transitionReasons = [
  'Started',
  'Restarted',
  'StepAdvanced',
  'Promoted',
  'AnalysisFailed',
  'RolledBack',
  'PausedOnFailure',
  'Paused',
  'Resumed',
  'PromotedManually',
  'Aborted',
  'TargetNotReady',
  'TargetLost',
] as const;
export type TransitionReason = (typeof transitionReasons)[number];

export interface Transition {
  readonly from: { readonly phase: CanaryPhase; readonly weight: number };
  readonly to: { readonly phase: CanaryPhase; readonly weight: number };
  readonly stepIndex: number;
  readonly reason: TransitionReason;
  readonly message: string;
}

export interface Decision {
  readonly status: CanaryStatus;
  /** Set when the phase or the weight changed. */
  readonly transition?: Transition;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
const terminal = (p: CanaryPhase): boolean => p === 'Promoted' || p === 'RolledBack' || p === 'Failed';

function sampleOut(s: Sample): CanarySample {
  return { requests: s.requests, successRate: round((1 - s.errorRatio) * 100, 2), p99Ms: round(s.p99Ms, 3), time: iso(s.timeMs), windowSeconds: round(s.windowMs / 1000, 3) };
}

function condition(previous: readonly CanaryCondition[], type: string, status: CanaryCondition['status'], reason: string, message: string, nowMs: number): CanaryCondition {
  const before = previous.find((c) => c.type === type);
  const lastTransitionTime = before !== undefined && before.status === status ? before.lastTransitionTime : iso(nowMs);
  return { type, status, reason, message, lastTransitionTime };
}

/** The conditions for a status: `Progressing` from the phase, `TelemetryFresh` as given (kept when undefined). */
function withConditions(status: Omit<CanaryStatus, 'conditions'> & { conditions?: readonly CanaryCondition[] }, previous: readonly CanaryCondition[], nowMs: number, fresh?: { ok: boolean; message: string }): CanaryStatus {
  const progressing = status.phase === 'Progressing';
  const conditions: CanaryCondition[] = [
    condition(previous, 'Progressing', progressing ? 'True' : 'False', status.reason ?? status.phase, status.message ?? '', nowMs),
  ];
  const freshBefore = previous.find((c) => c.type === 'TelemetryFresh');
  if (fresh !== undefined) conditions.push(condition(previous, 'TelemetryFresh', fresh.ok ? 'True' : 'False', fresh.ok ? 'Fresh' : 'Stale', fresh.message, nowMs));
  else if (freshBefore !== undefined) conditions.push(freshBefore);
  return { ...status, conditions };
}

/** The initial status (no transition yet): Pending at weight 0. */
export function initialStatus(generation: number, nowMs: number): CanaryStatus {
  return withConditions(
    { phase: 'Pending', currentWeight: 0, stepIndex: -1, failedChecks: 0, observedGeneration: generation, lastTransitionTime: iso(nowMs), reason: 'Created', message: 'waiting for the first decision' },
    [],
    nowMs,
  );
}

function moveTo(
  status: CanaryStatus,
  phase: CanaryPhase,
  weight: number,
  stepIndex: number,
  reason: TransitionReason,
  message: string,
  nowMs: number,
  extra: Partial<CanaryStatus> = {},
): Decision {
  const next = withConditions(
    {
      ...status,
      ...extra,
      phase,
      currentWeight: weight,
      stepIndex,
      ...(weight !== status.currentWeight || stepIndex !== status.stepIndex ? { stepStartedAt: iso(nowMs) } : {}),
      reason,
      message,
      lastTransitionTime: iso(nowMs),
    },
    status.conditions,
    nowMs,
  );
  return {
    status: next,
    transition: { from: { phase: status.phase, weight: status.currentWeight }, to: { phase, weight }, stepIndex, reason, message },
  };
}

export interface Evaluation {
  readonly result: CanaryAnalysisResult;
}

/** Judges one observation against the gates. Inconclusive: too few canary requests. */
export function evaluate(plan: CanaryPlan, canary: Sample, stable: Sample | undefined, nowMs: number): CanaryAnalysisResult {
  const reasons: string[] = [];
  const c = sampleOut(canary);
  const s = stable === undefined ? undefined : sampleOut(stable);
  const base = { time: iso(nowMs), canary: c, ...(s === undefined ? {} : { stable: s }) };
  if (canary.requests < plan.minRequests) {
    return { ...base, verdict: 'Inconclusive', reasons: [`${canary.requests} canary requests in the window, fewer than minRequests ${plan.minRequests}`] };
  }
  if (plan.successRate !== undefined && c.successRate < plan.successRate) reasons.push(`success rate ${c.successRate}% < ${plan.successRate}%`);
  if (plan.p99LatencyMs !== undefined && c.p99Ms > plan.p99LatencyMs) reasons.push(`p99 ${c.p99Ms}ms > ${plan.p99LatencyMs}ms`);
  if (plan.maxSuccessRateDrop !== undefined || plan.maxLatencyRatio !== undefined) {
    if (s === undefined || s.requests === 0) {
      if (reasons.length === 0) return { ...base, verdict: 'Inconclusive', reasons: ['no stable traffic in the window to compare with'] };
    } else {
      if (plan.maxSuccessRateDrop !== undefined && s.successRate - c.successRate > plan.maxSuccessRateDrop) {
        reasons.push(`success rate ${c.successRate}% is ${round(s.successRate - c.successRate, 2)} points below stable's ${s.successRate}% (max drop ${plan.maxSuccessRateDrop})`);
      }
      if (plan.maxLatencyRatio !== undefined && c.p99Ms > s.p99Ms * plan.maxLatencyRatio) {
        reasons.push(`p99 ${c.p99Ms}ms > ${plan.maxLatencyRatio} × stable's ${s.p99Ms}ms`);
      }
    }
  }
  return { ...base, verdict: reasons.length === 0 ? 'Passed' : 'Failed', reasons };
}

/**
 * One step of the controller for one Canary.
 * - no status, or a finished canary whose spec changed (new generation): start at step 0;
 * - Progressing: when an analysis is due and the telemetry is fresh (its window starts at or
 *   after the current step's start, so no traffic from before the step dilutes it; it ends after
 *   the last analysed window; it is at most maxDataAge old), judge it; a pass after the step's
 *   minimum duration advances (or promotes after the last step), a failure counts, and
 *   `failedChecksLimit` consecutive failures roll back (weight 0) or pause;
 * - stale or missing telemetry: no decision (only the TelemetryFresh condition changes);
 * - Paused, Promoted, RolledBack, Failed: nothing (commands move them).
 */
export function decide(plan: CanaryPlan, current: CanaryStatus | undefined, generation: number, obs: Observation, nowMs: number): Decision {
  if (current === undefined) {
    const init = initialStatus(generation, nowMs);
    return moveTo(init, 'Progressing', plan.steps[0]!.weight, 0, 'Started', `canary weight ${plan.steps[0]!.weight}% (step 1 of ${plan.steps.length})`, nowMs, { failedChecks: 0 });
  }
  let status = current;
  if (status.observedGeneration !== generation) {
    if (terminal(status.phase) || status.phase === 'Pending') {
      return moveTo({ ...status, observedGeneration: generation }, 'Progressing', plan.steps[0]!.weight, 0, status.phase === 'Pending' ? 'Started' : 'Restarted', `spec generation ${generation}: canary weight ${plan.steps[0]!.weight}% (step 1 of ${plan.steps.length})`, nowMs, {
        failedChecks: 0,
        observedGeneration: generation,
      });
    }
    // A new spec mid-flight: keep the position, bounded by the new plan.
    const last = plan.steps.length - 1;
    const stepIndex = Math.min(status.stepIndex, last);
    const weight = stepIndex < 0 ? 0 : plan.steps[stepIndex]!.weight;
    if (weight !== status.currentWeight || stepIndex !== status.stepIndex) {
      return moveTo({ ...status, observedGeneration: generation }, status.phase, weight, stepIndex, 'StepAdvanced', `spec generation ${generation}: step ${stepIndex + 1} of ${plan.steps.length} at ${weight}%`, nowMs, { observedGeneration: generation });
    }
    status = { ...status, observedGeneration: generation };
  }
  if (status.phase === 'Pending') {
    return moveTo(status, 'Progressing', plan.steps[0]!.weight, 0, 'Started', `canary weight ${plan.steps[0]!.weight}% (step 1 of ${plan.steps.length})`, nowMs, { failedChecks: 0 });
  }
  if (status.phase !== 'Progressing') return { status };

  const lastAnalysisMs = status.lastAnalysis === undefined ? undefined : Date.parse(status.lastAnalysis.time);
  if (lastAnalysisMs !== undefined && nowMs - lastAnalysisMs < plan.intervalMs) return { status };

  const stepStartedMs = status.stepStartedAt === undefined ? 0 : Date.parse(status.stepStartedAt);
  const c = obs.canary;
  const lastSampleMs = status.lastAnalysis === undefined ? undefined : Date.parse(status.lastAnalysis.canary.time);
  const staleBecause =
    c === undefined
      ? 'no canary telemetry received'
      : nowMs - c.timeMs > plan.maxDataAgeMs
        ? `the latest canary telemetry is ${Math.round((nowMs - c.timeMs) / 1000)}s old (maxDataAge ${plan.maxDataAgeMs / 1000}s)`
        : c.timeMs - c.windowMs < stepStartedMs
          ? `the latest canary telemetry window (${c.windowMs / 1000}s ending ${iso(c.timeMs)}) starts before the current step started (${iso(stepStartedMs)})`
          : lastSampleMs !== undefined && c.timeMs <= lastSampleMs
            ? 'no telemetry since the last analysis'
            : undefined;
  if (staleBecause !== undefined) {
    const fresh = { ok: false, message: `${staleBecause}: no decision` };
    const next = withConditions(status, status.conditions, nowMs, fresh);
    return { status: next };
  }

  const result = evaluate(plan, c!, obs.stable, nowMs);
  const fresh = { ok: true, message: `telemetry of ${iso(c!.timeMs)}` };
  const analysed = withConditions({ ...status, lastAnalysis: result }, status.conditions, nowMs, fresh);
  if (result.verdict === 'Inconclusive') return { status: analysed };
  if (result.verdict === 'Failed') {
    const failedChecks = status.failedChecks + 1;
    if (failedChecks < plan.failedChecksLimit) return { status: { ...analysed, failedChecks } };
    const why = `${failedChecks} consecutive failed analyses: ${result.reasons.join('; ')}`;
    if (plan.failurePolicy === 'Pause') return moveTo({ ...analysed, failedChecks }, 'Paused', status.currentWeight, status.stepIndex, 'PausedOnFailure', why, nowMs);
    return moveTo({ ...analysed, failedChecks }, 'RolledBack', 0, status.stepIndex, 'RolledBack', why, nowMs);
  }
  // Passed: the failure count is of consecutive failures.
  const passed = { ...analysed, failedChecks: 0 };
  const step = plan.steps[status.stepIndex];
  if (step !== undefined && nowMs - stepStartedMs < step.minDurationMs) return { status: passed };
  const nextIndex = status.stepIndex + 1;
  if (nextIndex >= plan.steps.length) return moveTo(passed, 'Promoted', 100, status.stepIndex, 'Promoted', `all ${plan.steps.length} steps passed: canary weight 100%`, nowMs);
  const w = plan.steps[nextIndex]!.weight;
  return moveTo(passed, 'Progressing', w, nextIndex, 'StepAdvanced', `canary weight ${w}% (step ${nextIndex + 1} of ${plan.steps.length})`, nowMs);
}

export const canaryCommands = ['pause', 'resume', 'promote', 'abort'] as const;
export type CanaryCommand = (typeof canaryCommands)[number];

/**
 * An operator's command. Throws FAILED_PRECONDITION (code CANARY_INVALID_COMMAND) when the phase
 * does not allow it: pause a Progressing canary; resume a Paused one (the failure count and the
 * step's clock restart); promote (100 %) or abort (0 %, RolledBack) any canary not yet finished.
 */
export function command(plan: CanaryPlan, status: CanaryStatus, cmd: CanaryCommand, nowMs: number): Decision {
  const refuse = (): never => {
    throw new AviaryError('FAILED_PRECONDITION', 'CANARY_INVALID_COMMAND', `cannot ${cmd} a canary in phase ${status.phase}`, { phase: status.phase });
  };
  switch (cmd) {
    case 'pause':
      if (status.phase !== 'Progressing' && status.phase !== 'Pending') refuse();
      return moveTo(status, 'Paused', status.currentWeight, status.stepIndex, 'Paused', 'paused by an operator', nowMs);
    case 'resume': {
      if (status.phase !== 'Paused') refuse();
      const stepIndex = Math.max(0, Math.min(status.stepIndex, plan.steps.length - 1));
      const weight = plan.steps[stepIndex]!.weight;
      const d = moveTo(status, 'Progressing', weight, stepIndex, 'Resumed', `resumed at ${weight}% (step ${stepIndex + 1} of ${plan.steps.length})`, nowMs, { failedChecks: 0 });
      // The step's clock restarts: the paused time does not count towards its minimum duration.
      return { ...d, status: { ...d.status, stepStartedAt: iso(nowMs) } };
    }
    case 'promote':
      if (terminal(status.phase)) refuse();
      return moveTo(status, 'Promoted', 100, status.stepIndex, 'PromotedManually', 'promoted by an operator: canary weight 100%', nowMs);
    case 'abort':
      if (terminal(status.phase)) refuse();
      return moveTo(status, 'RolledBack', 0, status.stepIndex, 'Aborted', 'aborted by an operator: canary weight 0%', nowMs);
  }
}

/** The target cannot be written (VirtualService or route missing or not as the spec says). */
export function targetProblem(status: CanaryStatus | undefined, generation: number, message: string, nowMs: number): Decision {
  const base = status ?? initialStatus(generation, nowMs);
  if (base.phase === 'Progressing' || base.phase === 'Paused') return moveTo(base, 'Failed', base.currentWeight, base.stepIndex, 'TargetLost', message, nowMs);
  if (base.phase !== 'Pending') return { status: base };
  if (base.reason === 'TargetNotReady' && base.message === message && base.observedGeneration === generation) return { status: base };
  const next = withConditions({ ...base, observedGeneration: generation, reason: 'TargetNotReady', message }, base.conditions, nowMs);
  return { status: next };
}
