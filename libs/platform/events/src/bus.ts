import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { AviaryError, isAviaryError } from '@aviary/errors';
import { createEnvelope, decodeEvent, encodeEvent, validateReply, type Event } from './envelope';
import { durableStreams, type DurableSubject, type EventData, type ReplyData, type ReplySubject, type Subject } from './subjects';

export interface BusOptions {
  /** NATS URL(s), comma-separated. */
  readonly url: string;
  /** This component's name: the envelope `source` and the NATS connection name. */
  readonly source: string;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Credentials of this component's bus user (nats-server with authorization: permissions.ts). */
  readonly user?: string;
  readonly password?: string;
  /**
   * Creates and updates the durable streams this component uses (default). Off for proxies: the
   * stream's owner makes it, and a proxy's bus user may only look it up (busPermissions).
   */
  readonly manageStreams?: boolean;
  /**
   * JetStream replicas of the streams (and, through `replicas`, the KV buckets) this component
   * creates: 1 on a single nats-server, 3 on a 3-node cluster (a stream survives the loss of one
   * node). At most the cluster's size; nats-server refuses more.
   */
  readonly replicas?: number;
  /** Prefix of this connection's reply subjects (busInboxPrefix: pilot's is private); default `_INBOX`. */
  readonly inboxPrefix?: string;
}

export type Handler<S extends Subject> = (event: Event<S>) => void | Promise<void>;

export interface Stoppable {
  stop(): Promise<void>;
}

interface BusMetrics {
  published: Counter<'subject'>;
  received: Counter<'subject'>;
  invalid: Counter<'subject' | 'direction'>;
  handlerErrors: Counter<'subject'>;
}

function busMetrics(registry: Registry): BusMetrics {
  const existing = registry.getSingleMetric('aviary_bus_published_total') as Counter<'subject'> | undefined;
  if (existing !== undefined) {
    return {
      published: existing,
      received: registry.getSingleMetric('aviary_bus_received_total') as Counter<'subject'>,
      invalid: registry.getSingleMetric('aviary_bus_invalid_messages_total') as Counter<'subject' | 'direction'>,
      handlerErrors: registry.getSingleMetric('aviary_bus_handler_errors_total') as Counter<'subject'>,
    };
  }
  return {
    published: new Counter({ name: 'aviary_bus_published_total', help: 'Events published, by subject', labelNames: ['subject'], registers: [registry] }),
    received: new Counter({ name: 'aviary_bus_received_total', help: 'Valid events received, by subject', labelNames: ['subject'], registers: [registry] }),
    invalid: new Counter({
      name: 'aviary_bus_invalid_messages_total',
      help: 'Events rejected by schema validation, by subject and direction (in/out)',
      labelNames: ['subject', 'direction'],
      registers: [registry],
    }),
    handlerErrors: new Counter({ name: 'aviary_bus_handler_errors_total', help: 'Event handlers that threw, by subject', labelNames: ['subject'], registers: [registry] }),
  };
}

/**
 * The event bus: a NATS connection that reconnects forever, typed subjects, envelopes validated
 * both ways, JetStream streams and durable consumers for what must survive a restart, and
 * request/reply with timeouts. An invalid incoming message is logged and counted, never thrown
 * into a consumer.
 */
export class Bus {
  private readonly metrics: BusMetrics;
  private jsm: JetStreamManager | undefined;
  private js: JetStreamClient | undefined;
  private readonly ensured = new Set<string>();
  private readonly stoppables = new Set<Stoppable>();

  private constructor(
    readonly nc: NatsConnection,
    private readonly opts: BusOptions,
  ) {
    this.metrics = busMetrics(opts.registry);
    void this.watchStatus();
  }

  /** Connects, retrying until NATS answers (use `connected` for readiness meanwhile). */
  static async connect(opts: BusOptions): Promise<Bus> {
    const nc = await connect({
      servers: opts.url.split(',').map((s) => s.trim()),
      name: opts.source,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      waitOnFirstConnect: true,
      pingInterval: 10_000,
      timeout: 5_000,
      ...(opts.user === undefined || opts.user === '' ? {} : { user: opts.user, pass: opts.password ?? '' }),
      ...(opts.inboxPrefix === undefined ? {} : { inboxPrefix: opts.inboxPrefix }),
    });
    opts.logger.info({ server: nc.getServer() }, 'connected to NATS');
    return new Bus(nc, opts);
  }

  /** JetStream replicas for the streams and KV buckets this component creates (BusOptions.replicas). */
  get replicas(): number {
    return this.opts.replicas ?? 1;
  }

  get connected(): boolean {
    return !this.nc.isClosed() && !this.nc.isDraining() && this.nc.info !== undefined && this.statusUp;
  }

  private statusUp = true;

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.statusUp = false;
        this.opts.logger.warn({ server: s.server }, 'NATS disconnected; reconnecting');
      } else if (s.type === 'reconnect') {
        this.statusUp = true;
        this.opts.logger.info({ server: s.server }, 'NATS reconnected');
      } else if (s.type === 'error') {
        // e.g. a publish or subscribe outside this component's bus permissions
        this.opts.logger.error({ err: s.error }, 'NATS server refused an operation');
      }
    }
  }

  /** Fire-and-forget publish (core NATS). Throws EVENT_INVALID for data that breaks the schema. */
  publish<S extends Subject>(subject: S, data: EventData<S>): void {
    this.nc.publish(subject, this.encode(subject, data));
    this.metrics.published.inc({ subject });
  }

  /** Publishes to the subject's JetStream stream and waits for the store's ack. */
  async publishDurable<S extends DurableSubject>(subject: S, data: EventData<S>, msgId?: string): Promise<number> {
    await this.ensureStreamFor(subject);
    const ack = await this.jetstream().publish(subject, this.encode(subject, data), msgId === undefined ? undefined : { msgID: msgId });
    this.metrics.published.inc({ subject });
    return ack.seq;
  }

  private encode<S extends Subject>(subject: S, data: EventData<S>): Uint8Array {
    try {
      return encodeEvent(createEnvelope(subject, this.opts.source, data));
    } catch (err) {
      this.metrics.invalid.inc({ subject, direction: 'out' });
      throw err;
    }
  }

  /** Subscribes to live events. Invalid messages are dropped, logged and counted. */
  subscribe<S extends Subject>(subject: S, handler: Handler<S>, opts: { queue?: string } = {}): Stoppable {
    const sub: Subscription = this.nc.subscribe(subject, {
      ...(opts.queue === undefined ? {} : { queue: opts.queue }),
      callback: (err, msg) => {
        if (err !== null) {
          this.opts.logger.warn({ err, subject }, 'subscription error');
          return;
        }
        const event = this.decode(subject, msg.data);
        if (event !== undefined) void this.runHandler(subject, handler, event);
      },
    });
    const stoppable = {
      stop: async () => {
        this.stoppables.delete(stoppable);
        if (!sub.isClosed()) sub.unsubscribe();
      },
    };
    this.stoppables.add(stoppable);
    return stoppable;
  }

  /**
   * Consumes a durable subject through a named JetStream consumer. After a restart the consumer
   * resumes after the last acknowledged message. A handler that throws gets the message
   * redelivered (after `retryDelayMs`); an invalid message is terminated and counted.
   */
  async consumeDurable<S extends DurableSubject>(
    subject: S,
    durable: string,
    handler: Handler<S>,
    opts: {
      retryDelayMs?: number;
      maxAckPending?: number;
      maxDeliver?: number;
      /** A new durable starts with the stream's messages stored at or after this time (default: all). */
      startTime?: Date;
      /** A new durable starts at this stream sequence (wins over startTime). */
      startSeq?: number;
      /** nats-server deletes the durable after this long without a client pulling (default: never). */
      inactiveThresholdMs?: number;
    } = {},
  ): Promise<Stoppable> {
    const stream = await this.ensureStreamFor(subject);
    const jsm = await this.manager();
    try {
      await jsm.consumers.info(stream, durable);
    } catch {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        filter_subject: subject,
        ack_policy: AckPolicy.Explicit,
        ...(opts.startSeq !== undefined
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.startSeq }
          : opts.startTime === undefined
            ? { deliver_policy: DeliverPolicy.All }
            : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.startTime.toISOString() }),
        ...(opts.inactiveThresholdMs === undefined ? {} : { inactive_threshold: opts.inactiveThresholdMs * 1_000_000 }),
        max_ack_pending: opts.maxAckPending ?? 1_000,
        max_deliver: opts.maxDeliver ?? 10,
        ack_wait: 30_000_000_000,
      });
    }
    const consumer = await this.jetstream().consumers.get(stream, durable);
    // Pull requests live 5 s (heartbeats every 2.5 s) instead of 30 s: a pull request held by a
    // NATS node that dies (a clustered consumer's leader moves) is noticed by its missed
    // heartbeats and re-issued to the new leader within seconds, not after a minute.
    const messages: ConsumerMessages = await consumer.consume({ max_messages: Math.min(opts.maxAckPending ?? 1_000, 256), expires: 5_000 });
    const done = (async () => {
      for await (const m of messages) {
        const event = this.decode(subject, m.data);
        if (event === undefined) {
          m.term('invalid event');
          continue;
        }
        const ok = await this.runHandler(subject, handler, event);
        if (ok) m.ack();
        else m.nak(opts.retryDelayMs ?? 1_000);
      }
    })();
    const stoppable = {
      stop: async () => {
        this.stoppables.delete(stoppable);
        messages.stop();
        await done.catch(() => undefined);
      },
    };
    this.stoppables.add(stoppable);
    return stoppable;
  }

  /**
   * Where a durable consumer of `subject` stands: the stream's last sequence now, and the
   * durable's ack floor (every message up to it acknowledged; undefined when the durable does
   * not exist). A durable's handler acknowledges in order, so its ack floor is what it processed.
   */
  async durablePosition(subject: DurableSubject, durable: string): Promise<{ lastSeq: number; ackFloor: number | undefined }> {
    const stream = await this.ensureStreamFor(subject);
    const jsm = await this.manager();
    const info = await jsm.streams.info(stream);
    let ackFloor: number | undefined;
    try {
      ackFloor = (await jsm.consumers.info(stream, durable)).ack_floor.stream_seq;
    } catch (err) {
      // Only "no such consumer" means absent; anything else (a cluster still electing a leader) is thrown.
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    }
    return { lastSeq: info.state.last_seq, ackFloor };
  }

  /**
   * Reads `subject`'s stored messages from `startTime` up to and including stream sequence
   * `upToSeq` through an ordered consumer (nothing acknowledged, no durable state) and resolves
   * with how many reached `handler` (invalid ones are counted and skipped, as on delivery).
   */
  async replay<S extends DurableSubject>(subject: S, range: { startTime: Date; upToSeq: number }, handler: (event: Event<S>) => void): Promise<number> {
    const stream = await this.ensureStreamFor(subject);
    if (range.upToSeq <= 0) return 0;
    const consumer = await this.jetstream().consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.StartTime, opt_start_time: range.startTime.toISOString() });
    let n = 0;
    try {
      if ((await consumer.info()).num_pending === 0) return 0;
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 256, expires: 2_000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          if (m.seq > range.upToSeq) return n;
          const event = this.decode(subject, m.data);
          if (event !== undefined) {
            handler(event);
            n++;
          }
          if (m.seq === range.upToSeq) return n;
        }
        // Nothing more stored in the range (the messages up to upToSeq aged out or were older than startTime).
        if (got === 0) return n;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  /** Request/reply with a timeout; the reply is validated against the subject's reply schema. */
  async request<S extends ReplySubject>(subject: S, data: EventData<S>, timeoutMs: number): Promise<ReplyData<S>> {
    let msg;
    try {
      msg = await this.nc.request(subject, this.encode(subject, data), { timeout: timeoutMs });
    } catch (err) {
      const timedOut = err instanceof Error && /timeout|TIMEOUT/.test(`${err.name} ${err.message}`);
      throw new AviaryError(timedOut ? 'DEADLINE_EXCEEDED' : 'UNAVAILABLE', timedOut ? 'REQUEST_TIMEOUT' : 'NO_RESPONDER', `${subject}: ${timedOut ? `no reply within ${timeoutMs} ms` : 'no responder'}`, undefined, { cause: err });
    }
    const reply = JSON.parse(msg.string()) as unknown;
    try {
      validateReply(subject, reply);
    } catch (err) {
      this.metrics.invalid.inc({ subject, direction: 'in' });
      throw err;
    }
    return reply as ReplyData<S>;
  }

  /** Answers requests on a request/reply subject (queue group = subject, so replicas share load). */
  reply<S extends ReplySubject>(subject: S, handler: (event: Event<S>) => Promise<ReplyData<S>>): Stoppable {
    const sub = this.nc.subscribe(subject, {
      queue: subject,
      callback: (err, msg) => {
        if (err !== null) return;
        const event = this.decode(subject, msg.data);
        if (event === undefined) {
          msg.respond(JSON.stringify({ ok: false, code: 'EVENT_INVALID', message: 'request failed schema validation' }));
          return;
        }
        void handler(event).then(
          (answer) => {
            validateReply(subject, answer);
            msg.respond(JSON.stringify(answer));
          },
          (e: unknown) => {
            this.metrics.handlerErrors.inc({ subject });
            const code = isAviaryError(e) ? e.code : 'INTERNAL';
            const message = isAviaryError(e) ? e.message : 'internal error';
            msg.respond(JSON.stringify({ ok: false, code, message }));
          },
        );
      },
    });
    const stoppable = {
      stop: async () => {
        this.stoppables.delete(stoppable);
        if (!sub.isClosed()) sub.unsubscribe();
      },
    };
    this.stoppables.add(stoppable);
    return stoppable;
  }

  private decode<S extends Subject>(subject: S, data: Uint8Array): Event<S> | undefined {
    try {
      const event = decodeEvent(subject, data);
      this.metrics.received.inc({ subject });
      return event;
    } catch (err) {
      this.metrics.invalid.inc({ subject, direction: 'in' });
      this.opts.logger.warn({ subject, reason: err instanceof Error ? err.message : String(err) }, 'dropped invalid event');
      return undefined;
    }
  }

  private async runHandler<S extends Subject>(subject: S, handler: Handler<S>, event: Event<S>): Promise<boolean> {
    try {
      await handler(event);
      return true;
    } catch (err) {
      this.metrics.handlerErrors.inc({ subject });
      this.opts.logger.error({ err, subject, eventId: event.id }, 'event handler failed');
      return false;
    }
  }

  async manager(): Promise<JetStreamManager> {
    this.jsm ??= await jetstreamManager(this.nc);
    return this.jsm;
  }

  jetstream(): JetStreamClient {
    this.js ??= jetstream(this.nc);
    return this.js;
  }

  /** Creates (or updates) every durable stream. Idempotent. */
  async ensureStreams(): Promise<void> {
    for (const s of durableStreams) await this.ensureStream(s.name);
  }

  private async ensureStreamFor(subject: DurableSubject): Promise<string> {
    const def = durableStreams.find((s) => (s.subjects as readonly string[]).includes(subject));
    if (def === undefined) throw new AviaryError('INTERNAL', 'NO_STREAM', `${subject} has no durable stream`);
    await this.ensureStream(def.name);
    return def.name;
  }

  private async ensureStream(name: string): Promise<void> {
    if (this.ensured.has(name)) return;
    const def = durableStreams.find((s) => s.name === name)!;
    const jsm = await this.manager();
    if (this.opts.manageStreams === false) {
      try {
        await jsm.streams.info(name);
      } catch (err) {
        throw new AviaryError('UNAVAILABLE', 'STREAM_MISSING', `stream ${name} is not there yet (its owner creates it): ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
      }
      this.ensured.add(name);
      return;
    }
    const config = { name, subjects: [...def.subjects], max_age: def.maxAgeSeconds * 1_000_000_000, max_bytes: def.maxBytes, duplicate_window: 120_000_000_000, num_replicas: this.replicas };
    try {
      await jsm.streams.info(name);
      await jsm.streams.update(name, config);
    } catch (err) {
      if (!/not found/i.test(err instanceof Error ? err.message : '')) throw err;
      await jsm.streams.add(config);
    }
    this.ensured.add(name);
  }

  /** Stops every subscription and consumer, drains the connection and closes it. */
  async close(): Promise<void> {
    for (const s of [...this.stoppables]) await s.stop();
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}
