import { describe, expect, it } from 'vitest';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import type { StreamHost } from './connection';
import { XdsMetrics } from './metrics';
import { SotwConnection } from './sotw';
import type { PendingResponse } from './wire';

const cluster = (name: string): Record<string, unknown> => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } });

/** A SotW stream over a snapshot the test replaces, recording what it writes. */
function stream(names: string[]) {
  const box = { snapshot: Snapshot.build({ [TypeUrl.Cluster]: names.map(cluster) }) };
  const writes: PendingResponse[] = [];
  const host = {
    source: { resourcesFor: () => box.snapshot, onChange: () => () => undefined },
    metrics: new XdsMetrics(),
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined },
    controlPlaneId: undefined,
    now: () => 0,
    emit: () => undefined,
  } as unknown as StreamHost;
  const conn = new SotwConnection(host, { id: 'p', kind: 'proxyless' }, (r) => writes.push(r));
  const namesOf = (w: PendingResponse | undefined): string[] => ((w as { resources?: { name: string }[] } | undefined)?.resources ?? []).map((r) => r.name);
  return { box, writes, conn, namesOf, held: () => [...conn.types.get(TypeUrl.Cluster)!.sent.keys()].sort() };
}

describe('SotW CDS subscribed by name (proxyless gRPC)', () => {
  it('holds only the names asked for, and a change that alters none of them writes nothing', () => {
    const s = stream(['a', 'b', 'c']);
    s.conn.onRequest({ type_url: TypeUrl.Cluster, resource_names: ['a'] });
    expect(s.namesOf(s.writes[0])).toEqual(['a']);
    expect(s.held()).toEqual(['a']);
    const first = s.writes[0] as { nonce: string; version: string };
    s.conn.onRequest({ type_url: TypeUrl.Cluster, resource_names: ['a'], response_nonce: first.nonce, version_info: first.version });
    s.box.snapshot = Snapshot.build({ [TypeUrl.Cluster]: [cluster('a'), cluster('b'), { ...cluster('c'), connect_timeout: { seconds: 5 } }] });
    s.conn.pushChanges([TypeUrl.Cluster], undefined);
    expect(s.writes).toHaveLength(1);
    // Asking for b too sends it (it was never sent).
    s.conn.onRequest({ type_url: TypeUrl.Cluster, resource_names: ['a', 'b'], response_nonce: first.nonce, version_info: first.version });
    expect(s.namesOf(s.writes[1])).toEqual(['a', 'b']);
    expect(s.held()).toEqual(['a', 'b']);
  });

  it('holds the whole map for a wildcard subscription', () => {
    const s = stream(['a', 'b', 'c']);
    s.conn.onRequest({ type_url: TypeUrl.Cluster, resource_names: [] });
    expect(s.namesOf(s.writes[0])).toEqual(['a', 'b', 'c']);
    expect(s.held()).toEqual(['a', 'b', 'c']);
  });

  it('takes the frozen name list an ACK repeats as the same subscription, and compares any other list', () => {
    const s = stream(['a', 'b', 'c']);
    const ab = Object.freeze(['a', 'b']) as string[];
    s.conn.onRequest({ type_url: TypeUrl.Cluster, resource_names: ab });
    const ack = (list: string[]): void => {
      const last = s.writes.at(-1) as { nonce: string; version: string };
      s.conn.onRequest({ type_url: TypeUrl.Cluster, resource_names: list, response_nonce: last.nonce, version_info: last.version });
    };
    ack(ab);
    expect(s.writes).toHaveLength(1);
    expect(s.held()).toEqual(['a', 'b']);
    // Another list, then the first object again: each is a change, compared name by name.
    const c = Object.freeze(['c']) as string[];
    ack(c);
    expect(s.namesOf(s.writes.at(-1))).toEqual(['c']);
    ack(ab);
    expect(s.namesOf(s.writes.at(-1))).toEqual(['a', 'b']);
    expect(s.held()).toEqual(['a', 'b']);
    ack(Object.freeze(['b', 'c']) as string[]);
    expect(s.held()).toEqual(['b', 'c']);
    // A list that is not frozen may have changed in place: it is never taken as the same one.
    const open = ['a'];
    ack(open);
    expect(s.held()).toEqual(['a']);
    open.push('c');
    ack(open);
    expect(s.held()).toEqual(['a', 'c']);
  });
});
