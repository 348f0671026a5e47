/**
 * One distinct set of subscribed names, shared by every stream that subscribes to exactly those
 * names of a type. A question about the names (does this change concern any of them?) is then
 * answered once per distinct set rather than once per stream: the sidecars of one namespace under
 * one Sidecar subscribe to the same ~100 assignments, and a server with 1,000 such streams would
 * otherwise walk 100,000 names for every endpoint change.
 */
export class SubscriptionKey {
  /** @param names the names, copied when the key was made (the stream's own set changes later). */
  constructor(readonly names: ReadonlySet<string>) {}
}

/** Live keys by a digest of their names; a key no stream holds any more is dropped by the GC. */
const interned = new Map<string, WeakRef<SubscriptionKey>>();
const dropped = new FinalizationRegistry<string>((digest) => {
  if (interned.get(digest)?.deref() === undefined) interned.delete(digest);
});

function sameNames(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

/**
 * The names one stream subscribes to for one type (a `Set`). `key()` finds the shared
 * `SubscriptionKey` of the same names by a digest (the count, the first and the last name:
 * proxies alike list their names alike) and shares it only after comparing every name with the
 * key's own copy of its names. Two different sets with the same digest get different keys (the newer one is
 * found by the digest from then on), never the same one; the same names listed in another order
 * may get a key of their own, which costs only sharing.
 */
export class SubscribedNames extends Set<string> {
  private current: SubscriptionKey | undefined;

  /** Empty: `add` would run before the fields exist if the Set constructor were given names. */
  constructor() {
    super();
  }

  override add(name: string): this {
    if (!super.has(name)) {
      super.add(name);
      this.current = undefined;
    }
    return this;
  }

  override delete(name: string): boolean {
    if (!super.delete(name)) return false;
    this.current = undefined;
    return true;
  }

  override clear(): void {
    if (this.size === 0) return;
    super.clear();
    this.current = undefined;
  }

  /** The key every set with exactly these names shares (looked up once per change of the names). */
  key(): SubscriptionKey {
    if (this.current !== undefined) return this.current;
    let first: string | undefined;
    let last: string | undefined;
    for (const n of this) {
      first ??= n;
      last = n;
    }
    const digest = JSON.stringify([this.size, first, last]);
    const found = interned.get(digest)?.deref();
    if (found !== undefined && sameNames(found.names, this)) return (this.current = found);
    const key = new SubscriptionKey(new Set(this));
    interned.set(digest, new WeakRef(key));
    dropped.register(key, digest);
    return (this.current = key);
  }
}
