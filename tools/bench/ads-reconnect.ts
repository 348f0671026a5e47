// How the pilot benchmark's load generator (tools/bench/pilot-load.ts) comes back after its ADS
// stream ends, as Envoy does: pure functions, so tools/bench/ads-reconnect.spec.ts tests them
// without a peer.

/**
 * Envoy's retry schedule for its xDS gRPC stream (source/common/config/grpc_stream.h:
 * RetryInitialDelayMs 500, RetryMaxDelayMs 30000, a JitteredExponentialBackOffStrategy): the
 * interval starts at 500 ms and doubles per failed attempt up to 30 s, and the wait is drawn
 * uniformly from [0, interval) ("full jitter"), so streams dropped together do not come back
 * together. Envoy resets the schedule when the new stream delivers its first response.
 */
export const ADS_BACKOFF = { baseMs: 500, maxMs: 30_000 } as const;

/** The interval of attempt `attempt` (0 for the first retry after a drop). */
export function backoffIntervalMs(attempt: number, schedule: { baseMs: number; maxMs: number } = ADS_BACKOFF): number {
  // 2 ** attempt overflows to Infinity long after the cap applies; min() keeps the result finite.
  return Math.min(schedule.maxMs, schedule.baseMs * 2 ** Math.max(0, attempt));
}

/** The wait before attempt `attempt`: `random()` (in [0, 1)) times its interval, in whole ms. */
export function backoffMs(attempt: number, random: () => number = Math.random, schedule: { baseMs: number; maxMs: number } = ADS_BACKOFF): number {
  return Math.floor(random() * backoffIntervalMs(attempt, schedule));
}

/** What a stream holds of one resource type when its connection drops. */
export interface HeldType {
  readonly typeUrl: string;
  /** Names subscribed to ([] = wildcard, for CDS/LDS), as the last request sent them. */
  readonly names: readonly string[];
  /** Version of the last response applied (SotW `version_info`, delta `system_version_info`). */
  readonly version: string;
  /** Resources held, name → version (delta sends them back as `initial_resource_versions`). */
  readonly received: ReadonlyMap<string, string>;
  /** Whether the type was requested on the dropped stream (EDS/RDS only once something names them). */
  readonly requested: boolean;
}

/**
 * The requests that resume a stream on a new connection, in the order the types are given: the
 * node on the first only, no nonce (it belonged to the old stream), and what the proxy held.
 * SotW, as Envoy's GrpcMuxImpl on a new stream: `version_info` of the last accepted response and
 * the current `resource_names` (empty: wildcard). Delta, as Envoy's NewGrpcMuxImpl: the names
 * subscribed to (none for a wildcard type) and `initial_resource_versions` with every resource held,
 * so the server sends only what changed meanwhile.
 */
export function resumeRequests(mode: 'sotw' | 'delta', node: object, held: readonly HeldType[]): object[] {
  const requests: object[] = [];
  for (const t of held) {
    if (!t.requested) continue;
    const first = requests.length === 0 ? { node } : {};
    if (mode === 'sotw') requests.push({ ...first, type_url: t.typeUrl, version_info: t.version, resource_names: [...t.names] });
    else requests.push({ ...first, type_url: t.typeUrl, resource_names_subscribe: [...t.names], initial_resource_versions: Object.fromEntries(t.received) });
  }
  return requests;
}
