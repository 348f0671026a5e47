import { AviaryError } from '@aviary/errors';
import type { ConfigStore, ObjectReads, WatchedObjects } from '@aviary/config-store';
import { Subjects, type Bus, type EventData, type Stoppable } from '@aviary/events';
import { refKey, type CanarySpec, type CanaryStatus, type ResourceRef, type StoredObject } from '@aviary/mesh-api';
import { validate } from '@aviary/mesh-validation';
import type { Logger } from '@aviary/observability';
import { command, decide, planOf, targetProblem, type CanaryCommand, type Decision, type Observation, type Sample } from './decide';
import { findRoute, routeWeight, targetRef, telemetryKey, withWeight, type TargetContext } from './route';

type Summary = EventData<typeof Subjects.telemetrySummary>;

export interface CanaryControllerOptions {
  readonly store: ConfigStore;
  readonly bus: Pick<Bus, 'subscribe' | 'publishDurable'>;
  readonly logger: Logger;
  readonly domainSuffix: string;
  /** How often every Canary is reconciled (analyses still run once per analysis interval). */
  readonly tickMs: number;
  readonly now?: () => number;
  /**
   * Whether this replica may reconcile (the holder of the `pilot-canary` LeaderLease): with
   * several pilot replicas only the leader drives Canaries. Omitted: always (one replica).
   * Operators' commands run on any replica; the status is written compare-and-set.
   */
  readonly isLeader?: () => boolean;
  /**
   * Where a reconcile reads Canaries, their target routes and DestinationRules: pilot passes the
   * copy its config watch keeps, so a tick makes no request to the store (on Kubernetes, the API
   * server). Omitted: the store. Operators' commands read the Canary from the store; every write
   * is compare-and-set, so a copy that lags fails the write (retried next tick) and never
   * overwrites a newer object.
   */
  readonly reads?: WatchedObjects;
}

/** What a reconcile or a command did to one Canary. */
export interface CanaryOutcome {
  readonly object: StoredObject;
  readonly decision?: Decision;
}

/** The kinds a reconcile reads: what `reads` must hold. */
export const canaryReadKinds = ['Canary', 'VirtualService', 'HTTPRoute', 'DestinationRule'] as const;

const isCanaryStatus = (s: unknown): s is CanaryStatus => s !== null && typeof s === 'object' && typeof (s as { phase?: unknown }).phase === 'string' && Array.isArray((s as { conditions?: unknown }).conditions);

/**
 * Pilot's canary controller. Every `tickMs` it reconciles each Canary in the config store: reads
 * its target route (a VirtualService's HTTP route or an HTTPRoute's rule) and the latest
 * telemetry summaries (aviary.telemetry.v1.summary, kept in memory only: after a restart nothing
 * is decided until fresh summaries arrive), asks
 * `decide` what to do, writes the route weights through the config store (validated, so the
 * change takes the normal path to the proxies), then the Canary's status (compare-and-set: a
 * concurrent writer makes this round a no-op), and publishes each transition on
 * aviary.canary.v1.event and in the log. All operations on Canaries run one at a time.
 */
export class CanaryController {
  private readonly summaries = new Map<string, Summary>();
  private subscription: Stoppable | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly opts: CanaryControllerOptions) {
    this.now = opts.now ?? Date.now;
  }

  private get reads(): ObjectReads {
    return this.opts.reads ?? this.opts.store;
  }

  start(): void {
    this.subscription = this.opts.bus.subscribe(Subjects.telemetrySummary, (event) => {
      this.observe(event.data);
    });
    this.timer = setInterval(() => void this.reconcileAll(), this.opts.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.subscription?.stop();
    await this.queue.catch(() => undefined);
  }

  /** Takes one summary (the latest per service wins). */
  observe(summary: Summary): void {
    const before = this.summaries.get(summary.service);
    const t = Date.parse(summary.time ?? '');
    if (Number.isNaN(t)) return;
    if (before !== undefined && Date.parse(before.time ?? '') > t) return;
    this.summaries.set(summary.service, summary);
  }

  /** End of the window of the latest summary received for a service host. */
  latestSummaryTime(service: string): string | undefined {
    return this.summaries.get(service)?.time;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Reconciles every Canary once (also what the timer does). */
  reconcileAll(): Promise<void> {
    return this.serial(async () => {
      if (this.stopped || this.opts.isLeader?.() === false) return;
      let canaries: StoredObject[];
      try {
        canaries = await this.reads.list({ kind: 'Canary' });
      } catch (err) {
        this.opts.logger.warn({ err }, 'canary controller: cannot list Canaries');
        return;
      }
      for (const c of canaries) {
        try {
          await this.reconcile(c);
        } catch (err) {
          this.opts.logger.warn({ err, canary: refKey({ kind: 'Canary', namespace: c.metadata.namespace, name: c.metadata.name }) }, 'canary controller: reconcile failed; retrying next tick');
        }
      }
    });
  }

  /** Runs an operator's command on one Canary and returns it as stored afterwards. */
  command(ref: Omit<ResourceRef, 'kind'>, cmd: CanaryCommand): Promise<StoredObject> {
    return this.serial(async () => {
      const object = await this.opts.store.get({ kind: 'Canary', ...ref });
      if (object === undefined) throw new AviaryError('NOT_FOUND', 'RESOURCE_NOT_FOUND', `Canary ${ref.namespace}/${ref.name} not found`);
      const spec = object.spec as CanarySpec;
      const plan = planOf(spec);
      const generation = object.metadata.generation ?? 0;
      const current = isCanaryStatus(object.status) ? object.status : decide(plan, undefined, generation, {}, this.now()).status;
      const decision = command(plan, current, cmd, this.now());
      return (await this.commit(object, decision, true)) ?? object;
    });
  }

  private telemetry(spec: CanarySpec, namespace: string, drs: readonly StoredObject[]): { obs: Observation } | { problem: string } {
    const sample = (key: { service: string; version?: string }): Sample | undefined => {
      const s = this.summaries.get(key.service);
      if (s === undefined) return undefined;
      const timeMs = Date.parse(s.time ?? '');
      // The window the collector summed: `decide` judges a step only on windows that begin after it started.
      const windowMs = s.windowSeconds * 1000;
      if (key.version === undefined) return { requests: s.requests ?? 0, errorRatio: s.errorRatio, p99Ms: s.p99Ms, timeMs, windowMs };
      const v = (s.versions ?? []).find((x) => x.version === key.version);
      // The service has traffic but this version none in the window: zero requests, not a gap.
      return v === undefined ? { requests: 0, errorRatio: 0, p99Ms: 0, timeMs, windowMs } : { requests: v.requests, errorRatio: v.errorRatio, p99Ms: v.p99Ms, timeMs, windowMs };
    };
    const canaryKey = telemetryKey(spec.canary, namespace, this.opts.domainSuffix, drs);
    if (!canaryKey.ok) return { problem: canaryKey.problem };
    const stableKey = telemetryKey(spec.stable, namespace, this.opts.domainSuffix, drs);
    if (!stableKey.ok) return { problem: stableKey.problem };
    const canary = sample(canaryKey.value);
    const stable = sample(stableKey.value);
    return { obs: { ...(canary === undefined ? {} : { canary }), ...(stable === undefined ? {} : { stable }) } };
  }

  private context(namespace: string): TargetContext {
    return { namespace, domainSuffix: this.opts.domainSuffix };
  }

  private async reconcile(object: StoredObject): Promise<void> {
    const spec = object.spec as CanarySpec;
    const ns = object.metadata.namespace;
    const plan = planOf(spec);
    const generation = object.metadata.generation ?? 0;
    const current = isCanaryStatus(object.status) ? object.status : undefined;
    // A finished canary waits for a new spec (or a command): nothing to read or write.
    if (current !== undefined && current.observedGeneration === generation && (current.phase === 'Promoted' || current.phase === 'RolledBack' || current.phase === 'Failed')) return;
    const now = this.now();
    const ref = targetRef(spec, ns);
    const target = await this.reads.get(ref);
    const route = target === undefined ? ({ ok: false, problem: `${ref.kind} ${ref.namespace}/${ref.name} not found` } as const) : findRoute(spec, target, this.context(ns));
    const drs = route.ok ? await this.reads.list({ kind: 'DestinationRule' }) : [];
    const telemetry = route.ok ? this.telemetry(spec, ns, drs) : undefined;
    if (!route.ok || telemetry === undefined || 'problem' in telemetry) {
      const problem = !route.ok ? route.problem : telemetry !== undefined && 'problem' in telemetry ? telemetry.problem : 'unknown';
      await this.commit(object, targetProblem(current, generation, problem, now), false);
      return;
    }
    await this.commit(object, decide(plan, current, generation, telemetry.obs, now), false);
  }

  /**
   * Writes a decision: the route weights first (when the phase owns them), then the status when it
   * changed, then the event. A failed weight write leaves the status as it was, so the same
   * decision is taken again on the next tick.
   */
  private async commit(object: StoredObject, decision: Decision, forceWeights: boolean): Promise<StoredObject | undefined> {
    const spec = object.spec as CanarySpec;
    const ns = object.metadata.namespace;
    const next = decision.status;
    const ownsWeights = next.phase === 'Progressing' || next.phase === 'Paused' || decision.transition !== undefined || forceWeights;
    if (ownsWeights && next.phase !== 'Failed' && next.phase !== 'Pending') {
      const ref = targetRef(spec, ns);
      const target = await this.reads.get(ref);
      if (target === undefined) throw new AviaryError('NOT_FOUND', 'RESOURCE_NOT_FOUND', `${ref.kind} ${ref.namespace}/${ref.name} not found`);
      const ctx = this.context(ns);
      const route = findRoute(spec, target, ctx);
      if (!route.ok) throw new AviaryError('FAILED_PRECONDITION', 'CANARY_TARGET_INVALID', route.problem);
      const updated = withWeight(spec, target, route.value, next.currentWeight, ctx);
      if (updated !== undefined) {
        const { errors } = validate(updated);
        if (errors.length > 0) throw new AviaryError('FAILED_PRECONDITION', 'CANARY_TARGET_INVALID', `the weighted ${ref.kind} is invalid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
        const written = await this.opts.store.apply(updated);
        this.opts.reads?.wrote(written.object);
        this.opts.logger.info({ canary: `${ns}/${object.metadata.name}`, target: `${ref.kind} ${ref.namespace}/${ref.name}`, from: routeWeight(spec, target, route.value, ctx), weight: next.currentWeight }, 'canary weights written');
      }
    }
    let stored: StoredObject | undefined = object;
    if (JSON.stringify(next) !== JSON.stringify(object.status)) {
      stored = await this.opts.store.updateStatus({ kind: 'Canary', namespace: ns, name: object.metadata.name }, next as unknown as Record<string, unknown>, object.metadata.resourceVersion ?? '');
      this.opts.reads?.wrote(stored);
    }
    const t = decision.transition;
    if (t !== undefined) {
      const a = next.lastAnalysis;
      const event = {
        namespace: ns,
        name: object.metadata.name,
        from: t.from,
        to: t.to,
        stepIndex: t.stepIndex,
        reason: t.reason,
        message: t.message.slice(0, 4096),
        time: next.lastTransitionTime,
        ...(a === undefined ? {} : { analysis: { verdict: a.verdict, canary: a.canary, ...(a.stable === undefined ? {} : { stable: a.stable }), reasons: a.reasons.slice(0, 16).map((r) => r.slice(0, 1024)) } }),
      };
      this.opts.logger.info({ canary: `${ns}/${object.metadata.name}`, event: 'canary.transition', ...event }, `canary ${ns}/${object.metadata.name}: ${t.from.phase} ${t.from.weight}% -> ${t.to.phase} ${t.to.weight}% (${t.reason})`);
      try {
        // One message per transition: a retried publish is stored once.
        await this.opts.bus.publishDurable(Subjects.canaryEvent, event, `canary-${ns}-${object.metadata.name}-${stored?.metadata.resourceVersion ?? next.lastTransitionTime}`);
      } catch (err) {
        this.opts.logger.warn({ err, canary: `${ns}/${object.metadata.name}` }, 'canary event not published');
      }
    }
    return stored;
  }
}
