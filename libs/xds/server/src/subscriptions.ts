/**
 * One distinct set of subscribed names, shared by every stream that subscribes to exactly those
 * names of a type. A question about the names (does this change concern any of them?) is then
 * answered once per distinct set rather than once per stream: the sidecars of one namespace under
 * one Sidecar subscribe to the same ~100 assignments, and a server with 1,000 such streams would
 * otherwise walk 100,000 names for every endpoint change.
 */
export class SubscriptionKey {
  /** @param holder a set that had these names when the key was made (it may have changed since). */
  constructor(readonly holder: ReadonlySet<string>) {}
}

/** Live keys by a digest of their names; a key no stream holds any more is dropped by the GC. */
const interned = new Map<string, WeakRef<SubscriptionKey>>();
const dropped = new FinalizationRegistry<string>((digest) => {
  if (interned.get(digest)?.deref() === undefined) interned.delete(digest);
});

/** Two FNV-1a lanes of `name` (32 bits each, different offset bases): summed per set, order-free. */
function nameHash(name: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return [a >>> 0, b >>> 0];
}

function sameNames(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

/**
 * The names one stream subscribes to for one type (a `Set`), keeping an order-free digest of
 * its content up to date on every change, so that `key()` finds the shared `SubscriptionKey` of
 * the same names without sorting or joining them. A key is shared only after comparing names with
 * a set that holds them: two different sets with the same digest get different keys (the newer
 * one is found by the digest from then on), never the same.
 */
export class SubscribedNames extends Set<string> {
  private sumA = 0;
  private sumB = 0;
  private current: SubscriptionKey | undefined;

  /** Empty: the digest is kept by `add`, which the Set constructor would call before the fields exist. */
  constructor() {
    super();
  }

  override add(name: string): this {
    if (super.has(name)) return this;
    super.add(name);
    const [a, b] = nameHash(name);
    this.sumA = (this.sumA + a) >>> 0;
    this.sumB = (this.sumB + b) >>> 0;
    this.current = undefined;
    return this;
  }

  override delete(name: string): boolean {
    if (!super.delete(name)) return false;
    const [a, b] = nameHash(name);
    this.sumA = (this.sumA - a) >>> 0;
    this.sumB = (this.sumB - b) >>> 0;
    this.current = undefined;
    return true;
  }

  override clear(): void {
    if (this.size === 0) return;
    super.clear();
    this.sumA = 0;
    this.sumB = 0;
    this.current = undefined;
  }

  /** The key every set with exactly these names shares (made once per change of the names). */
  key(): SubscriptionKey {
    if (this.current !== undefined) return this.current;
    const digest = `${this.size}.${this.sumA}.${this.sumB}`;
    const found = interned.get(digest)?.deref();
    if (found !== undefined && sameNames(found.holder, this)) return (this.current = found);
    const key = new SubscriptionKey(this);
    interned.set(digest, new WeakRef(key));
    dropped.register(key, digest);
    return (this.current = key);
  }
}
