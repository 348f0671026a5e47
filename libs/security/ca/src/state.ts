/**
 * What the CA persists, and the pure rules of its trust bundle. The store is a port: local mode
 * writes 0600 files in the data dir (apps/citadel), Kubernetes mode a Secret (later).
 */

/** One self-signed root this CA created. */
export interface RootRecord {
  readonly certPem: string;
  /** PKCS#8 PEM. Secret: never logged, never in an error or an API response. */
  readonly keyPem: string;
  /** ISO time after which the root leaves the bundle; null while it is active or pending. */
  readonly retireAt: string | null;
  /**
   * An upper bound (ISO) of the notAfter of every leaf this root signed. Persisted lazily with
   * slack, so after a restart it still covers every leaf handed out.
   */
  readonly leavesUntil: string | null;
}

export interface CaState {
  readonly version: 1;
  /** Bumped whenever the set of trusted roots changes. */
  readonly bundleVersion: number;
  /** Self-signed roots, oldest first (empty with a plug-in CA). */
  readonly roots: readonly RootRecord[];
  /** Index in `roots` of the root that signs; -1 with a plug-in CA. */
  readonly active: number;
  /** P-256 PKCS#8 PEM that signs join tokens. Secret. */
  readonly tokenKeyPem: string;
}

export interface CaStateStore {
  load(): Promise<CaState | undefined>;
  save(state: CaState): Promise<void>;
}

/** The trust bundle: every root a peer must currently trust. */
export interface TrustBundle {
  readonly version: number;
  readonly roots: readonly string[];
}

/** Where the bundle goes (NATS subject + KV in the app). Must resolve only once it is stored. */
export interface BundleSink {
  publish(bundle: TrustBundle): Promise<void>;
}

/** Roots still trusted at `now`: everything not retired, or retired but with leaves still alive. */
export function trustedRoots(state: CaState, now: Date): string[] {
  return state.roots.filter((r) => r.retireAt === null || Date.parse(r.retireAt) > now.getTime()).map((r) => r.certPem);
}

/** Adds a pending root: it joins the bundle but does not sign until `activate`. */
export function addPendingRoot(state: CaState, root: { certPem: string; keyPem: string }): CaState {
  return { ...state, bundleVersion: state.bundleVersion + 1, roots: [...state.roots, { ...root, retireAt: null, leavesUntil: null }] };
}

/**
 * Makes root `index` the signer and schedules the previous signer's retirement for when the
 * last leaf it signed expires (never before `now`).
 */
export function activateRoot(state: CaState, index: number, now: Date, lastLeafNotAfter = 0): CaState {
  const roots = state.roots.map((r, i) => {
    if (i !== state.active) return r;
    const until = Math.max(r.leavesUntil === null ? 0 : Date.parse(r.leavesUntil), lastLeafNotAfter, now.getTime());
    return { ...r, retireAt: new Date(until).toISOString() };
  });
  return { ...state, roots, active: index };
}

/** Drops roots whose retirement time has passed. Returns the same object when nothing changed. */
export function pruneRoots(state: CaState, now: Date): CaState {
  const active = state.roots[state.active];
  const keep = state.roots.filter((r) => r === active || r.retireAt === null || Date.parse(r.retireAt) > now.getTime());
  if (keep.length === state.roots.length) return state;
  return { ...state, bundleVersion: state.bundleVersion + 1, roots: keep, active: active === undefined ? -1 : keep.indexOf(active) };
}
