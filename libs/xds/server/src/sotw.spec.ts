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
});
