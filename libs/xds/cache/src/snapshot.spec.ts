import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isAviaryError } from '@aviary/errors';
import { TypeUrl, canonicalResource } from '@aviary/xds-protos';
import { ResourceEncoder, Snapshot, resourceNameOf, versioned } from './index';

import { cla, edsCluster, hcm, mesh } from './testing/mesh';

describe('Snapshot', () => {
  it('is consistent when every RDS and EDS name referenced exists', () => {
    expect(Snapshot.build(mesh()).consistent()).toEqual({ ok: true, problems: [] });
  });

  it('reports each dangling reference: api_listener and filter chain RDS names, EDS service names', () => {
    const s = Snapshot.build(mesh({ [TypeUrl.RouteConfiguration]: [{ name: 'r-chain' }], [TypeUrl.ClusterLoadAssignment]: [cla('a')] }));
    expect(s.consistent()).toEqual({
      ok: false,
      problems: ['listener "api" references missing route configuration "r-api"', 'cluster "b" references missing cluster load assignment "b-svc"'],
    });
    const noChainRoute = Snapshot.build(mesh({ [TypeUrl.RouteConfiguration]: [{ name: 'r-api' }] }));
    expect(noChainRoute.consistent().problems).toEqual(['listener "inbound" references missing route configuration "r-chain"']);
  });

  it('versions types deterministically and changes only the types whose resources changed', () => {
    const a = Snapshot.build(mesh(), { encoder: new ResourceEncoder() });
    const b = Snapshot.build(mesh(), { encoder: new ResourceEncoder() });
    for (const t of Object.values(TypeUrl)) expect(a.version(t)).toBe(b.version(t));
    const c = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9081), cla('b-svc')] }));
    expect(c.changedTypes(a)).toEqual([TypeUrl.ClusterLoadAssignment]);
    expect(c.get(TypeUrl.ClusterLoadAssignment, 'b-svc')!.version).toBe(a.get(TypeUrl.ClusterLoadAssignment, 'b-svc')!.version);
    expect(c.get(TypeUrl.ClusterLoadAssignment, 'a')!.version).not.toBe(a.get(TypeUrl.ClusterLoadAssignment, 'a')!.version);
  });

  it('recognises an equal fresh object by content and re-encodes a changed one, also when it changes back', () => {
    const encoder = new ResourceEncoder();
    const enc = (port: number) => Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [cla('a', port)] }, { encoder }).get(TypeUrl.ClusterLoadAssignment, 'a')!;
    const first = enc(9080);
    expect(enc(9080)).toBe(first);
    const moved = enc(9081);
    expect(moved.version).not.toBe(first.version);
    expect(encoder.encoded).toBe(2);
    const back = enc(9080);
    expect(back.version).toBe(first.version);
    expect(Buffer.from(back.bytes).equals(Buffer.from(first.bytes))).toBe(true);
    expect(enc(9080)).toBe(back);
  });

  it('takes no JSON digest of a name seen for the first time, and digests its object when another comes under the name', () => {
    const encoder = new ResourceEncoder();
    for (let i = 0; i < 50; i++) encoder.encode(TypeUrl.ClusterLoadAssignment, cla(`c${i}`));
    expect(encoder.digested).toBe(0);
    const first = encoder.encode(TypeUrl.ClusterLoadAssignment, cla('c7'));
    expect(encoder.digested).toBe(2);
    expect(encoder.encoded).toBe(50);
    expect(first).toBe(encoder.encode(TypeUrl.ClusterLoadAssignment, cla('c7')));
    expect(encoder.digested).toBe(3);
  });

  it('mostly stops taking JSON digests under a name whose content keeps changing, and takes them again once one finds its match', () => {
    const encoder = new ResourceEncoder();
    const enc = (port: number) => encoder.encode(TypeUrl.ClusterLoadAssignment, cla('a', port));
    // A different assignment each time (as each sidecar's own virtualInbound): digests stop after 8 misses.
    for (let port = 1; port <= 200; port++) {
      const r = enc(port);
      expect(r.version).toBe(Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [cla('a', port)] }, { encoder: new ResourceEncoder() }).get(TypeUrl.ClusterLoadAssignment, 'a')!.version);
    }
    expect(encoder.digested).toBeLessThan(30);
    expect(encoder.encoded).toBe(200);
    // Equal content from now on: equal bytes reuse the entry even undigested, and the next probe's pair hits.
    const last = enc(200);
    expect(encoder.encoded).toBe(200);
    for (let i = 0; i < 64; i++) expect(enc(200)).toBe(last);
    const digested = encoder.digested;
    for (let i = 0; i < 10; i++) enc(200);
    expect(encoder.digested).toBe(digested + 10);
  });

  it('never reuses an entry for different content, whichever encodes are digested', () => {
    const check = (ports: readonly number[]) => {
      const encoder = new ResourceEncoder();
      for (const port of ports) {
        const r = encoder.encode(TypeUrl.ClusterLoadAssignment, cla('a', port));
        expect(Buffer.from(r.bytes).toString('hex'), `port ${port}`).toBe(Buffer.from(new ResourceEncoder().encode(TypeUrl.ClusterLoadAssignment, cla('a', port)).bytes).toString('hex'));
      }
    };
    // 8 digested misses (the last digest is port 8's), 31 undigested encodes of port 9, then a probe of port 8.
    check([1, 2, 3, 4, 5, 6, 7, 8, ...Array<number>(31).fill(9), 8, 9, 8]);
    // Random sequences: a few recurring contents among many one-off ones.
    fc.assert(fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 10, max: 400 })), { minLength: 1, maxLength: 300 }), check), { numRuns: 50 });
  });

  it('encodes each resource once and shares the bytes across snapshots (identity, content, version)', () => {
    const encoder = new ResourceEncoder();
    const shared = cla('a');
    const s1 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [shared] }, { encoder });
    const s2 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [shared] }, { encoder });
    const s3 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [cla('a')] }, { encoder });
    expect(encoder.encoded).toBe(1);
    const bytes = s1.get(TypeUrl.ClusterLoadAssignment, 'a')!.bytes;
    expect(s2.get(TypeUrl.ClusterLoadAssignment, 'a')!.bytes).toBe(bytes);
    expect(s3.get(TypeUrl.ClusterLoadAssignment, 'a')!.bytes).toBe(bytes);

    const v1 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [versioned(cla('b'), 'rev-7')] }, { encoder });
    const v2 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [versioned(cla('b'), 'rev-7')] }, { encoder });
    expect(encoder.encoded).toBe(2);
    expect(v2.get(TypeUrl.ClusterLoadAssignment, 'b')).toBe(v1.get(TypeUrl.ClusterLoadAssignment, 'b'));
    expect(v1.get(TypeUrl.ClusterLoadAssignment, 'b')!.version).toBe('rev-7');
  });

  it('keeps the canonical form of listeners and clusters, and reads that of the other types from the bytes', () => {
    const input = mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 0), cla('b-svc')] });
    const snapshot = Snapshot.build(input, { encoder: new ResourceEncoder() });
    for (const typeUrl of [TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.RouteConfiguration, TypeUrl.ClusterLoadAssignment]) {
      for (const r of snapshot.resources(typeUrl).values()) {
        expect(r.resource).toEqual(canonicalResource(typeUrl, input[typeUrl]!.find((x) => resourceNameOf(typeUrl, x) === r.name)!));
        expect(Object.keys(r)).toEqual(['typeUrl', 'name', 'version', 'resource', 'bytes', 'entry']);
      }
    }
    const listener = snapshot.get(TypeUrl.Listener, 'api')!;
    expect(listener.resource).toBe(listener.resource);
    const assignment = snapshot.get(TypeUrl.ClusterLoadAssignment, 'a')!;
    expect(assignment.resource).not.toBe(assignment.resource);
    expect(Object.isFrozen(assignment)).toBe(true);
  });

  it('refuses duplicate names and invalid resources', () => {
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return isAviaryError(e) ? e.code : String(e);
      }
      return 'no error';
    };
    expect(codeOf(() => Snapshot.build({ [TypeUrl.Cluster]: [{ name: 'a' }, { name: 'a' }] }))).toBe('XDS_SNAPSHOT_DUPLICATE');
    expect(codeOf(() => Snapshot.build({ [TypeUrl.Cluster]: [{ name: 'a', lbPolicy: 'RANDOM' }] }))).toBe('XDS_RESOURCE_INVALID');
    expect(codeOf(() => Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [{ endpoints: [] }] }))).toBe('XDS_RESOURCE_INVALID');
  });
});

describe('Snapshot.replace', () => {
  it('replaces named resources, bumps only the changed types and equals a fresh build', () => {
    const encoder = new ResourceEncoder();
    const base = Snapshot.build(mesh(), { encoder });
    const patched = base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090)], [TypeUrl.Cluster]: [edsCluster('a')] }, { encoder });
    expect(patched.changedTypes(base)).toEqual([TypeUrl.ClusterLoadAssignment]);
    const fresh = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090), cla('b-svc')] }), { encoder });
    for (const t of Object.values(TypeUrl)) {
      expect(patched.version(t)).toBe(fresh.version(t));
      expect([...patched.resources(t).keys()]).toEqual([...fresh.resources(t).keys()]);
    }
    expect(patched.resources(TypeUrl.Listener)).toBe(base.resources(TypeUrl.Listener));
    expect(() => base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('nope')] })).toThrow(/has none/);
  });

  it('gives snapshots that replace the same entries in one shared map one new map, and others their own', () => {
    const encoder = new ResourceEncoder();
    const input = mesh();
    const one = Snapshot.build(input, { encoder });
    const two = Snapshot.build(input, { encoder });
    expect(two.resources(TypeUrl.ClusterLoadAssignment)).toBe(one.resources(TypeUrl.ClusterLoadAssignment));
    // Fresh but equal objects: the encoder gives both the same encoded resource, so the same map.
    const patchedOne = one.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090)] }, { encoder });
    const patchedTwo = two.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090)] }, { encoder });
    expect(patchedTwo.resources(TypeUrl.ClusterLoadAssignment)).toBe(patchedOne.resources(TypeUrl.ClusterLoadAssignment));
    expect(patchedTwo.version(TypeUrl.ClusterLoadAssignment)).toBe(patchedOne.version(TypeUrl.ClusterLoadAssignment));
    const elsewhere = two.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9091)] }, { encoder });
    expect(elsewhere.resources(TypeUrl.ClusterLoadAssignment)).not.toBe(patchedOne.resources(TypeUrl.ClusterLoadAssignment));
    expect(elsewhere.get(TypeUrl.ClusterLoadAssignment, 'a')!.resource).toEqual(cla('a', 9091));
    expect(patchedOne.get(TypeUrl.ClusterLoadAssignment, 'a')!.resource).toEqual(cla('a', 9090));
    // The shared map and the one made again are what a fresh build holds, in the same order.
    const fresh = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090), cla('b-svc')] }), { encoder });
    for (const patched of [patchedTwo, two.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090)] }, { encoder })]) {
      expect([...patched.resources(TypeUrl.ClusterLoadAssignment).values()]).toEqual([...fresh.resources(TypeUrl.ClusterLoadAssignment).values()]);
      expect(patched.version(TypeUrl.ClusterLoadAssignment)).toBe(fresh.version(TypeUrl.ClusterLoadAssignment));
    }
    expect([...one.resources(TypeUrl.ClusterLoadAssignment).values()].map((r) => r.resource)).toEqual([cla('a'), cla('b-svc')]);
  });

  it('replaces a name given twice once, with the last of them', () => {
    const encoder = new ResourceEncoder();
    const base = Snapshot.build(mesh(), { encoder });
    const twice = base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1), cla('a', 2)] }, { encoder });
    expect(twice.get(TypeUrl.ClusterLoadAssignment, 'a')!.resource).toEqual(cla('a', 2));
    expect(twice.version(TypeUrl.ClusterLoadAssignment)).toBe(Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 2), cla('b-svc')] }), { encoder }).version(TypeUrl.ClusterLoadAssignment));
    const back = base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1), cla('a')] }, { encoder });
    expect(back.resources(TypeUrl.ClusterLoadAssignment)).toBe(base.resources(TypeUrl.ClusterLoadAssignment));
    expect(back.version(TypeUrl.ClusterLoadAssignment)).toBe(base.version(TypeUrl.ClusterLoadAssignment));
  });

  it('keeps the type digest incremental: any sequence of replaces equals a fresh build, including a change back', () => {
    const encoder = new ResourceEncoder();
    let snapshot = Snapshot.build(mesh(), { encoder });
    const ports: Record<string, number> = { a: 9080, 'b-svc': 9080 };
    const steps: [string, number][] = [['a', 1], ['b-svc', 2], ['a', 3], ['a', 9080], ['b-svc', 9080], ['b-svc', 7]];
    const seen = new Map<string, string>();
    for (const [name, port] of steps) {
      snapshot = snapshot.replace({ [TypeUrl.ClusterLoadAssignment]: [cla(name, port)] }, { encoder });
      ports[name] = port;
      const fresh = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: Object.entries(ports).map(([n, p]) => cla(n, p)) }), { encoder });
      expect(snapshot.version(TypeUrl.ClusterLoadAssignment)).toBe(fresh.version(TypeUrl.ClusterLoadAssignment));
      expect(snapshot.version(TypeUrl.ClusterLoadAssignment)).toMatch(/^[0-9a-f]{16}$/);
      const key = JSON.stringify(ports);
      if (seen.has(key)) expect(snapshot.version(TypeUrl.ClusterLoadAssignment)).toBe(seen.get(key));
      else expect([...seen.values()]).not.toContain(snapshot.version(TypeUrl.ClusterLoadAssignment));
      seen.set(key, snapshot.version(TypeUrl.ClusterLoadAssignment));
    }
    // Back to the starting content: back to the starting version.
    expect(seen.get(JSON.stringify({ a: 9080, 'b-svc': 9080 }))).toBe(Snapshot.build(mesh(), { encoder }).version(TypeUrl.ClusterLoadAssignment));
  });

  it('replaces a build-time version by the digest once the content changes', () => {
    const encoder = new ResourceEncoder();
    const base = Snapshot.build(mesh(), { encoder, versions: { [TypeUrl.ClusterLoadAssignment]: 'rev-1' } });
    expect(base.version(TypeUrl.ClusterLoadAssignment)).toBe('rev-1');
    expect(base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a')] }, { encoder }).version(TypeUrl.ClusterLoadAssignment)).toBe('rev-1');
    const patched = base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1)] }, { encoder });
    const fresh = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1), cla('b-svc')] }), { encoder });
    expect(patched.version(TypeUrl.ClusterLoadAssignment)).toBe(fresh.version(TypeUrl.ClusterLoadAssignment));
  });

  it('checks only the replaced listeners and clusters of a consistent snapshot, and finds a dangling one', () => {
    const encoder = new ResourceEncoder();
    const base = Snapshot.build(mesh(), { encoder });
    expect(base.consistent().ok).toBe(true);
    const eds = base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1)] }, { encoder });
    expect(eds.consistent()).toEqual({ ok: true, problems: [] });
    const dangling = base.replace({ [TypeUrl.Cluster]: [edsCluster('a', 'gone')], [TypeUrl.Listener]: [{ name: 'api', api_listener: { api_listener: hcm('r-gone') } }] }, { encoder });
    expect(dangling.consistent()).toEqual({
      ok: false,
      problems: ['listener "api" references missing route configuration "r-gone"', 'cluster "a" references missing cluster load assignment "gone"'],
    });
    // The same answer as a full check of the same resources.
    const full = Snapshot.build(
      mesh({
        [TypeUrl.Cluster]: [edsCluster('a', 'gone'), edsCluster('b', 'b-svc'), { name: 'static', type: 'STATIC' }],
        [TypeUrl.Listener]: [
          { name: 'api', api_listener: { api_listener: hcm('r-gone') } },
          { name: 'inbound', filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm('r-chain') }] }] },
        ],
      }),
      { encoder },
    );
    expect(full.consistent()).toEqual(dangling.consistent());
    // An inconsistent snapshot stays so after an EDS-only replace (checked in full, not assumed).
    const broken = Snapshot.build(mesh({ [TypeUrl.RouteConfiguration]: [{ name: 'r-chain' }] }), { encoder });
    expect(broken.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1)] }, { encoder }).consistent().problems).toEqual(['listener "api" references missing route configuration "r-api"']);
  });
});
