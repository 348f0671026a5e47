import type { ResourceTypeUrl } from '@aviary/xds-protos';

/** What the queue needs of a stream. */
export interface Pushable {
  /** Pushes what changed in `types` (all when undefined), in push order. */
  pushChanges(types: readonly ResourceTypeUrl[] | undefined, observedAt: number | undefined): void;
}

interface Pending {
  /** undefined: every type. */
  types: Set<ResourceTypeUrl> | undefined;
  observedAt: number | undefined;
}

/**
 * Streams waiting for a push, pushed `perTurn` at a time with a turn of the event loop between
 * slices. A gRPC write reaches its socket only when the loop turns: pushing 100 streams in one go
 * puts the first response on the wire after the last one is computed, while in slices the first
 * proxies receive and apply theirs (in their own processes, on other cores) as the server computes
 * the next ones, and ACKs are read in between. A stream queued again before its turn keeps its
 * place and gets the union of both pushes (types, and the earliest observation).
 */
export class PushQueue<C extends Pushable> {
  private readonly pending = new Map<C, Pending>();
  private next: NodeJS.Immediate | undefined;

  /** @param onError told of a push that threw; the queue goes on with the next stream. */
  constructor(
    private readonly perTurn: number,
    private readonly onError: (err: unknown, conn: C) => void = () => undefined,
  ) {}

  add(conn: C, types: readonly ResourceTypeUrl[] | undefined, observedAt: number | undefined): void {
    const queued = this.pending.get(conn);
    if (queued === undefined) {
      this.pending.set(conn, { types: types && new Set(types), observedAt });
      return;
    }
    if (types === undefined) queued.types = undefined;
    else if (queued.types !== undefined) for (const t of types) queued.types.add(t);
    if (observedAt !== undefined) queued.observedAt = Math.min(queued.observedAt ?? observedAt, observedAt);
  }

  /** Pushes the next `perTurn` streams now, and schedules the rest for the following turns. */
  run(): void {
    if (this.next !== undefined) clearImmediate(this.next);
    this.next = undefined;
    let pushed = 0;
    for (const [conn, p] of this.pending) {
      if (pushed === this.perTurn) {
        this.next = setImmediate(() => this.run());
        return;
      }
      this.pending.delete(conn);
      pushed++;
      try {
        conn.pushChanges(p.types && [...p.types], p.observedAt);
      } catch (err) {
        this.onError(err, conn);
      }
    }
  }

  /** Streams still waiting for their turn. */
  get size(): number {
    return this.pending.size;
  }

  /** Drops every waiting push. */
  clear(): void {
    if (this.next !== undefined) clearImmediate(this.next);
    this.next = undefined;
    this.pending.clear();
  }
}
