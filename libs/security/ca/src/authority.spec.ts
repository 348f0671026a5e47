import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AviaryError, isAviaryError } from '@aviary/errors';
import { createCsr, generatePrivateKey, Issuer, uriSans, verifyChain } from '@aviary/pki';
import { CertificateAuthority, JoinTokenValidator, mintJoinToken, type CaState, type CaStateStore, type TrustBundle } from './index';

class MemoryStore implements CaStateStore {
  state: CaState | undefined;
  saves = 0;
  async load() {
    return this.state;
  }
  async save(s: CaState) {
    this.state = s;
    this.saves++;
  }
}

/**
 * One stored state shared by several replicas, compare-and-set like the Secret store: each view
 * remembers the revision it last read or wrote, and a save over a newer revision is a CONFLICT.
 */
class SharedState {
  state: CaState | undefined;
  revision = 0;
  view(): CaStateStore {
    let seen = 0;
    return {
      load: async () => {
        seen = this.revision;
        return this.state;
      },
      save: async (s: CaState) => {
        // Yield first, as a network store does, so concurrent writers really race.
        await new Promise((r) => setImmediate(r));
        if (seen !== this.revision) throw new AviaryError('CONFLICT', 'CA_STATE_WRITE_FAILED', 'another citadel wrote first');
        this.state = s;
        seen = ++this.revision;
      },
    };
  }
}

class RecordingSink {
  published: TrustBundle[] = [];
  onPublish: ((b: TrustBundle) => Promise<void>) | undefined;
  async publish(b: TrustBundle) {
    this.published.push(b);
    await this.onPublish?.(b);
  }
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (isAviaryError(err)) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

const csr = (): string => createCsr(generatePrivateKey(), { uris: ['spiffe://cluster.local/ns/kube-system/sa/admin'] });

async function open<S extends CaStateStore = MemoryStore>(extra: { clock?: () => Date; store?: S; sink?: RecordingSink; pluginCa?: Issuer } = {}) {
  const store = extra.store ?? new MemoryStore();
  const sink = extra.sink ?? new RecordingSink();
  const ca = await CertificateAuthority.open({
    trustDomain: 'cluster.local',
    store,
    sink,
    defaultTtlSeconds: 3600,
    maxTtlSeconds: 7200,
    ...(extra.clock === undefined ? {} : { clock: extra.clock }),
    ...(extra.pluginCa === undefined ? {} : { pluginCa: extra.pluginCa }),
  });
  return { ca, store, sink };
}

describe('join tokens', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const now = new Date('2030-01-01T00:00:00Z');
  const validator = new JoinTokenValidator([key], { clock: () => now });

  it('round-trips namespace, service account and expiry', async () => {
    const { token, expiresAt } = mintJoinToken(key, { namespace: 'shop', serviceAccount: 'checkout', ttlSeconds: 600, now });
    expect(await validator.validate(token)).toEqual({ namespace: 'shop', serviceAccount: 'checkout', expiresAt });
  });

  it('refuses expired, forged, foreign-audience, malformed and alg=none tokens', async () => {
    const expired = mintJoinToken(key, { namespace: 'a', serviceAccount: 'b', ttlSeconds: 60, now: new Date(now.getTime() - 61_000) }).token;
    expect(await codeOf(validator.validate(expired))).toBe('TOKEN_EXPIRED');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(await codeOf(validator.validate(mintJoinToken(other, { namespace: 'a', serviceAccount: 'b', ttlSeconds: 60, now }).token))).toBe('TOKEN_SIGNATURE_INVALID');
    expect(await codeOf(validator.validate(mintJoinToken(key, { namespace: 'a', serviceAccount: 'b', ttlSeconds: 60, now, audience: 'elsewhere' }).token))).toBe('TOKEN_AUDIENCE_MISMATCH');
    const good = mintJoinToken(key, { namespace: 'a', serviceAccount: 'b', ttlSeconds: 60, now }).token;
    const [h, , s] = good.split('.');
    const swapped = `${h}.${Buffer.from(JSON.stringify({ iss: 'aviary-citadel', aud: 'istio-ca', ns: 'kube-system', sa: 'admin', exp: 2e9 })).toString('base64url')}.${s}`;
    expect(await codeOf(validator.validate(swapped))).toBe('TOKEN_SIGNATURE_INVALID');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${good.split('.')[1]}.AAAA`;
    expect(await codeOf(validator.validate(none))).toBe('TOKEN_MALFORMED');
    expect(await codeOf(validator.validate('garbage'))).toBe('TOKEN_MALFORMED');
    expect(await codeOf(validator.validate(''))).toBe('TOKEN_MISSING');
  });

  it('refuses to mint for invalid names or lifetimes', async () => {
    expect(await codeOf(() => mintJoinToken(key, { namespace: 'Bad_NS', serviceAccount: 'b', ttlSeconds: 60 }))).toBe('IDENTITY_INVALID');
    expect(await codeOf(() => mintJoinToken(key, { namespace: 'a', serviceAccount: 'b', ttlSeconds: 0 }))).toBe('TTL_INVALID');
  });
});

describe('CertificateAuthority', () => {
  it('issues for the token identity, never for the CSR names; default and clamped TTLs', async () => {
    const { ca } = await open();
    const { token } = ca.mintToken({ namespace: 'shop', serviceAccount: 'checkout', ttlSeconds: 600 });
    const r = await ca.issue({ csr: csr(), credentials: { bearerToken: token } });
    expect(r.identity).toBe('spiffe://cluster.local/ns/shop/sa/checkout');
    expect(uriSans(r.chain[0]!)).toEqual(['spiffe://cluster.local/ns/shop/sa/checkout']);
    expect(r.clamped).toBe(false);
    expect((r.notAfter.getTime() - r.notBefore.getTime()) / 1000).toBe(3600 + 60);
    const long = await ca.issue({ csr: csr(), validitySeconds: 999_999, credentials: { bearerToken: token } });
    expect(long.clamped).toBe(true);
    expect((long.notAfter.getTime() - long.notBefore.getTime()) / 1000).toBe(7200 + 60);
    expect(verifyChain([r.chain[0]!], ca.bundle().roots).ok).toBe(true);
    expect(ca.recent().map((x) => x.serialHex)).toEqual([r.serialHex, long.serialHex]);
  });

  it('issues nothing for bad input, whatever the order of problems', async () => {
    const { ca } = await open();
    const { token } = ca.mintToken({ namespace: 'shop', serviceAccount: 'checkout', ttlSeconds: 600 });
    expect(await codeOf(ca.issue({ csr: csr(), credentials: {} }))).toBe('TOKEN_MISSING');
    expect(await codeOf(ca.issue({ csr: 'garbage', credentials: {} }))).toBe('TOKEN_MISSING');
    expect(await codeOf(ca.issue({ csr: 'garbage', credentials: { bearerToken: token } }))).toBe('CSR_MALFORMED');
    expect(await codeOf(ca.issue({ csr: csr(), credentials: { bearerToken: `${token}x` } }))).toBe('TOKEN_SIGNATURE_INVALID');
    expect(ca.recent()).toHaveLength(0);
  });

  it('renews with a client certificate of the same identity; refuses foreign and other-domain certificates', async () => {
    const { ca } = await open();
    const { token } = ca.mintToken({ namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600 });
    const first = await ca.issue({ csr: csr(), credentials: { bearerToken: token } });
    const der = new X509Certificate(first.chain[0]!).raw;
    const renewed = await ca.issue({ csr: csr(), credentials: { peerChain: [der] } });
    expect(renewed.identity).toBe(first.identity);
    const foreign = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const foreignLeaf = foreign.signWorkload(csr(), 'spiffe://cluster.local/ns/shop/sa/cart', { ttlSeconds: 60 });
    expect(await codeOf(ca.issue({ csr: csr(), credentials: { peerChain: [new X509Certificate(foreignLeaf.certPem).raw] } }))).toBe('PEER_CERT_UNTRUSTED');
    const serving = await ca.signServing(csr(), ['example.com'], 600);
    expect(await codeOf(ca.issue({ csr: csr(), credentials: { peerChain: [new X509Certificate(serving.chain[0]!).raw] } }))).toBe('PEER_CERT_IDENTITY_INVALID');
  });

  it('rotates: the new root is published before it signs; old leaves keep verifying until they expire', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const sink = new RecordingSink();
    const { ca, store } = await open({ clock: () => now, sink });
    const { token } = ca.mintToken({ namespace: 'shop', serviceAccount: 'checkout', ttlSeconds: 86_400 * 30 });
    const old = await ca.issue({ csr: csr(), credentials: { bearerToken: token } });
    const oldRoot = ca.bundle().roots[0]!;
    // While the new bundle is being published, the old root still signs.
    let signedDuringPublish: string | undefined;
    sink.onPublish = async (b) => {
      expect(b.roots).toHaveLength(2);
      signedDuringPublish = (await ca.issue({ csr: csr(), credentials: { bearerToken: token } })).chain.at(-1);
    };
    const bundle = await ca.rotate();
    sink.onPublish = undefined;
    expect(signedDuringPublish).toBe(oldRoot);
    expect(bundle.roots).toHaveLength(2);
    expect(bundle.version).toBeGreaterThan(1);
    const fresh = await ca.issue({ csr: csr(), credentials: { bearerToken: token } });
    expect(fresh.chain.at(-1)).not.toBe(oldRoot);
    expect(verifyChain([old.chain[0]!], bundle.roots, now).ok).toBe(true);
    expect(verifyChain([fresh.chain[0]!], bundle.roots, now).ok).toBe(true);
    // Not yet: a leaf of the old root is still valid.
    now = new Date(now.getTime() + 1800_000);
    expect(await ca.prune()).toBe(false);
    // After the last old leaf (plus the persisted slack) expired, the old root leaves the bundle.
    now = new Date(now.getTime() + 3 * 3600_000);
    expect(await ca.prune()).toBe(true);
    expect(ca.bundle().roots).toEqual([fresh.chain.at(-1)]);
    expect(sink.published.at(-1)!.roots).toHaveLength(1);
    // Restart from the same store keeps the same root.
    const again = await open({ store, clock: () => now });
    expect(again.ca.bundle()).toEqual(ca.bundle());
  });

  it('remembers the leaf expiry across a restart before rotating', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const store = new MemoryStore();
    const a = await open({ store, clock: () => now });
    const { token } = a.ca.mintToken({ namespace: 'x', serviceAccount: 'y', ttlSeconds: 600 });
    await a.ca.issue({ csr: csr(), credentials: { bearerToken: token } });
    const b = await open({ store, clock: () => now });
    await b.ca.rotate();
    now = new Date(now.getTime() + 3000_000);
    expect(await b.ca.prune()).toBe(false);
    expect(b.ca.bundle().roots).toHaveLength(2);
  });

  it('with a plug-in CA, bundles its root and refuses rotation', async () => {
    const root = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const { ca } = await open({ pluginCa: root });
    expect(ca.bundle().roots).toEqual([root.rootPem]);
    expect(await codeOf(ca.rotate())).toBe('ROTATION_UNSUPPORTED');
  });

  it('keeps the pending root out of signing when the bundle cannot be published', async () => {
    const sink = new RecordingSink();
    const { ca } = await open({ sink });
    const before = ca.caChain();
    sink.onPublish = async () => {
      throw new Error('nats down');
    };
    expect(await codeOf(ca.rotate())).toBe('BUNDLE_PUBLISH_FAILED');
    expect(ca.caChain()).toEqual(before);
  });
});

describe('several citadel replicas on one store', () => {
  const rootOf = (r: { chain: readonly string[] }): string => r.chain.at(-1)!;

  it('replicas opening an empty store at once end up with one root and one token key', async () => {
    const shared = new SharedState();
    const replicas = await Promise.all([open({ store: shared.view() }), open({ store: shared.view() }), open({ store: shared.view() })]);
    expect(shared.state?.roots).toHaveLength(1);
    for (const { ca } of replicas) expect(ca.bundle().roots).toEqual([shared.state!.roots[0]!.certPem]);
    // A join token minted by one replica is accepted by another.
    const { token } = replicas[0]!.ca.mintToken({ namespace: 'shop', serviceAccount: 'web', ttlSeconds: 600 });
    const issued = await replicas[2]!.ca.issue({ csr: csr(), credentials: { bearerToken: token } });
    expect(issued.identity).toBe('spiffe://cluster.local/ns/shop/sa/web');
  });

  it('a rotation through one replica: the other signs with the new root after refresh, and publishes the new bundle', async () => {
    const shared = new SharedState();
    const a = await open({ store: shared.view() });
    const b = await open({ store: shared.view() });
    const { token } = a.ca.mintToken({ namespace: 'shop', serviceAccount: 'web', ttlSeconds: 600 });
    await b.ca.issue({ csr: csr(), credentials: { bearerToken: token } });
    const bundle = await a.ca.rotate();
    expect(bundle.roots).toHaveLength(2);
    expect(await b.ca.refresh()).toBe(true);
    expect(b.ca.bundle()).toEqual(bundle);
    expect(rootOf(await b.ca.issue({ csr: csr(), credentials: { bearerToken: token } }))).toBe(rootOf(await a.ca.issue({ csr: csr(), credentials: { bearerToken: token } })));
    expect(await b.ca.refresh()).toBe(false);
  });

  it('a replica still on the retired root keeps it trusted until its leaf expires, then follows the new root', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const shared = new SharedState();
    const a = await open({ store: shared.view(), clock: () => now });
    const b = await open({ store: shared.view(), clock: () => now });
    const { token } = a.ca.mintToken({ namespace: 'shop', serviceAccount: 'web', ttlSeconds: 86_400 });
    const oldRoot = rootOf(await a.ca.issue({ csr: csr(), credentials: { bearerToken: token } }));
    await a.ca.rotate();
    // b has not refreshed: it signs with the old root, for longer than the old root's persisted horizon.
    now = new Date(now.getTime() + 3 * 3600_000);
    const late = await b.ca.issue({ csr: csr(), credentials: { bearerToken: token }, validitySeconds: 7200 });
    expect(rootOf(late)).toBe(oldRoot);
    const stored = shared.state!.roots.find((r) => r.certPem === oldRoot)!;
    expect(Date.parse(stored.retireAt!)).toBeGreaterThanOrEqual(late.notAfter.getTime());
    // Its write lost to a's rotation, so it took over the stored state: the new root signs now.
    expect(rootOf(await b.ca.issue({ csr: csr(), credentials: { bearerToken: token } }))).not.toBe(oldRoot);
    // Neither replica prunes the old root while that leaf lives.
    now = new Date(late.notAfter.getTime() - 60_000);
    expect(await a.ca.prune()).toBe(false);
    expect(a.ca.bundle().roots).toContain(oldRoot);
  });

  it('gives up after a bounded number of lost writes, with the CONFLICT', async () => {
    const shared = new SharedState();
    const view = shared.view();
    // Reads the shared state, and every write loses to another replica.
    const busy: CaStateStore = { load: view.load, save: async () => Promise.reject(new AviaryError('CONFLICT', 'CA_STATE_WRITE_FAILED', 'always behind')) };
    const { ca } = await open({ store: busy }).catch(() => ({ ca: undefined }));
    expect(ca).toBeUndefined();
    const a = await open({ store: view });
    const b = await open({ store: busy, sink: new RecordingSink() }).catch(() => undefined);
    expect(b).toBeDefined();
    expect(await codeOf(b!.ca.rotate())).toBe('CA_STATE_WRITE_FAILED');
    expect(b!.ca.bundle()).toEqual(a.ca.bundle());
  });
});
