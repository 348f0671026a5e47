import { generateKeyPairSync } from 'node:crypto';
import { JOIN_TOKEN_ISSUER, JoinTokenValidator, mintJoinToken, type Identity, type TokenValidator } from '@aviary/ca';
import type { ChangeEvent, ConfigStore, Watch } from '@aviary/config-store';
import { describe, expect, it } from 'vitest';
import { withChangeSources, type ChangeSource } from './registry';
import { joinTokensOr } from './token-review';

describe('joinTokensOr', () => {
  it('sends join tokens to the join validator and every other token to the other one', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const seen: string[] = [];
    const other: TokenValidator = {
      validate: async (t): Promise<Identity> => {
        seen.push(t);
        return { namespace: 'from', serviceAccount: 'review', expiresAt: new Date(0) };
      },
    };
    const v = joinTokensOr(new JoinTokenValidator([key]), other, JOIN_TOKEN_ISSUER);
    const join = mintJoinToken(key, { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600 });
    expect(await v.validate(join.token)).toMatchObject({ namespace: 'shop', serviceAccount: 'cart' });
    const sa = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"iss":"https://kubernetes.default.svc"}').toString('base64url')}.c2ln`;
    expect(await v.validate(sa)).toMatchObject({ namespace: 'from' });
    expect(await v.validate('garbage')).toMatchObject({ namespace: 'from' });
    expect(seen).toEqual([sa, 'garbage']);
  });
});

/** A change source that replays fixed events (the registry's shape), initialized when told. */
function source(events: ChangeEvent[]): ChangeSource & { ready: () => void; stopped: boolean } {
  let ready: () => void = () => undefined;
  const initialized = new Promise<void>((r) => (ready = r));
  const s = {
    stopped: false,
    ready: () => ready(),
    watch: async (listener: (e: ChangeEvent) => void): Promise<Watch> => {
      for (const e of events) listener(e);
      return { initialized, stop: async () => void (s.stopped = true) };
    },
  };
  return s;
}

describe('withChangeSources', () => {
  it('merges the events of every source, is initialized when all are, and stops them all', async () => {
    const ev = (name: string): ChangeEvent => ({ op: 'created', ref: { kind: 'ServiceEntry', namespace: 'ns', name }, revision: 1 });
    const crds = source([ev('a')]);
    const registry = source([ev('k8s-service.b')]);
    const store = { ...crds, list: async () => [], get: async () => undefined } as unknown as ConfigStore;
    const merged = withChangeSources(store, [registry]);
    const got: string[] = [];
    const watch = await merged.watch((e) => got.push(e.ref.name));
    expect(got).toEqual(['a', 'k8s-service.b']);
    let initialized = false;
    void watch.initialized.then(() => (initialized = true));
    crds.ready();
    await new Promise((r) => setImmediate(r));
    expect(initialized).toBe(false);
    registry.ready();
    await watch.initialized;
    await watch.stop();
    expect([crds.stopped, registry.stopped]).toEqual([true, true]);
    expect(await merged.list()).toEqual([]);
  });
});
