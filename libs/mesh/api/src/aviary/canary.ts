import Type, { type Static } from 'typebox';
import { Closed, Duration, opt, Resource, UInt32 } from '../common';
import { aviaryNetworkingVersions } from '../networking/versions';

/**
 * Canary (networking.aviary.dev/v1alpha1) — Aviary's own kind for progressive delivery: pilot's
 * canary controller moves traffic from a stable destination to a canary destination of one
 * VirtualService HTTP route step by step, judging each step from the telemetry collector's
 * per-version summaries, and promotes or rolls back by itself.
 *
 * ```yaml
 * apiVersion: networking.aviary.dev/v1alpha1
 * kind: Canary
 * metadata: { name: hello, namespace: demo }
 * spec:
 *   target: { virtualService: hello, route: hello }
 *   stable: { host: hello.demo.svc.cluster.local, subset: v1 }
 *   canary: { host: hello.demo.svc.cluster.local, subset: v2 }
 *   steps: [{ weight: 10 }, { weight: 50, minDurationSeconds: 60 }]
 *   analysis:
 *     interval: 30s
 *     minRequests: 20
 *     successRate: 99
 *     p99LatencyMs: 500
 *     failedChecksLimit: 2
 *   failurePolicy: Rollback
 * ```
 *
 * Fields:
 * - `target.virtualService` — the VirtualService whose route weights the controller writes; or
 *   `target.httpRoute`, a Gateway API HTTPRoute whose rule's `backendRefs` weights it writes
 *   (exactly one of them); `target.namespace` defaults to the Canary's own.
 * - `target.route` — the `name` of the HTTP route (HTTPRoute: of the rule), or
 *   `target.routeIndex` its index in `http` (`rules`) (exactly one of them). The route must list
 *   the stable and the canary destinations (backendRefs) and no other.
 * - `stable`, `canary` — `{host, subset?}` as in the route's destinations. With a subset, its
 *   DestinationRule `version` label selects the telemetry of that version of the host; without
 *   one, the whole host's telemetry is used (a canary as its own service). With an HTTPRoute
 *   target, no subset: `host` is the backendRef's Service (`name` or
 *   `name.namespace.svc.<domain>`), one Service per version.
 * - `steps[]` — `{weight, minDurationSeconds?}`, weights strictly increasing in 1..100; each step
 *   lasts at least `minDurationSeconds` (default: one analysis interval) and until one analysis
 *   passes. Or instead `stepWeight` and `maxWeight` (steps `stepWeight`, `2×stepWeight`, … up to
 *   `maxWeight`). After the last step passes, the canary is promoted (100 %).
 * - `analysis.interval` — how often the gates are evaluated (≥ 1s; default 30s).
 * - `analysis.minRequests` — canary requests a summary must count before it is judged (default
 *   1); fewer holds the step (neither pass nor failure).
 * - `analysis.successRate` — minimum canary success rate in percent (0..100).
 * - `analysis.p99LatencyMs` — maximum canary p99 latency in ms.
 * - `analysis.compareToStable` — relative gates against the stable version in the same window:
 *   `maxSuccessRateDrop` (percentage points) and `maxLatencyRatio` (canary p99 / stable p99).
 * - `analysis.failedChecksLimit` — consecutive failed analyses that trigger the failure policy
 *   (default 2).
 * - `analysis.maxDataAge` — a summary older than this is a telemetry gap: no decision is taken
 *   (default: two intervals).
 * A step is judged only on summaries whose window (the collector's `summaryWindowSeconds`)
 * begins at or after the step started, so a step lasts at least that window.
 * - `failurePolicy` — `Rollback` (canary weight back to 0) or `Pause` (weights frozen).
 */
export const CanaryDestination = Closed({
  host: Type.String(),
  subset: opt(Type.String()),
});
export type CanaryDestination = Static<typeof CanaryDestination>;

export const CanaryTarget = Closed({
  virtualService: opt(Type.String()),
  httpRoute: opt(Type.String()),
  namespace: opt(Type.String()),
  route: opt(Type.String()),
  routeIndex: opt(UInt32),
});
export type CanaryTarget = Static<typeof CanaryTarget>;

export const CanaryStep = Closed({
  weight: UInt32,
  minDurationSeconds: opt(UInt32),
});
export type CanaryStep = Static<typeof CanaryStep>;

export const CanaryAnalysis = Closed({
  interval: opt(Duration),
  minRequests: opt(UInt32),
  successRate: opt(Type.Number()),
  p99LatencyMs: opt(Type.Number()),
  compareToStable: opt(Closed({ maxSuccessRateDrop: opt(Type.Number()), maxLatencyRatio: opt(Type.Number()) })),
  failedChecksLimit: opt(UInt32),
  maxDataAge: opt(Duration),
});
export type CanaryAnalysis = Static<typeof CanaryAnalysis>;

export const canaryFailurePolicies = ['Rollback', 'Pause'] as const;

export const CanarySpec = Closed({
  target: CanaryTarget,
  stable: CanaryDestination,
  canary: CanaryDestination,
  steps: opt(Type.Array(CanaryStep)),
  stepWeight: opt(UInt32),
  maxWeight: opt(UInt32),
  analysis: opt(CanaryAnalysis),
  failurePolicy: opt(Type.Enum([...canaryFailurePolicies])),
});
export type CanarySpec = Static<typeof CanarySpec>;

export const CanarySchema = Resource(
  'Canary',
  aviaryNetworkingVersions,
  CanarySpec,
  'Progressive delivery of one VirtualService route: weights moved step by step from stable to canary, gated by telemetry (networking.aviary.dev Canary).',
);
export type Canary = Static<typeof CanarySchema>;

export const canaryPhases = ['Pending', 'Progressing', 'Paused', 'Promoted', 'RolledBack', 'Failed'] as const;
export type CanaryPhase = (typeof canaryPhases)[number];

/** Numbers of one side (canary or stable) in an analysis. */
export const CanarySample = Type.Object({
  requests: Type.Integer({ minimum: 0 }),
  successRate: Type.Number({ minimum: 0, maximum: 100 }),
  p99Ms: Type.Number({ minimum: 0 }),
  /** End of the telemetry window (RFC 3339). */
  time: Type.String(),
  /** Length of the telemetry window, seconds: it began `windowSeconds` before `time`, never before the step started. */
  windowSeconds: opt(Type.Number({ minimum: 0 })),
});
export type CanarySample = Static<typeof CanarySample>;

export const canaryVerdicts = ['Passed', 'Failed', 'Inconclusive'] as const;

export const CanaryAnalysisResult = Type.Object({
  time: Type.String(),
  verdict: Type.Enum([...canaryVerdicts]),
  canary: CanarySample,
  stable: opt(CanarySample),
  /** One line per failed or inconclusive gate. */
  reasons: Type.Array(Type.String()),
});
export type CanaryAnalysisResult = Static<typeof CanaryAnalysisResult>;

export const CanaryCondition = Type.Object({
  type: Type.String(),
  status: Type.Enum(['True', 'False', 'Unknown']),
  reason: Type.String(),
  message: Type.String(),
  lastTransitionTime: Type.String(),
});
export type CanaryCondition = Static<typeof CanaryCondition>;

/**
 * The controller's whole state, kept in `status` (so it survives restarts). `stepIndex` is -1
 * before the first step; `stepStartedAt` is when the current weight was set.
 */
export const CanaryStatus = Type.Object({
  phase: Type.Enum([...canaryPhases]),
  currentWeight: Type.Integer({ minimum: 0, maximum: 100 }),
  stepIndex: Type.Integer({ minimum: -1 }),
  stepStartedAt: opt(Type.String()),
  failedChecks: Type.Integer({ minimum: 0 }),
  /** Generation of the spec this status is about; a newer spec restarts a finished canary. */
  observedGeneration: opt(Type.Integer()),
  lastAnalysis: opt(CanaryAnalysisResult),
  /** Why the last transition happened (a closed set, see the controller's reasons). */
  reason: opt(Type.String()),
  message: opt(Type.String()),
  lastTransitionTime: Type.String(),
  conditions: Type.Array(CanaryCondition),
});
export type CanaryStatus = Static<typeof CanaryStatus>;
