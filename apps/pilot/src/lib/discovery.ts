import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ConfigStore, Watch } from '@aviary/config-store';
import { Subjects, type Bus, type EventData } from '@aviary/events';
import type { ExtensionProvider } from '@aviary/mesh-api';
import { SnapshotBuilder, type MeshSnapshot } from '@aviary/mesh-model';
import { parseNode, TranslatingSource, type NodeLike, type ProxyInfo, type SourceChange } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { XdsServer, type XdsStatusEvent } from '@aviary/xds-server';
import { cachedTranslation, endpointNamesOf, proxyGroupKey } from '@aviary/xds-translate';
import { defaultJwksOptions, JwksResolver, type JwksResolverOptions } from './jwks';

export interface DiscoveryOptions {
  readonly store: ConfigStore;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly trustDomain: string;
  readonly debounce: { readonly quietMs: number; readonly maxDelayMs: number };
  /** How `aviary.xds.v1.status` ACK events are coalesced (see `StatusPublisher`). */
  readonly status?: StatusBatching;
  /** MeshConfig `extensionProviders` (validated at boot). */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /** How RequestAuthentication `jwksUri` key sets are fetched (defaults: `defaultJwksOptions`). */
  readonly jwks?: Partial<Omit<JwksResolverOptions, 'logger' | 'onChange'>>;
}

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

/**
 * Istio node ids (`sidecar~…`, `router~…`) and GENERATOR=grpc nodes parse as Istio does; a
 * plain id such as a proxyless client's `client-1` is taken as proxyless rather than refused.
 */
export function lenientNodeParser(trustDomain: string): (node: NodeLike) => ProxyInfo {
  return (node) => {
    try {
      return parseNode(node, { trustDomain });
    } catch (err) {
      const id = node.id ?? '';
      if (id === '' || id.includes('~')) throw err;
      return parseNode({ ...node, metadata: { ...(node.metadata ?? {}), GENERATOR: 'grpc' } }, { trustDomain });
    }
  };
}

/** Shortest spacing of model builds while store events keep coming. */
const MIN_BUILD_INTERVAL_MS = 50;

/**
 * Pilot's discovery pipeline: config store watch → incremental mesh model → per-proxy
 * translation (memoized per proxy group) → ADS server. An endpoint-only change pushes only EDS
 * (plus the inbound side of the proxies whose own endpoints changed).
 */
export class Discovery {
  private readonly builder: SnapshotBuilder;
  private readonly source: TranslatingSource<MeshSnapshot>;
  readonly server: XdsServer;
  private watch: Watch | undefined;
  private pending = false;
  /** When the last model build ended and how long it took (ms), for coalescing bursts. */
  private lastBuildAt = 0;
  private lastBuildMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private initialized = false;
  private listening = false;
  private readonly stopStatus: () => void;
  private readonly status: StatusPublisher;
  private readonly jwks: JwksResolver;

  constructor(private readonly opts: DiscoveryOptions) {
    this.builder = new SnapshotBuilder({ trustDomain: opts.trustDomain, extensionProviders: opts.extensionProviders ?? [] });
    this.jwks = new JwksResolver({
      ...defaultJwksOptions,
      ...opts.jwks,
      logger: opts.logger.child({ component: 'jwks' }),
      onChange: (resolutions) => {
        if (this.builder.setJwks(resolutions) && this.initialized) this.schedule();
      },
    });
    const first = this.builder.build();
    const translation = cachedTranslation();
    this.source = new TranslatingSource<MeshSnapshot>(first.snapshot, {
      translate: translation.translate,
      translateEndpoints: translation.translateEndpoints,
      groupOf: proxyGroupKey,
      onRejected: (proxy, error) => opts.logger.error({ proxy: proxy.id, err: error }, 'translation refused; serving the last good config'),
    });
    this.server = new XdsServer({
      source: this.source,
      metrics: opts.registry,
      logger: opts.logger.child({ component: 'xds' }),
      debounce: opts.debounce,
      trustDomain: opts.trustDomain,
      nodeParser: lenientNodeParser(opts.trustDomain),
    });
    this.status = new StatusPublisher((data) => {
      try {
        opts.bus.publish(Subjects.xdsStatus, data);
      } catch (err) {
        opts.logger.warn({ err }, 'could not publish xDS status');
      }
    }, opts.status);
    this.stopStatus = this.server.onStatus((e) => this.status.push(e));
  }

  /** The mesh model pilot serves now (undefined before the first build). */
  get model(): MeshSnapshot | undefined {
    return this.builder.current();
  }

  get ready(): boolean {
    return this.initialized && this.listening;
  }

  /** Loads every stored object, then follows changes. */
  async start(): Promise<void> {
    this.watch = await this.opts.store.watch((event) => {
      const changed = this.builder.apply({ op: event.op, ref: event.ref, revision: event.revision, ...(event.object === undefined ? {} : { object: event.object as never }) });
      if (changed && this.initialized) this.schedule();
    });
    await this.watch.initialized;
    this.rebuild();
    this.initialized = true;
  }

  async listen(host: string, port: number): Promise<number> {
    const bound = await this.server.listen(`${host}:${port}`);
    this.listening = true;
    return bound;
  }

  /**
   * Coalesces store events into model builds: the first event after a quiet spell is built on
   * the next turn of the event loop; while events keep coming, builds are at least
   * `max(MIN_BUILD_INTERVAL_MS, 2 × last build time)` apart, so a bulk apply costs a bounded
   * share of CPU in builds instead of one build per event. The server's push debounce (quiet
   * period, max delay) still bounds how late proxies hear of it.
   */
  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    const wait = this.lastBuildAt + Math.max(MIN_BUILD_INTERVAL_MS, 2 * this.lastBuildMs) - Date.now();
    const run = () => {
      this.timer = undefined;
      this.pending = false;
      this.rebuild();
    };
    if (wait <= 0) setImmediate(run);
    else this.timer = setTimeout(run, wait);
  }

  private rebuild(): void {
    const observedAt = Date.now();
    const delta = this.builder.build();
    this.lastBuildAt = Date.now();
    if (delta.changedKinds.includes('RequestAuthentication') || delta.previous === undefined) this.jwks.sync(delta.snapshot.requestAuthentications.jwksUris());
    this.lastBuildMs = this.lastBuildAt - observedAt;
    if (delta.configChanged || delta.previous === undefined) {
      this.source.setModel(delta.snapshot, { observedAt });
      return;
    }
    if (delta.endpointsChanged.length === 0 && delta.affectedAddresses.length === 0) {
      this.source.setModel(delta.snapshot, { types: [], observedAt });
      return;
    }
    const eds: SourceChange = { types: [TypeUrl.ClusterLoadAssignment], names: endpointNamesOf(delta.endpointsChanged), observedAt };
    this.source.setModel(delta.snapshot, eds);
    if (delta.affectedAddresses.length > 0) {
      const addresses = new Set(delta.affectedAddresses);
      this.source.setModel(delta.snapshot, { affects: (p) => p.ip !== undefined && addresses.has(p.ip), observedAt });
    }
  }

  async stop(): Promise<void> {
    this.jwks.stop();
    this.stopStatus();
    this.status.close();
    if (this.timer) clearTimeout(this.timer);
    await this.watch?.stop();
    await this.server.stop(2_000);
  }
}
