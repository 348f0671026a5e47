import type { ResourceTypeUrl } from '@aviary/xds-protos';
import type { EncodedResource, Snapshot } from './snapshot';

/**
 * What the serving layer reads of a connected client: its node id as sent and its kind (a
 * closed metric label). Everything else a proxy is (Istio's node id format, namespace,
 * identity) is the business of the node parser the server is given and of the source, which
 * receive the parser's full result as `P`.
 */
export interface XdsPeer {
  readonly id: string;
  readonly kind: string;
}

/**
 * Why a change happened, as far as the source knows (a closed set, Istio's TriggerReason in
 * small): `endpoints` when only endpoints changed (workloads' addresses, ports, weights, health:
 * the ClusterLoadAssignments by name, and the proxies at the changed addresses), `config` for
 * any configuration change, `credentials` for Secrets.
 */
export type ChangeReason = 'endpoints' | 'config' | 'credentials';

export const changeReasons: readonly ChangeReason[] = ['endpoints', 'config', 'credentials'];

/**
 * A change the server must push. Narrow it as far as the source knows: an endpoint-only change
 * is `{ types: [EDS] }`, and the server then compares each watching proxy's EDS resources with
 * what it last sent, so only proxies subscribed to a changed ClusterLoadAssignment get a push.
 */
export interface SourceChange<P extends XdsPeer = XdsPeer> {
  /** Types that may have changed; undefined means all. */
  readonly types?: readonly ResourceTypeUrl[];
  /** Proxies that may be affected; undefined means all. */
  readonly affects?: (proxy: P) => boolean;
  /**
   * Names of the resources (of `types`) that may have changed; undefined means any. The server
   * then skips, without asking the source, a stream whose subscription to every one of `types`
   * is by name (not wildcard) and names none of them: it watches nothing that changed.
   */
  readonly names?: (name: string) => boolean;
  /** When the change was first observed (ms, the server's clock): start of convergence time. */
  readonly observedAt?: number;
  /**
   * Why; undefined: not known. A server debouncing with `leadingEndpoints` pushes a burst of
   * `endpoints` changes that follows a quiet period at once instead of after the quiet period.
   */
  readonly reason?: ChangeReason;
}

export type ChangeListener<P extends XdsPeer = XdsPeer> = (change: SourceChange<P>) => void;

/**
 * What the xDS server reads. `resourcesFor` must be cheap to call again with the same inputs
 * (cache per proxy or per group) and must return only consistent snapshots.
 */
export interface ResourceSource<P extends XdsPeer = XdsPeer> {
  resourcesFor(proxy: P): Snapshot;
  /**
   * Optional: the clusters named `names` that `proxy` may see, built from the current model
   * even when its snapshot has none of them (it reached them by config it no longer gets); those
   * the model cannot build are left out. The server keeps such clusters for a proxy that
   * reconnects still routing to them (state of the world: see `ClusterWarming.resumedHolding`).
   */
  clustersFor?(proxy: P, names: readonly string[]): readonly EncodedResource[];
  /** Subscribes; returns the unsubscribe function. */
  onChange(listener: ChangeListener<P>): () => void;
}

/** Union of two changes (used when debouncing). */
export function mergeChanges<P extends XdsPeer>(a: SourceChange<P>, b: SourceChange<P>): SourceChange<P> {
  const types = a.types && b.types ? [...new Set([...a.types, ...b.types])] : undefined;
  const fa = a.affects;
  const fb = b.affects;
  const affects = fa && fb ? (p: P) => fa(p) || fb(p) : undefined;
  const na = a.names;
  const nb = b.names;
  const names = na && nb ? (n: string) => na(n) || nb(n) : undefined;
  const observedAt = a.observedAt === undefined ? b.observedAt : b.observedAt === undefined ? a.observedAt : Math.min(a.observedAt, b.observedAt);
  const reason = a.reason === b.reason ? a.reason : undefined;
  return {
    ...(types && { types }),
    ...(affects && { affects }),
    ...(names && { names }),
    ...(observedAt !== undefined && { observedAt }),
    ...(reason !== undefined && { reason }),
  };
}

/** A tiny listener set shared by sources. */
export class ChangeEmitter<P extends XdsPeer = XdsPeer> {
  private readonly listeners = new Set<ChangeListener<P>>();

  onChange(listener: ChangeListener<P>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: SourceChange<P>): void {
    for (const l of [...this.listeners]) l(change);
  }
}
