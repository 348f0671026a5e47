import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { AviaryError } from '@aviary/errors';
import type { Bus } from './bus';
import { busBuckets } from './permissions';

export interface LeaseOptions {
  /** The lease's name (letters, digits, `_`, `-`), e.g. `pilot-canary`; its bucket is `aviary_lease_<name>`. */
  readonly name: string;
  /** Who holds it when this process does (e.g. the pod name); only for logs and `holder()`. */
  readonly identity: string;
  /**
   * How long a lease lives without renewal (ms, ≥ 3,000). The bucket's max age: nats-server
   * removes an unrenewed lease after it, so a holder that died is replaced within about this
   * long. The holder renews every third of it and steps down by itself when it could not renew
   * for two thirds of it (before the server can hand the lease to someone else).
   */
  readonly ttlMs: number;
  readonly logger: Logger;
  /** Told when this process becomes the holder and when it stops being it. */
  readonly onChange?: (leading: boolean) => void;
  /** Where `aviary_lease_held{lease}` (1 while this process holds the lease) is registered. */
  readonly registry?: Registry;
  /** Clock for the self-imposed step-down; injectable for tests. */
  readonly now?: () => number;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The one key of a lease's bucket. */
const KEY = 'holder';

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
}

/**
 * Leader election over a NATS JetStream KV bucket (`aviary_lease_<name>`, one per lease so each
 * has its own TTL), for work that must run once however many replicas run (pilot's canary
 * controller). The lease is the bucket's one key; its value names the holder. Taking it is a KV create (fails when someone holds it), renewing it is an
 * update checked against the revision this process wrote last (fails when someone else took
 * it), giving it up is a delete checked the same way. The bucket's max age is the lease TTL, so
 * nats-server itself drops the key of a holder that stopped renewing (crashed, partitioned): no
 * client clock decides who holds the lease. A holder that could not renew for 2/3 of the TTL
 * stops acting as leader on its own, before the server can expire the key, so two replicas
 * never both believe they lead (given clocks that run at the same rate; they need not agree).
 */
export class LeaderLease {
  private kv: KV | undefined;
  private revision = 0;
  private validUntil = 0;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly now: () => number;
  private readonly held: Gauge<'lease'> | undefined;

  constructor(
    private readonly bus: Pick<Bus, 'nc' | 'replicas'>,
    private readonly opts: LeaseOptions,
  ) {
    if (!NAME.test(opts.name)) throw new AviaryError('INVALID_ARGUMENT', 'LEASE_NAME_INVALID', `lease name ${JSON.stringify(opts.name)}: 1 to 64 letters, digits, _ and -`);
    if (!(opts.ttlMs >= 3_000)) throw new AviaryError('INVALID_ARGUMENT', 'LEASE_TTL_INVALID', `lease ttlMs ${opts.ttlMs}: at least 3000`);
    this.now = opts.now ?? Date.now;
    if (opts.registry !== undefined) {
      this.held =
        (opts.registry.getSingleMetric('aviary_lease_held') as Gauge<'lease'> | undefined) ??
        new Gauge({ name: 'aviary_lease_held', help: 'Whether this process holds the leader lease (1) or not (0), by lease', labelNames: ['lease'], registers: [opts.registry] });
      this.held.set({ lease: opts.name }, 0);
    }
  }

  /** Whether this process holds the lease now (false once it could not renew for 2/3 of the TTL). */
  get isLeader(): boolean {
    this.expire();
    return this.leading;
  }

  private expire(): void {
    if (this.leading && this.now() >= this.validUntil) this.setLeading(false, 'renewal overdue');
  }

  /** Starts campaigning: tries at once, then every third of the TTL. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** One campaign/renew round now (what the timer does); resolves when it is done. */
  tick(): Promise<void> {
    this.running = this.running.then(() => this.round());
    return this.running;
  }

  /** Stops campaigning and, when holding the lease, gives it up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
    if (this.leading && this.kv !== undefined) {
      await this.kv.delete(KEY, { previousSeq: this.revision }).catch((err: unknown) => this.opts.logger.warn({ err, lease: this.opts.name }, 'could not release the lease; it expires by itself'));
    }
    this.setLeading(false, 'stopped');
  }

  /** Who holds the lease as the store says (undefined: nobody). */
  async holder(): Promise<string | undefined> {
    const entry = await (await this.bucket()).get(KEY);
    return entry === null || entry.operation !== 'PUT' ? undefined : entry.string();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.tick().finally(() => this.schedule(Math.floor(this.opts.ttlMs / 3)));
    }, ms);
    this.timer.unref();
  }

  /** The lease's bucket, created on first use; an existing one gets this TTL (replicas are left as they are). */
  private async bucket(): Promise<KV> {
    if (this.kv !== undefined) return this.kv;
    const name = `${busBuckets.lease}${this.opts.name}`;
    const kv = await new Kvm(this.bus.nc).create(name, { history: 1, ttl: this.opts.ttlMs, replicas: this.bus.replicas, description: `Aviary leader lease ${this.opts.name}` });
    const { config } = (await kv.status()).streamInfo;
    const maxAge = this.opts.ttlMs * 1_000_000;
    if (config.max_age !== maxAge) await (await jetstreamManager(this.bus.nc)).streams.update(config.name, { ...config, max_age: maxAge });
    this.kv = kv;
    return kv;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const started = this.now();
    try {
      const kv = await this.bucket();
      if (this.leading) {
        this.revision = await kv.update(KEY, this.opts.identity, this.revision);
        this.validUntil = started + (this.opts.ttlMs * 2) / 3;
        return;
      }
      const entry = await kv.get(KEY);
      if (entry !== null && entry.operation === 'PUT') return; // someone holds it; its key expires unless renewed
      this.revision = entry === null ? await kv.create(KEY, this.opts.identity) : await kv.update(KEY, this.opts.identity, entry.revision);
      this.validUntil = started + (this.opts.ttlMs * 2) / 3;
      this.setLeading(true, 'acquired');
    } catch (err) {
      if (isWrongLastSequence(err)) {
        // Someone else wrote the key since our last look: not ours (any more).
        this.setLeading(false, 'taken by another replica');
        return;
      }
      // NATS unreachable or slow: keep what we have until validUntil, try again next round.
      this.opts.logger.warn({ err, lease: this.opts.name }, 'lease round failed');
      this.expire();
    }
  }

  private setLeading(leading: boolean, reason: string): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.held?.set({ lease: this.opts.name }, leading ? 1 : 0);
    this.opts.logger.info({ lease: this.opts.name, identity: this.opts.identity, reason }, leading ? 'lease acquired: leading' : 'lease lost: not leading');
    this.opts.onChange?.(leading);
  }
}
