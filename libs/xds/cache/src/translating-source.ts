import { TypeUrl, type ResourceTypeUrl } from '@aviary/xds-protos';
import { defaultEncoder, Snapshot, type EncodedResource, type ResourceEncoder, type SnapshotInput } from './snapshot';
import { ChangeEmitter, type ChangeListener, type ResourceSource, type SourceChange, type XdsPeer } from './source';

export interface TranslatingSourceOptions<M, P extends XdsPeer = XdsPeer> {
  /** Pure, deterministic `(proxy, model) → resources` (the mesh translation). */
  readonly translate: (proxy: P, model: M) => SnapshotInput;
  /**
   * Optional EDS-only path: the Clusters and ClusterLoadAssignments named `names` (every one
   * already in the proxy's snapshot) exactly as `translate` would give them for `model`, or
   * undefined to fall back to `translate`. Used for changes narrowed to CDS/EDS by name.
   */
  readonly translateEndpoints?: (proxy: P, model: M, names: readonly string[]) => SnapshotInput | undefined;
  /** Optional: the Clusters named `names` that `proxy` may see, whether or not `translate` gives them (see `ResourceSource.clustersFor`). */
  readonly translateClusters?: (proxy: P, model: M, names: readonly string[]) => SnapshotInput;
  /** Proxies with the same key get the same resources and share one snapshot; default the node id. */
  readonly groupOf?: (proxy: P) => string;
  readonly encoder?: ResourceEncoder;
  readonly now?: () => number;
  /** Called when a translation is refused (inconsistent or invalid); the last good snapshot stays served. */
  readonly onRejected?: (proxy: P, error: unknown) => void;
}

/** A group's snapshot of an earlier model whose named endpoints may have changed since. */
interface Stale {
  readonly snapshot: Snapshot;
  readonly names: readonly ((name: string) => boolean)[];
}

const endpointTypes: ReadonlySet<ResourceTypeUrl> = new Set([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]);

/**
 * Narrowed changes a stale snapshot collects at most before its group is translated in full
 * instead. A group none of whose streams is pushed (its proxies are affected by a host but
 * subscribe to none of the changed names) is not asked again, so without a bound it would keep
 * one name filter per endpoint change for as long as pilot runs, and every change would copy
 * the growing list.
 */
export const MAX_STALE_CHANGES = 32;

/**
 * A ResourceSource over an immutable model: translates lazily per proxy group, memoizes per
 * model generation, checks consistency before serving, and keeps the last good snapshot of a
 * group when a new translation is refused. This is where a translation layer plugs in.
 *
 * A change is trusted as narrowed: groups none of whose proxies `affects` keep their snapshot;
 * `types: []` keeps every snapshot; a change of CDS/EDS by `names` (with `translateEndpoints`)
 * patches the named resources into each group's previous snapshot instead of re-translating.
 */
export class TranslatingSource<M, P extends XdsPeer = XdsPeer> implements ResourceSource<P> {
  private model: M;
  private memo = new Map<string, Snapshot>();
  private stale = new Map<string, Stale>();
  /** Proxies seen per group since its snapshot was made, for `affects`. */
  private readonly members = new Map<string, Map<string, P>>();
  private readonly lastGood = new Map<string, Snapshot>();
  /** Per assignment map: the filters it was last asked about and the names they matched. */
  private readonly lastChanged = new WeakMap<ReadonlyMap<string, EncodedResource>, Pick<Stale, 'names'> & { readonly changed: readonly string[] }>();
  private readonly emitter = new ChangeEmitter<P>();
  private readonly groupOf: (proxy: P) => string;
  private readonly encoder: ResourceEncoder;
  private readonly now: () => number;

  constructor(
    model: M,
    private readonly options: TranslatingSourceOptions<M, P>,
  ) {
    this.model = model;
    this.groupOf = options.groupOf ?? ((p) => p.id);
    this.encoder = options.encoder ?? defaultEncoder();
    this.now = options.now ?? Date.now;
    const translateClusters = options.translateClusters;
    if (translateClusters) this.clustersFor = (proxy, names) => this.rebuildClusters(translateClusters, proxy, names);
  }

  /** Replaces the model and tells the server what may have changed (default: everything). */
  setModel(model: M, change: SourceChange<P> = {}): void {
    this.model = model;
    this.invalidate(change);
    this.emitter.emit({ ...change, observedAt: change.observedAt ?? this.now() });
  }

  private affected(group: string, change: SourceChange<P>): boolean {
    const affects = change.affects;
    if (!affects) return true;
    const members = this.members.get(group);
    if (!members) return true;
    for (const p of members.values()) if (affects(p)) return true;
    return false;
  }

  private invalidate(change: SourceChange<P>): void {
    const types = change.types;
    if (types && types.length === 0) return;
    const names = change.names;
    const patchable = names !== undefined && this.options.translateEndpoints !== undefined && types !== undefined && types.every((t) => endpointTypes.has(t));
    const groups = new Set([...this.memo.keys(), ...this.stale.keys()]);
    for (const group of groups) {
      if (!this.affected(group, change)) continue;
      const memoized = this.memo.get(group);
      const stale = this.stale.get(group);
      this.memo.delete(group);
      if (patchable && (memoized || (stale && stale.names.length < MAX_STALE_CHANGES))) {
        this.stale.set(group, memoized ? { snapshot: memoized, names: [names] } : { snapshot: stale!.snapshot, names: [...stale!.names, names] });
      } else {
        this.stale.delete(group);
        this.members.delete(group);
      }
    }
  }

  resourcesFor(proxy: P): Snapshot {
    const group = this.groupOf(proxy);
    let members = this.members.get(group);
    if (!members) {
      members = new Map();
      this.members.set(group, members);
    }
    if (!members.has(proxy.id)) members.set(proxy.id, proxy);
    const memoized = this.memo.get(group);
    if (memoized) return memoized;
    const stale = this.stale.get(group);
    this.stale.delete(group);
    const snapshot = (stale && this.patch(proxy, stale)) ?? this.translate(proxy, group);
    this.memo.set(group, snapshot);
    return snapshot;
  }

  /** The stale snapshot with its changed endpoints re-translated, or undefined to translate in full. */
  private patch(proxy: P, stale: Stale): Snapshot | undefined {
    const changed = this.changedNames(stale);
    if (changed.length === 0) return stale.snapshot;
    try {
      const input = this.options.translateEndpoints!(proxy, this.model, changed);
      if (!input) return undefined;
      const snapshot = stale.snapshot.replace(input, { encoder: this.encoder });
      if (!snapshot.consistent().ok) return undefined;
      this.lastGood.set(this.groupOf(proxy), snapshot);
      return snapshot;
    } catch {
      return undefined;
    }
  }

  /**
   * The stale snapshot's assignment names that its changes name. Groups share assignment maps
   * (one translated list, and the maps `Snapshot.replace` shares), and one change makes many
   * of them stale with the same filters, so the names are found once per map and filters.
   */
  private changedNames(stale: Stale): readonly string[] {
    const assignments = stale.snapshot.resources(TypeUrl.ClusterLoadAssignment);
    const last = this.lastChanged.get(assignments);
    if (last && last.names.length === stale.names.length && last.names.every((f, i) => f === stale.names[i])) return last.changed;
    const changed = [...assignments.keys()].filter((n) => stale.names.some((f) => f(n)));
    this.lastChanged.set(assignments, { names: stale.names, changed });
    return changed;
  }

  private translate(proxy: P, group: string): Snapshot {
    try {
      const snapshot = Snapshot.build(this.options.translate(proxy, this.model), { encoder: this.encoder });
      const result = snapshot.consistent();
      if (!result.ok) throw new Error(result.problems.join('; '));
      this.lastGood.set(group, snapshot);
      return snapshot;
    } catch (error) {
      this.options.onRejected?.(proxy, error);
      return this.lastGood.get(group) ?? Snapshot.empty();
    }
  }

  /** With `translateClusters`: see `ResourceSource.clustersFor`. */
  readonly clustersFor?: (proxy: P, names: readonly string[]) => readonly EncodedResource[];

  private rebuildClusters(translateClusters: (proxy: P, model: M, names: readonly string[]) => SnapshotInput, proxy: P, names: readonly string[]): readonly EncodedResource[] {
    if (names.length === 0) return [];
    try {
      const input = translateClusters(proxy, this.model, names);
      return [...this.encoder.encodeList(TypeUrl.Cluster, input[TypeUrl.Cluster] ?? []).map.values()];
    } catch (error) {
      this.options.onRejected?.(proxy, error);
      return [];
    }
  }

  /** Drops the remembered snapshot of a group whose proxies are gone. */
  forget(group: string): void {
    this.memo.delete(group);
    this.stale.delete(group);
    this.members.delete(group);
    this.lastGood.delete(group);
  }

  onChange(listener: ChangeListener<P>): () => void {
    return this.emitter.onChange(listener);
  }
}
