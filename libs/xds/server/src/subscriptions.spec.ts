import { describe, expect, it } from 'vitest';
import { TypeUrl } from '@aviary/xds-protos';
import { Connection, type StreamHost } from './connection';
import { SubscribedNames } from './subscriptions';

const names = (...list: string[]): SubscribedNames => {
  const set = new SubscribedNames();
  for (const n of list) set.add(n);
  return set;
};

describe('SubscribedNames.key', () => {
  it('is the same object for the same names, and differs for different names, even when count, first and last agree', () => {
    const a = names('outbound|80||a', 'outbound|80||b', 'outbound|80||c');
    const b = names('outbound|80||a', 'outbound|80||b', 'outbound|80||c');
    expect(b.key()).toBe(a.key());
    expect(names('outbound|80||a', 'outbound|80||b').key()).not.toBe(a.key());
    expect(names('outbound|80||a', 'outbound|80||x', 'outbound|80||c').key()).not.toBe(a.key());
    expect(names('outbound|80||a', 'outbound|80||b', 'outbound|80||d').key()).not.toBe(a.key());
    expect(names().key()).toBe(new SubscribedNames().key());
  });

  it('follows every change of the names', () => {
    const a = names('x', 'y');
    const before = a.key();
    a.add('y');
    expect(a.key()).toBe(before);
    a.add('z');
    const withZ = a.key();
    expect(withZ).not.toBe(before);
    expect(withZ).toBe(names('x', 'y', 'z').key());
    a.delete('z');
    expect(a.key()).toBe(names('x', 'y').key());
    expect(a.delete('missing')).toBe(false);
    a.clear();
    expect(a.key()).toBe(names().key());
  });

  it('shares a key only with a set that holds the same names now, whatever the set that made it became', () => {
    const first = names('p', 'q');
    const key = first.key();
    first.add('r');
    const later = names('p', 'q');
    expect(later.key()).toBe(key); // the key keeps the names it was made for
    expect(first.key()).not.toBe(key);
    expect([...key.names].sort()).toEqual(['p', 'q']);
    expect([...first.key().names].sort()).toEqual(['p', 'q', 'r']);
  });

  it('never gives one key to two sets whose names differ only inside (same count, first and last)', () => {
    const a = names('p', 'x', 'q');
    const b = names('p', 'x', 'q');
    const key = a.key();
    expect(b.key()).toBe(key);
    a.delete('x');
    a.delete('q');
    a.add('y');
    a.add('q'); // now p, y, q: the digest of b's names
    expect(a.key()).not.toBe(b.key());
    expect(b.key()).toBe(key);
    expect([...a.key().names]).toEqual(['p', 'y', 'q']);
  });
});

class TestConnection extends Connection {
  protected pushChanged(): void {}
  subscribe(typeUrl: (typeof TypeUrl)[keyof typeof TypeUrl], list: string[], wildcard = false): void {
    const st = this.state(typeUrl);
    st.subscribed = true;
    st.wildcard = wildcard;
    for (const n of list) st.names.add(n);
  }
}

describe('Connection.watchesAnyOf', () => {
  const host = { now: () => 0 } as unknown as StreamHost;
  const proxy = { id: 'p', kind: 'sidecar' };
  const eds = TypeUrl.ClusterLoadAssignment;

  it('asks about each distinct set of subscribed names once per change, with the same answers as asking every stream', () => {
    const conns = Array.from({ length: 6 }, (_, i) => {
      const c = new TestConnection(host, proxy, 'sotw');
      c.subscribe(eds, i % 2 === 0 ? ['outbound|80||a', 'outbound|80||b'] : ['outbound|80||c']);
      return c;
    });
    const wild = new TestConnection(host, proxy, 'sotw');
    wild.subscribe(eds, [], true);
    const none = new TestConnection(host, proxy, 'sotw');
    const asked: string[] = [];
    const changed = (n: string): boolean => {
      asked.push(n);
      return n.endsWith('||b');
    };
    const answers = new Map();
    const shared = [...conns, wild, none].map((c) => c.watchesAnyOf([eds], changed, answers));
    expect(shared).toEqual([true, false, true, false, true, false, true, false]);
    expect(asked.sort()).toEqual(['outbound|80||a', 'outbound|80||b', 'outbound|80||c']);
    expect([...conns, wild, none].map((c) => c.watchesAnyOf([eds], changed))).toEqual(shared);
    expect(conns[0]!.watchesAnyOf([TypeUrl.Cluster], () => true, new Map())).toBe(false);
  });
});
