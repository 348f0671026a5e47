import type { EventData, Subjects } from '@aviary/events';

export type CanaryEventData = EventData<typeof Subjects.canaryEvent>;

export interface CanaryProgress {
  readonly namespace: string;
  readonly name: string;
  readonly phase: CanaryEventData['to']['phase'];
  readonly weight: number;
  readonly reason: string;
  readonly message: string;
  readonly time: string;
  readonly analysis?: CanaryEventData['analysis'];
  /** Transitions seen, oldest first: the canary weight over time. */
  readonly history: { readonly time: string; readonly phase: string; readonly weight: number; readonly reason: string }[];
}

/**
 * The canaries the dashboard shows: the transitions pilot's canary controller publishes on
 * aviary.canary.v1.event, as seen live by this collector (the stream keeps the full history).
 * Bounded: at most `maxCanaries` canaries (the least recently changed is dropped) and
 * `maxHistory` transitions each.
 */
export class CanaryTimeline {
  private readonly canaries = new Map<string, CanaryProgress>();

  constructor(private readonly limits: { maxCanaries: number; maxHistory: number } = { maxCanaries: 100, maxHistory: 200 }) {}

  add(e: CanaryEventData): void {
    const key = `${e.namespace}/${e.name}`;
    const before = this.canaries.get(key);
    const history = [...(before?.history ?? []), { time: e.time, phase: e.to.phase, weight: e.to.weight, reason: e.reason }].slice(-this.limits.maxHistory);
    this.canaries.delete(key); // re-inserted last: Map order is least recently changed first
    this.canaries.set(key, {
      namespace: e.namespace,
      name: e.name,
      phase: e.to.phase,
      weight: e.to.weight,
      reason: e.reason,
      message: e.message,
      time: e.time,
      ...(e.analysis === undefined ? {} : { analysis: e.analysis }),
      history,
    });
    while (this.canaries.size > this.limits.maxCanaries) this.canaries.delete(this.canaries.keys().next().value!);
  }

  list(): CanaryProgress[] {
    return [...this.canaries.values()].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }
}
