import type { ResourceTypeUrl } from '@aviary/xds-protos';
import type { ProxyInfo } from './node';
import type { Snapshot } from './snapshot';

/**
 * A change the server must push. Narrow it as far as the source knows: an endpoint-only change
 * is `{ types: [EDS] }`, and the server then compares each watching proxy's EDS resources with
 * what it last sent, so only proxies subscribed to a changed ClusterLoadAssignment get a push.
 */
export interface SourceChange {
  /** Types that may have changed; undefined means all. */
  readonly types?: readonly ResourceTypeUrl[];
  /** Proxies that may be affected; undefined means all. */
  readonly affects?: (proxy: ProxyInfo) => boolean;
  /**
   * Names of the resources (of `types`) that may have changed; undefined means any. The server
   * then skips, without asking the source, a stream whose subscription to every one of `types`
   * is by name (not wildcard) and names none of them: it watches nothing that changed.
   */
  readonly names?: (name: string) => boolean;
  /** When the change was first observed (ms, the server's clock): start of convergence time. */
  readonly observedAt?: number;
}

export type ChangeListener = (change: SourceChange) => void;

/**
 * What the xDS server reads. `resourcesFor` must be cheap to call again with the same inputs
 * (cache per proxy or per group) and must return only consistent snapshots.
 */
export interface ResourceSource {
  resourcesFor(proxy: ProxyInfo): Snapshot;
  /** Subscribes; returns the unsubscribe function. */
  onChange(listener: ChangeListener): () => void;
}

/** Union of two changes (used when debouncing). */
export function mergeChanges(a: SourceChange, b: SourceChange): SourceChange {
  const types = a.types && b.types ? [...new Set([...a.types, ...b.types])] : undefined;
  const fa = a.affects;
  const fb = b.affects;
  const affects = fa && fb ? (p: ProxyInfo) => fa(p) || fb(p) : undefined;
  const na = a.names;
  const nb = b.names;
  const names = na && nb ? (n: string) => na(n) || nb(n) : undefined;
  const observedAt = a.observedAt === undefined ? b.observedAt : b.observedAt === undefined ? a.observedAt : Math.min(a.observedAt, b.observedAt);
  return {
    ...(types && { types }),
    ...(affects && { affects }),
    ...(names && { names }),
    ...(observedAt !== undefined && { observedAt }),
  };
}

/** A tiny listener set shared by sources. */
export class ChangeEmitter {
  private readonly listeners = new Set<ChangeListener>();

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: SourceChange): void {
    for (const l of [...this.listeners]) l(change);
  }
}
