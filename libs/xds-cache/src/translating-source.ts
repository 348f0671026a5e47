import type { ProxyInfo } from './node';
import { defaultEncoder, Snapshot, type ResourceEncoder, type SnapshotInput } from './snapshot';
import { ChangeEmitter, type ChangeListener, type ResourceSource, type SourceChange } from './source';

export interface TranslatingSourceOptions<M> {
  /** Pure, deterministic `(proxy, model) → resources` (the mesh translation). */
  readonly translate: (proxy: ProxyInfo, model: M) => SnapshotInput;
  /** Proxies with the same key get the same resources and share one snapshot; default the node id. */
  readonly groupOf?: (proxy: ProxyInfo) => string;
  readonly encoder?: ResourceEncoder;
  readonly now?: () => number;
  /** Called when a translation is refused (inconsistent or invalid); the last good snapshot stays served. */
  readonly onRejected?: (proxy: ProxyInfo, error: unknown) => void;
}

/**
 * A ResourceSource over an immutable model: translates lazily per proxy group, memoizes per
 * model generation, checks consistency before serving, and keeps the last good snapshot of a
 * group when a new translation is refused. This is where a translation layer plugs in.
 */
export class TranslatingSource<M> implements ResourceSource {
  private model: M;
  private memo = new Map<string, Snapshot>();
  private readonly lastGood = new Map<string, Snapshot>();
  private readonly emitter = new ChangeEmitter();
  private readonly groupOf: (proxy: ProxyInfo) => string;
  private readonly encoder: ResourceEncoder;
  private readonly now: () => number;

  constructor(
    model: M,
    private readonly options: TranslatingSourceOptions<M>,
  ) {
    this.model = model;
    this.groupOf = options.groupOf ?? ((p) => p.id);
    this.encoder = options.encoder ?? defaultEncoder();
    this.now = options.now ?? Date.now;
  }

  /** Replaces the model and tells the server what may have changed (default: everything). */
  setModel(model: M, change: SourceChange = {}): void {
    this.model = model;
    this.memo = new Map();
    this.emitter.emit({ ...change, observedAt: change.observedAt ?? this.now() });
  }

  resourcesFor(proxy: ProxyInfo): Snapshot {
    const group = this.groupOf(proxy);
    const memoized = this.memo.get(group);
    if (memoized) return memoized;
    let snapshot: Snapshot;
    try {
      snapshot = Snapshot.build(this.options.translate(proxy, this.model), { encoder: this.encoder });
      const result = snapshot.consistent();
      if (!result.ok) throw new Error(result.problems.join('; '));
      this.lastGood.set(group, snapshot);
    } catch (error) {
      this.options.onRejected?.(proxy, error);
      snapshot = this.lastGood.get(group) ?? Snapshot.empty();
    }
    this.memo.set(group, snapshot);
    return snapshot;
  }

  /** Drops the remembered snapshot of a group whose proxies are gone. */
  forget(group: string): void {
    this.memo.delete(group);
    this.lastGood.delete(group);
  }

  onChange(listener: ChangeListener): () => void {
    return this.emitter.onChange(listener);
  }
}
