import { assertConsistent, ChangeEmitter, Snapshot, type ChangeListener, type ResourceSource, type XdsPeer } from '@aviary/xds-cache';
import type { ResourceTypeUrl } from '@aviary/xds-protos';

export interface SnapshotCacheOptions<P extends XdsPeer = XdsPeer> {
  /** Which snapshot a proxy reads; default its node id. */
  readonly groupOf?: (proxy: P) => string;
  /** Clock for `observedAt` (ms); default Date.now. */
  readonly now?: () => number;
}

/**
 * Tests only: snapshots set by hand, keyed by proxy group (go-control-plane's snapshot cache),
 * as the ResourceSource of an XdsServer under test. `setSnapshot` checks consistency first: an
 * inconsistent snapshot is refused and the previous one stays served.
 */
export class SnapshotCache<P extends XdsPeer = XdsPeer> implements ResourceSource<P> {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly emitter = new ChangeEmitter<P>();
  private readonly groupOf: (proxy: P) => string;
  private readonly now: () => number;

  constructor(options: SnapshotCacheOptions<P> = {}) {
    this.groupOf = options.groupOf ?? ((p) => p.id);
    this.now = options.now ?? Date.now;
  }

  /** Publishes `snapshot` for `group`; returns the types that changed (nothing is emitted when none did). */
  setSnapshot(group: string, snapshot: Snapshot): ResourceTypeUrl[] {
    assertConsistent(snapshot);
    const previous = this.snapshots.get(group);
    this.snapshots.set(group, snapshot);
    const types = snapshot.changedTypes(previous);
    if (types.length > 0) {
      this.emitter.emit({ types, affects: (p) => this.groupOf(p) === group, observedAt: this.now() });
    }
    return types;
  }

  getSnapshot(group: string): Snapshot | undefined {
    return this.snapshots.get(group);
  }

  deleteSnapshot(group: string): void {
    if (this.snapshots.delete(group)) this.emitter.emit({ affects: (p) => this.groupOf(p) === group, observedAt: this.now() });
  }

  groups(): string[] {
    return [...this.snapshots.keys()];
  }

  resourcesFor(proxy: P): Snapshot {
    return this.snapshots.get(this.groupOf(proxy)) ?? Snapshot.empty();
  }

  onChange(listener: ChangeListener<P>): () => void {
    return this.emitter.onChange(listener);
  }
}
