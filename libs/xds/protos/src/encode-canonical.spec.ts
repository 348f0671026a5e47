import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { canonicalMessage, encodeCanonical, encodeMessageOf, lookupType, TypeUrl, typeNameOf } from './index';
import { messageArbitraries, sentTypeNames } from './testing/arbitraries';

const messageArbitrary = messageArbitraries();

describe('encodeCanonical', () => {
  it.each(sentTypeNames)('writes the bytes encodeMessageOf writes, for random canonical %s messages', (typeName) => {
    const type = lookupType(typeName);
    fc.assert(
      fc.property(messageArbitrary(type, 3), (raw) => {
        const canonical = canonicalMessage(type, raw);
        expect(Buffer.from(encodeCanonical(typeName, canonical)).equals(Buffer.from(encodeMessageOf(typeName, canonical)))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('writes a nested Any shared by several resources the same each time', () => {
    const typed = canonicalMessage(lookupType('google.protobuf.Any'), { '@type': ExtensionTypeUrl.TcpProxy, stat_prefix: 'x', cluster: 'c' });
    const listener = (name: string) => ({ name, filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: typed }] }] });
    const name = typeNameOf(TypeUrl.Listener);
    for (const l of ['a', 'b']) expect(Buffer.from(encodeCanonical(name, listener(l))).equals(Buffer.from(encodeMessageOf(name, listener(l))))).toBe(true);
  });
});
