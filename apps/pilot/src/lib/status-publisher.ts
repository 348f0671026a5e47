import type { Subjects, EventData } from '@aviary/events';
import type { XdsStatusEvent } from '@aviary/xds-server';

export interface StatusBatching {
  /** Pending ACK events are published together this often (ms). */
  readonly flushMs: number;
  /** At most one `ack` event per proxy and type this often (ms); the latest version wins. */
  readonly ackIntervalMs: number;
}

export const defaultStatusBatching: StatusBatching = { flushMs: 250, ackIntervalMs: 1_000 };

type XdsStatusData = EventData<typeof Subjects.xdsStatus>;

interface AckSlot {
  /** The latest ACK not yet published. */
  pending: XdsStatusData | undefined;
  /** When an `ack` event for this proxy and type was last published (0: never). */
  sentAt: number;
}

/**
 * Coalesces xDS status events before they reach the bus. `connected`, `nack` and
 * `disconnected` are published at once (at the end of the current event-loop turn, together
 * with the others of that turn: one NATS socket write instead of one per stream); an `ack` is
 * held and published with the others of the same flush, at most once per proxy and type per
 * `ackIntervalMs`, carrying the latest version ACKed. A proxy's held ACKs are published before
 * its `nack` or `disconnected`, so a consumer sees each proxy's events in order. The event
 * schema is unchanged: one event per proxy, kind and type.
 */
export class StatusPublisher {
  private readonly acks = new Map<string, Map<string, AckSlot>>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Events to publish at the end of this event-loop turn, in order. */
  private queue: XdsStatusData[] = [];
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly publish: (data: XdsStatusData) => void,
    private readonly opts: StatusBatching = defaultStatusBatching,
    private readonly now: () => number = Date.now,
  ) {}

  push(e: Pick<XdsStatusEvent, 'event' | 'proxyId' | 'typeUrl' | 'version' | 'error'>): void {
    const data = statusData(e);
    if (e.event === 'ack' && e.typeUrl !== undefined) {
      let slots = this.acks.get(data.proxyId);
      if (slots === undefined) this.acks.set(data.proxyId, (slots = new Map()));
      const slot = slots.get(e.typeUrl);
      if (slot === undefined) slots.set(e.typeUrl, { pending: data, sentAt: 0 });
      else slot.pending = data;
      this.dirty.add(data.proxyId);
      this.arm();
      return;
    }
    if (e.event !== 'connected') this.flushProxy(data.proxyId, true);
    if (e.event === 'disconnected') this.acks.delete(data.proxyId);
    this.enqueue(data);
  }

  /** Publishes the held ACKs whose interval has passed (all of them with `force`). */
  flush(force = false): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const proxyId of [...this.dirty]) this.flushProxy(proxyId, force);
    this.drain();
    this.arm();
  }

  /** Publishes what is held and stops the timer. */
  close(): void {
    this.flush(true);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  private enqueue(data: XdsStatusData): void {
    this.queue.push(data);
    this.immediate ??= setImmediate(() => this.drain());
  }

  /** Publishes the queued events (synchronously, so the NATS client writes them as one). */
  private drain(): void {
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    const queue = this.queue;
    this.queue = [];
    for (const data of queue) this.publish(data);
  }

  private flushProxy(proxyId: string, force: boolean): void {
    if (!this.dirty.has(proxyId)) return;
    const slots = this.acks.get(proxyId);
    let held = false;
    const now = this.now();
    for (const slot of slots?.values() ?? []) {
      if (slot.pending === undefined) continue;
      if (!force && slot.sentAt !== 0 && now - slot.sentAt < this.opts.ackIntervalMs) {
        held = true;
        continue;
      }
      const data = slot.pending;
      slot.pending = undefined;
      slot.sentAt = now;
      this.enqueue(data);
    }
    if (!held) this.dirty.delete(proxyId);
  }

  private arm(): void {
    if (this.timer !== undefined || this.dirty.size === 0) return;
    this.timer = setTimeout(() => this.flush(), this.opts.flushMs);
    this.timer.unref();
  }
}

function statusData(e: Pick<XdsStatusEvent, 'event' | 'proxyId' | 'typeUrl' | 'version' | 'error'>): XdsStatusData {
  return {
    proxyId: e.proxyId.slice(0, 1024),
    event: e.event,
    ...(e.typeUrl === undefined ? {} : { typeUrl: e.typeUrl }),
    ...(e.version === undefined ? {} : { version: e.version }),
    ...(e.error === undefined ? {} : { error: e.error.slice(0, 16_000) }),
  };
}
