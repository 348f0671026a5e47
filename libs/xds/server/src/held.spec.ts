import { describe, expect, it } from 'vitest';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { TypeState } from './connection';
import { HeldResources } from './held';

const cla = (name: string, address = '10.0.0.1') => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: 80 } } } }] }] });
const EDS = TypeUrl.ClusterLoadAssignment;

describe('HeldResources', () => {
  const snapshot = Snapshot.build({ [EDS]: ['a', 'b', 'c'].map((n) => cla(n)) });
  const map = snapshot.resources(EDS);

  it('holds a snapshot map as it is, and copies it before the first difference, leaving the map unchanged', () => {
    const held = new HeldResources();
    held.holdExactly(map);
    expect(held.shares(map)).toBe(true);
    expect([...held.keys()]).toEqual(['a', 'b', 'c']);
    held.set('a', map.get('a')!);
    expect(held.shares(map)).toBe(true);

    expect(held.delete('b')).toBe(true);
    held.set('d', 'v1');
    expect(held.shares(map)).toBe(false);
    expect([...held.keys()].sort()).toEqual(['a', 'c', 'd']);
    expect(held.get('d')).toBe('v1');
    expect(held.has('b')).toBe(false);
    expect([...map.keys()]).toEqual(['a', 'b', 'c']);
    expect(held.delete('b')).toBe(false);
  });

  it('shares a map again only when it holds exactly its entries', () => {
    const held = new HeldResources();
    for (const r of map.values()) held.set(r.name, r);
    held.set('stale', 'v0');
    held.shareIfEqual(map);
    expect(held.shares(map)).toBe(false);
    held.delete('stale');
    held.set('a', 'a-version-the-proxy-reported');
    held.shareIfEqual(map);
    expect(held.shares(map)).toBe(false);
    held.set('a', map.get('a')!);
    held.shareIfEqual(map);
    expect(held.shares(map)).toBe(true);
    held.clear();
    expect(held.size).toBe(0);
    expect(map.size).toBe(3);
  });
});

describe('TypeState after sending a snapshot’s resources', () => {
  it('shares the snapshot map once it holds all of it, and again after a patch sent the changed entries', () => {
    const before = Snapshot.build({ [EDS]: ['a', 'b', 'c'].map((n) => cla(n)) });
    const st = new TypeState(EDS);
    for (const n of ['a', 'b', 'c']) st.names.add(n);
    st.markSentOf(before, st.desired(before).slice(0, 2));
    expect(st.sent.shares(before.resources(EDS))).toBe(false);
    st.markSentOf(before, st.desired(before).slice(2));
    expect(st.sent.shares(before.resources(EDS))).toBe(true);

    const after = before.replace({ [EDS]: [cla('b', '10.0.0.2')] });
    const changed = st.desired(after).filter((r) => st.sentVersionOf(r.name) !== r.version);
    expect(changed.map((r) => r.name)).toEqual(['b']);
    st.markSentOf(after, changed);
    expect(st.sent.shares(after.resources(EDS))).toBe(true);
    expect(before.resources(EDS).get('b')).not.toBe(after.resources(EDS).get('b'));
    expect(st.sentVersionOf('b')).toBe(after.get(EDS, 'b')!.version);
  });

  it('moves from the map it shares to a patched one only when what was sent is all that differs', () => {
    const a = cla('a');
    const b = cla('b');
    const c = cla('c');
    const d = cla('d');
    const before = Snapshot.build({ [EDS]: [a, b, c] });
    const after = before.replace({ [EDS]: [cla('a', '10.0.0.2'), cla('b', '10.0.0.2')] });
    const held = new HeldResources();
    held.holdExactly(before.resources(EDS));
    held.holdSent(after.resources(EDS), [after.get(EDS, 'a')!]);
    expect(held.shares(after.resources(EDS))).toBe(false);
    expect(held.get('a')).toBe(after.get(EDS, 'a'));
    expect(held.get('b')).toBe(before.get(EDS, 'b'));
    held.holdSent(after.resources(EDS), [after.get(EDS, 'b')!]);
    expect(held.shares(after.resources(EDS))).toBe(true);

    const fewer = Snapshot.build({ [EDS]: [a, b] });
    const renamed = Snapshot.build({ [EDS]: [a, b, d] });
    held.holdExactly(before.resources(EDS));
    held.holdSent(renamed.resources(EDS), []);
    expect(held.shares(renamed.resources(EDS))).toBe(false);
    expect([...held.keys()]).toEqual(['a', 'b', 'c']);
    held.holdExactly(fewer.resources(EDS));
    held.holdSent(before.resources(EDS), [before.get(EDS, 'c')!]);
    expect(held.shares(before.resources(EDS))).toBe(true);
    expect([...before.resources(EDS).keys()]).toEqual(['a', 'b', 'c']);
  });

  it('keeps a subscribed name the snapshot has no resource of (or when there is no snapshot) as given', () => {
    const snapshot = Snapshot.build({ [EDS]: [cla('a')] });
    const st = new TypeState(EDS);
    expect(st.internName(snapshot, 'a')).toBe('a');
    expect(st.internName(snapshot, 'missing')).toBe('missing');
    expect(st.internName(undefined, 'a')).toBe('a');
  });
});
