import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { isAviaryError } from '@aviary/errors';
import { Issuer, parseCsr, pkiError, verifyChain, type IssuedCertificate, type KeyAlgorithm } from '@aviary/pki';
import { caError } from './errors';
import { parseSpiffeId, spiffeId, type Identity } from './identity';
import { JoinTokenValidator, mintJoinToken } from './join-token';
import { activateRoot, addPendingRoot, pruneRoots, trustedRoots, type BundleSink, type CaState, type CaStateStore, type TrustBundle } from './state';
import type { TokenValidator } from './token-validator';

/** How a caller proves who it is: a bearer token, or (renewal) a client certificate chain from mTLS. */
export interface Credentials {
  readonly bearerToken?: string | undefined;
  /** DER certificates presented by the TLS peer, leaf first. */
  readonly peerChain?: readonly Buffer[] | undefined;
}

export interface Caller extends Identity {
  readonly method: 'token' | 'certificate';
}

export type CertificateKind = 'workload' | 'serving';

export interface IssueResult {
  readonly kind: CertificateKind;
  /** Leaf first, root last. */
  readonly chain: readonly string[];
  readonly serialHex: string;
  /** The SPIFFE ID (workloads) or `dns:<name>,…` (serving certificates). */
  readonly identity: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** True when the requested lifetime was cut to the maximum (or to the CA's own expiry). */
  readonly clamped: boolean;
}

export interface CaOptions {
  readonly trustDomain: string;
  readonly store: CaStateStore;
  readonly sink: BundleSink;
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  /** Algorithm of roots this CA creates. */
  readonly algorithm?: KeyAlgorithm;
  /** A plug-in CA (Istio cacerts). When set, no root is created and rotation is refused. */
  readonly pluginCa?: Issuer;
  /** Defaults to a JoinTokenValidator for this CA's own token key. */
  readonly validator?: (tokenKey: KeyObject) => TokenValidator;
  readonly clock?: () => Date;
  /** How many issued certificates `recent()` remembers. */
  readonly recentLimit?: number;
}

/** How many times a write that lost to another replica (CONFLICT) is reapplied to the stored state. */
const WRITE_ATTEMPTS = 5;

const isConflict = (err: unknown): boolean => isAviaryError(err) && err.kind === 'CONFLICT';

/** `leavesUntil` is persisted with this slack so that it is written at most about once an hour. */
const LEAVES_UNTIL_SLACK_MS = 3_600_000;

/**
 * The certificate authority: authenticates the caller (token port or client certificate),
 * signs the CSR's public key for the caller's SPIFFE ID, keeps the trust bundle and rotates
 * roots without downtime. Holds no transport; the app publishes what it returns.
 */
export class CertificateAuthority {
  private signer: Issuer;
  private readonly validator: TokenValidator;
  private readonly recentIssued: IssueResult[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private readonly leafMax = new Map<string, number>();
  private leavesUntilWrite: { rootPem: string; until: number; done: Promise<void> } | undefined;

  private constructor(
    private readonly opts: CaOptions,
    private state: CaState,
    private readonly tokenKey: KeyObject,
  ) {
    this.signer = opts.pluginCa ?? issuerOf(state, state.active);
    this.validator = opts.validator?.(tokenKey) ?? new JoinTokenValidator([tokenKey], { clock: this.now });
  }

  /**
   * Loads the persisted state or creates it (a new root unless a plug-in CA is given, and a token
   * key). Several replicas may open one store at once: a lost create (CONFLICT) reloads what the
   * winner wrote, so every replica signs with the same root.
   */
  static async open(opts: CaOptions): Promise<CertificateAuthority> {
    if (opts.defaultTtlSeconds > opts.maxTtlSeconds) throw caError('TTL_INVALID', 'the default certificate TTL exceeds the maximum');
    for (let attempt = 1; ; attempt++) {
      try {
        let state = await opts.store.load();
        if (state === undefined) {
          const tokenKeyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
          state = { version: 1, bundleVersion: 1, roots: [], active: -1, tokenKeyPem };
          await opts.store.save(state);
        }
        if (opts.pluginCa === undefined && state.active < 0) {
          const root = Issuer.createRoot({ trustDomain: opts.trustDomain, algorithm: opts.algorithm ?? 'ecdsa-p256', now: (opts.clock ?? (() => new Date()))() });
          state = addPendingRoot(state, { certPem: root.certPem, keyPem: root.exportPrivateKeyPem() });
          state = { ...state, active: state.roots.length - 1 };
          await opts.store.save(state);
        }
        return new CertificateAuthority(opts, state, createPrivateKey(state.tokenKeyPem));
      } catch (err) {
        if (!isConflict(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  /**
   * Reads the stored state again and takes it over when another replica changed it (a rotation,
   * a prune, a later leaf expiry): from then on this replica signs with the stored active root.
   * Resolves true when the trust bundle changed (the caller publishes it).
   */
  async refresh(): Promise<boolean> {
    return this.serial(async () => {
      const stored = await this.opts.store.load();
      if (stored === undefined) throw caError('CA_STATE_MISSING', 'the CA state disappeared from its store; keeping the state in memory');
      const bundleChanged = stored.bundleVersion !== this.state.bundleVersion;
      this.adopt(stored);
      return bundleChanged;
    });
  }

  private readonly now = (): Date => (this.opts.clock ?? (() => new Date()))();

  get trustDomain(): string {
    return this.opts.trustDomain;
  }

  get isPluggedIn(): boolean {
    return this.opts.pluginCa !== undefined;
  }

  /** The trust bundle: the plug-in CA's root, or every self-signed root not yet retired. */
  bundle(): TrustBundle {
    const roots = this.opts.pluginCa !== undefined ? [this.opts.pluginCa.rootPem] : trustedRoots(this.state, this.now());
    return { version: this.state.bundleVersion, roots };
  }

  /** When the root at the end of the signing chain expires. */
  rootNotAfter(): Date {
    return this.signer.notAfter;
  }

  /** PEM chain of the signing CA (signing cert first, root last), e.g. for serving TLS. */
  caChain(): readonly string[] {
    return this.signer.caChain;
  }

  async publishBundle(): Promise<void> {
    await this.opts.sink.publish(this.bundle());
  }

  /** Mints a join token for one namespace/service account (admin API). */
  mintToken(req: { namespace: string; serviceAccount: string; ttlSeconds: number }): { token: string; expiresAt: Date } {
    return mintJoinToken(this.tokenKey, { ...req, now: this.now() });
  }

  /** Who is calling: a bearer token wins; otherwise a client certificate of this trust domain. */
  async authenticate(creds: Credentials): Promise<Caller> {
    if (creds.bearerToken !== undefined && creds.bearerToken !== '') {
      return { ...(await this.validator.validate(creds.bearerToken)), method: 'token' };
    }
    const chain = creds.peerChain ?? [];
    if (chain.length === 0) throw caError('TOKEN_MISSING', 'a bearer token (authorization: Bearer) or a client certificate is required');
    // Clients usually present only their leaf; our own intermediates complete the path.
    const verdict = verifyChain([...chain, ...this.signer.caChain.slice(0, -1)], this.bundle().roots, this.now());
    if (!verdict.ok) throw caError('PEER_CERT_UNTRUSTED', `the client certificate is not trusted: ${verdict.reason}`);
    const ids = verdict.peer.uris.map((u) => parseSpiffeId(this.opts.trustDomain, u));
    const id = ids.length === 1 ? ids[0] : undefined;
    if (id === undefined) throw caError('PEER_CERT_IDENTITY_INVALID', `the client certificate does not carry exactly one SPIFFE ID of ${this.opts.trustDomain}`);
    return { ...id, expiresAt: verdict.peer.notAfter, method: 'certificate' };
  }

  /**
   * Issues a workload certificate for the authenticated caller. Only the CSR's public key is
   * used. `validitySeconds` ≤ 0 or absent means the default; above the maximum it is clamped.
   */
  async issue(req: { csr: string | Buffer; validitySeconds?: number; credentials: Credentials }): Promise<IssueResult> {
    const caller = await this.authenticate(req.credentials);
    const csr = parseCsr(req.csr);
    const { ttl, clamped } = this.ttlFor(req.validitySeconds);
    const id = spiffeId(this.opts.trustDomain, caller.namespace, caller.serviceAccount);
    const cert = this.signer.signWorkload(csr, id, { ttlSeconds: ttl, now: this.now() });
    return this.record('workload', id, cert, clamped);
  }

  /** Issues a control-plane serving certificate (DNS/IP SANs) for a trusted internal caller. */
  async signServing(csr: string | Buffer, dnsNames: readonly string[], ttlSeconds: number): Promise<IssueResult> {
    const parsed = parseCsr(csr);
    const { ttl, clamped } = this.ttlFor(ttlSeconds);
    const cert = this.signer.signServing(parsed, dnsNames, ttl, this.now());
    return this.record('serving', `dns:${dnsNames.join(',')}`, cert, clamped);
  }

  private ttlFor(requested: number | undefined): { ttl: number; clamped: boolean } {
    if (requested !== undefined && !Number.isFinite(requested)) throw caError('TTL_INVALID', 'validity must be a number of seconds');
    if (requested === undefined || requested <= 0) return { ttl: this.opts.defaultTtlSeconds, clamped: false };
    const whole = Math.floor(requested);
    return whole > this.opts.maxTtlSeconds ? { ttl: this.opts.maxTtlSeconds, clamped: true } : { ttl: Math.max(whole, 1), clamped: false };
  }

  private async record(kind: CertificateKind, identity: string, cert: IssuedCertificate, clamped: boolean): Promise<IssueResult> {
    await this.noteLeaf(cert.notAfter);
    const result: IssueResult = {
      kind,
      chain: cert.chain,
      serialHex: cert.serialHex,
      identity,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      clamped: clamped || cert.clampedByCa,
    };
    this.recentIssued.push(result);
    if (this.recentIssued.length > (this.opts.recentLimit ?? 1000)) this.recentIssued.shift();
    return result;
  }

  /** Newest last: serial, identity and validity of recently issued certificates. */
  recent(): readonly IssueResult[] {
    return this.recentIssued;
  }

  /**
   * Tracks the latest leaf expiry per signing root: in memory at once (rotation reads it), and
   * persisted as an upper bound with slack, so a restart still knows it (about one write an hour).
   */
  private async noteLeaf(notAfter: Date): Promise<void> {
    if (this.opts.pluginCa !== undefined) return;
    const rootPem = this.signer.certPem;
    const t = notAfter.getTime();
    if (t > (this.leafMax.get(rootPem) ?? 0)) this.leafMax.set(rootPem, t);
    const persisted = this.state.roots.find((r) => r.certPem === rootPem)?.leavesUntil;
    if (persisted != null && Date.parse(persisted) >= t) return;
    const inflight = this.leavesUntilWrite;
    if (inflight !== undefined && inflight.rootPem === rootPem && inflight.until >= t) return inflight.done;
    const leavesUntil = new Date(t + LEAVES_UNTIL_SLACK_MS).toISOString();
    // A root another replica already retired must stay trusted until this leaf expires too.
    const done = this.mutate((s) => ({
      ...s,
      roots: s.roots.map((r) =>
        r.certPem === rootPem && (r.leavesUntil === null || r.leavesUntil < leavesUntil)
          ? { ...r, leavesUntil, retireAt: r.retireAt === null || r.retireAt >= leavesUntil ? r.retireAt : leavesUntil }
          : r,
      ),
    }));
    this.leavesUntilWrite = { rootPem, until: t + LEAVES_UNTIL_SLACK_MS, done };
    await done;
  }

  /**
   * Root rotation without downtime: (1) the new root joins the bundle and the bundle is
   * published; only then (2) the new root starts signing, and the old root is scheduled to
   * leave the bundle once every leaf it signed has expired.
   */
  async rotate(): Promise<TrustBundle> {
    if (this.opts.pluginCa !== undefined) throw caError('ROTATION_UNSUPPORTED', 'a plug-in CA rotates by replacing its cacerts files');
    return this.serial(async () => {
      const root = Issuer.createRoot({ trustDomain: this.opts.trustDomain, algorithm: this.opts.algorithm ?? 'ecdsa-p256', now: this.now() });
      await this.update((s) => addPendingRoot(s, { certPem: root.certPem, keyPem: root.exportPrivateKeyPem() }));
      try {
        await this.opts.sink.publish(this.bundle());
      } catch (err) {
        // The pending root stays in the bundle (harmless) but never signs; a retry rotates again.
        throw caError('BUNDLE_PUBLISH_FAILED', 'the new trust bundle could not be published; the new root was not activated', undefined, err);
      }
      // Swap first: from this instant only the new root signs, so the old root's leaf maximum is final.
      const old = this.signer;
      this.signer = root;
      try {
        await this.update((s) => activateRoot(s, s.roots.findIndex((r) => r.certPem === root.certPem), this.now(), this.leafMax.get(old.certPem)));
      } catch (err) {
        this.syncSigner();
        throw err;
      }
      return this.bundle();
    });
  }

  /** Drops retired roots whose leaves have all expired; publishes the bundle if it changed. */
  async prune(): Promise<boolean> {
    const changed = await this.serial(async () => {
      if (pruneRoots(this.state, this.now()) === this.state) return false;
      // Another replica may have extended a root's life since this one read the state.
      return this.update((s) => pruneRoots(s, this.now()));
    });
    if (changed) await this.publishBundle();
    return changed;
  }

  private async mutate(f: (s: CaState) => CaState): Promise<void> {
    await this.serial(() => this.update(f));
  }

  /**
   * Applies `f` to the state and stores it. When another replica wrote first (CONFLICT), reloads
   * and applies `f` again to what it wrote, a bounded number of times. Resolves false when `f`
   * leaves the state as it is (nothing written).
   */
  private async update(f: (s: CaState) => CaState): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        const next = f(this.state);
        if (next === this.state) return false;
        await this.commit(next);
        return true;
      } catch (err) {
        if (!isConflict(err) || attempt >= WRITE_ATTEMPTS) throw err;
        const stored = await this.opts.store.load();
        if (stored === undefined) throw caError('CA_STATE_MISSING', 'the CA state disappeared from its store while writing it');
        this.state = stored;
      }
    }
  }

  private async commit(next: CaState): Promise<void> {
    await this.opts.store.save(next);
    this.adopt(next);
  }

  /** Takes `next` as the state; the signer follows its active root. */
  private adopt(next: CaState): void {
    this.state = next;
    this.syncSigner();
  }

  private syncSigner(): void {
    if (this.opts.pluginCa !== undefined || this.state.roots[this.state.active]?.certPem === this.signer.certPem) return;
    this.signer = issuerOf(this.state, this.state.active);
  }

  /** Runs state changes one at a time. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function issuerOf(state: CaState, index: number): Issuer {
  const root = state.roots[index];
  if (root === undefined) throw pkiError('CA_LOAD_FAILED', 'the persisted CA state has no active root');
  return Issuer.fromPem({ caCertPem: root.certPem, caKeyPem: root.keyPem });
}
