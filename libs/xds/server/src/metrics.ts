import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Closed label values: xDS type short names (proxy kinds are the node parser's, see XdsServerOptions.kinds). */
export type TypeLabel = 'lds' | 'rds' | 'cds' | 'eds' | 'sds';

/** The sending path's state, read when metrics are collected (see `XdsMetrics.observeSending`). */
export interface SendingState {
  /** Response bytes handed to gRPC and not yet written (`SendBudget`). */
  readonly heldBytes: number;
  /** Responses waiting for room in the send budget. */
  readonly waiting: number;
  /** Framing buffers kept for reuse and not in use (`FramePool`). */
  readonly poolIdleBytes: number;
}

export class XdsMetrics {
  private readonly registers: Registry[];
  readonly pushes: Counter<'type'>;
  readonly pushDuration: Histogram<'type'>;
  readonly convergence: Histogram<'type'>;
  readonly rejects: Counter<'type'>;
  readonly connected: Gauge<'kind'>;
  readonly refused: Counter<'reason'>;
  readonly warmingHolds: Counter<'type' | 'outcome'>;

  /**
   * `kinds`: the node parser's closed set of proxy kinds, shown at 0 before any connects;
   * `refusalReasons`: the closed set of reasons a stream is refused for, likewise.
   */
  constructor(registry: Registry = new Registry(), kinds: readonly string[] = [], refusalReasons: readonly string[] = ['invalid_node']) {
    const registers = [registry];
    this.registers = registers;
    this.pushes = new Counter({ name: 'aviary_xds_pushes_total', help: 'xDS responses sent, by resource type.', labelNames: ['type'], registers });
    this.pushDuration = new Histogram({
      name: 'aviary_xds_push_duration_seconds',
      help: 'Time to compute, encode and write one xDS response.',
      labelNames: ['type'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.convergence = new Histogram({
      name: 'aviary_xds_convergence_seconds',
      help: 'Time from a change being observed to the proxy ACKing the response that carried it.',
      labelNames: ['type'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.rejects = new Counter({ name: 'aviary_xds_rejects_total', help: 'xDS responses NACKed by proxies, by resource type.', labelNames: ['type'], registers });
    this.connected = new Gauge({ name: 'aviary_xds_connected_proxies', help: 'Open ADS streams, by proxy kind.', labelNames: ['kind'], registers });
    for (const kind of kinds) this.connected.set({ kind }, 0);
    this.refused = new Counter({
      name: 'aviary_xds_streams_refused_total',
      help: 'ADS streams ended before being served: the node was invalid or the listener refused the peer, by reason.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of new Set(refusalReasons)) this.refused.inc({ reason }, 0);
    this.warmingHolds = new Counter({
      name: 'aviary_xds_warming_holds_total',
      help:
        'Listener/route pushes held until the clusters they name were warm on the proxy (type lds, rds), and CDS pushes that kept removed clusters until no route named them (type cds), by how the hold ended: ready, timeout (the bound ran out: sent or removed anyway), nack (a CDS/EDS NACK ended the wait).',
      labelNames: ['type', 'outcome'],
      registers,
    });
    for (const type of ['lds', 'rds', 'cds']) for (const outcome of ['ready', 'timeout', 'nack']) if (type !== 'cds' || outcome !== 'nack') this.warmingHolds.inc({ type, outcome }, 0);
  }

  /** Gauges of the sending path, read from `read` when scraped. */
  observeSending(read: () => SendingState): void {
    const gauge = (name: string, help: string, pick: (s: SendingState) => number): void => {
      new Gauge({
        name,
        help,
        registers: this.registers,
        collect(this: Gauge) {
          this.set(pick(read()));
        },
      });
    };
    gauge('aviary_xds_send_held_bytes', 'Response bytes handed to gRPC and not yet written, across all streams (bounded by the send budget).', (s) => s.heldBytes);
    gauge('aviary_xds_send_waiting_responses', 'Responses waiting for room in the send budget.', (s) => s.waiting);
    gauge('aviary_xds_frame_pool_idle_bytes', 'Buffers kept to frame responses into, not in use (let go after 30 s without use).', (s) => s.poolIdleBytes);
  }
}
