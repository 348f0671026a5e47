import { describe, expect, it } from 'vitest';
import { prune } from './envoy';

describe('prune', () => {
  it('drops undefined values and empty arrays at any depth, keeps empty objects and falsy scalars', () => {
    const input = { name: 'l', a: undefined, b: [], c: { d: [{ e: undefined, f: 0 }, { g: [] }], ads: {} }, h: false, i: '' };
    expect(prune(input)).toEqual({ name: 'l', c: { d: [{ f: 0 }, {}], ads: {} }, h: false, i: '' });
    expect(Object.keys(prune(input))).toEqual(['name', 'c', 'h', 'i']);
    expect(input.a).toBeUndefined();
    expect(input.b).toEqual([]);
  });

  it('returns what has nothing to drop itself, and copies only the path to what it drops', () => {
    const clean = { name: 'c', nested: { list: [1, 2], deep: { x: 'y' } } };
    expect(prune(clean)).toBe(clean);
    const mixed = { kept: clean, changed: { keep: clean.nested, drop: undefined } };
    const out = prune(mixed);
    expect(out).not.toBe(mixed);
    expect(out.kept).toBe(clean);
    expect(out.changed).toEqual({ keep: clean.nested });
    expect(out.changed.keep).toBe(clean.nested);
    expect(mixed.changed).toHaveProperty('drop');
  });

  it('keeps an object shared by two places of a message shared', () => {
    const filters = [{ name: 'hcm', typed_config: { '@type': 'type.googleapis.com/x', stat_prefix: 'p' } }];
    const out = prune({ filter_chains: [{ name: 'mtls', filters, transport_socket: undefined }, { name: 'plaintext', filters }] });
    expect(out.filter_chains[0]!.filters).toBe(filters);
    expect(out.filter_chains[1]!.filters).toBe(filters);
    expect(out.filter_chains[0]).not.toHaveProperty('transport_socket');
  });
});
