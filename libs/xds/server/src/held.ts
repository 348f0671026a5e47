import type { EncodedResource } from '@aviary/xds-cache';

/**
 * What a proxy holds (delta) or was last sent (SotW) of one type: the resource this stream
 * sent, or only its version when the proxy reported it (delta `initial_resource_versions`).
 */
export type HeldEntry = EncodedResource | string;

const emptyMap: ReadonlyMap<string, EncodedResource> = new Map();

/**
 * A stream's held resources of one type, by name. Most streams hold exactly the resources of
 * one snapshot map (all of a wildcard type's, or every assignment a sidecar subscribes to), and
 * many streams hold the same map, so the set is kept as that map, shared (a snapshot's maps
 * never change), until it first differs from it: only then does the stream get its own copy.
 * `holdExactly` shares a map again.
 */
export class HeldResources {
  /** The snapshot map held as it is, or undefined when `own` is the state. */
  private shared: ReadonlyMap<string, EncodedResource> | undefined = emptyMap;
  private own: Map<string, HeldEntry> | undefined;

  private get current(): ReadonlyMap<string, HeldEntry> {
    return this.shared ?? this.own!;
  }

  private writable(): Map<string, HeldEntry> {
    if (this.shared !== undefined) {
      this.own = new Map(this.shared);
      this.shared = undefined;
    }
    return this.own!;
  }

  get size(): number {
    return this.current.size;
  }

  get(name: string): HeldEntry | undefined {
    return this.current.get(name);
  }

  has(name: string): boolean {
    return this.current.has(name);
  }

  keys(): IterableIterator<string> {
    return this.current.keys();
  }

  values(): IterableIterator<HeldEntry> {
    return this.current.values();
  }

  set(name: string, entry: HeldEntry): void {
    if (this.current.get(name) !== entry) this.writable().set(name, entry);
  }

  delete(name: string): boolean {
    return this.current.has(name) && this.writable().delete(name);
  }

  clear(): void {
    this.holdExactly(emptyMap);
  }

  /** Holds exactly the resources of `map` (a snapshot's map, which never changes), sharing it. */
  holdExactly(map: ReadonlyMap<string, EncodedResource>): void {
    this.shared = map;
    this.own = undefined;
  }

  /** Whether the held set is `map` itself, shared rather than copied. */
  shares(map: ReadonlyMap<string, EncodedResource>): boolean {
    return this.shared === map;
  }

  /**
   * Records that `sent`, resources of `map` (a snapshot's map), were sent, and shares `map` when
   * the held set is then exactly its resources. A stream that held an earlier snapshot's map and
   * was sent the entries a patch changed moves to the new map without a copy of the old one.
   */
  holdSent(map: ReadonlyMap<string, EncodedResource>, sent: readonly EncodedResource[]): void {
    if (this.shared !== undefined && this.shared !== map && differsOnlyIn(this.shared, map, sent)) {
      this.holdExactly(map);
      return;
    }
    for (const r of sent) this.set(r.name, r);
    this.shareIfEqual(map);
  }

  /**
   * Shares `map` when the held set is already exactly its resources (as after sending a stream
   * everything of `map` it did not hold), so streams that hold the same map keep one copy.
   * Checks sizes first: the entries are compared only when they agree.
   */
  shareIfEqual(map: ReadonlyMap<string, EncodedResource>): void {
    const current = this.current;
    if (current === map || current.size !== map.size) return;
    for (const [name, entry] of current) if (map.get(name) !== entry) return;
    this.holdExactly(map);
  }
}

/** Whether `held` with `sent` put in by name is exactly `map`: same names, and every entry `sent` does not replace the same. */
function differsOnlyIn(held: ReadonlyMap<string, EncodedResource>, map: ReadonlyMap<string, EncodedResource>, sent: readonly EncodedResource[]): boolean {
  if (held.size !== map.size) return false;
  for (const r of sent) if (map.get(r.name) !== r) return false;
  let replaced: ReadonlySet<EncodedResource> | undefined;
  for (const [name, entry] of held) {
    const now = map.get(name);
    if (now === entry) continue;
    if (now === undefined) return false;
    replaced ??= new Set(sent);
    if (!replaced.has(now)) return false;
  }
  return true;
}
