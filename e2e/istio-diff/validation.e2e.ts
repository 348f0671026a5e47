import { beforeAll, describe, expect, it } from 'vitest';
import { root } from '../support/mesh';
import { describeResult, ensureIstioctl, runDiff, type DiffResult } from './diff';

// Aviary's validator against Istio's own (`istioctl validate`, built from istio.io/istio by
// tools/istio/ensure-istiod.sh) over the corpus in ./corpus: every accept/reject disagreement must
// be explained, either by a field Aviary refuses as not supported yet or by ./allow-list.yaml.
// istioctl validates files offline and starts no server, so no lock is needed.
let diff: DiffResult;

beforeAll(async () => {
  const bin = await ensureIstioctl(root); // a cold build takes minutes
  diff = await runDiff(bin, root);
}, 1_200_000);

describe('Aviary validation agrees with istioctl validate', () => {
  it('has no unexplained disagreement', () => {
    const unexplained = diff.results.filter((r) => r.outcome === 'unexplained');
    expect(unexplained.map(describeResult).join('\n\n')).toBe('');
  });

  it('has no stale allow-list entry', () => {
    expect(diff.staleAllowEntries.map((e) => e.document)).toEqual([]);
  });

  it('covers the nine Istio kinds, about half of the documents rejected by Istio', () => {
    const kinds = new Set(diff.results.map((r) => r.doc.id.split('/')[0]));
    expect([...kinds].sort()).toEqual(['AuthorizationPolicy', 'DestinationRule', 'Gateway', 'PeerAuthentication', 'RequestAuthentication', 'ServiceEntry', 'Sidecar', 'VirtualService', 'WorkloadEntry']);
    expect(diff.results.length).toBeGreaterThanOrEqual(150);
    const rejected = diff.results.filter((r) => !r.istio.accepted).length;
    expect(rejected / diff.results.length).toBeGreaterThan(0.35);
    expect(rejected / diff.results.length).toBeLessThan(0.65);
  });

  it('names corpus documents for what Istio says of them: bad-* rejected, all others accepted', () => {
    const misnamed = diff.results.filter((r) => r.doc.id.split('/')[1]!.startsWith('bad-') === r.istio.accepted);
    expect(misnamed.map(describeResult).join('\n\n')).toBe('');
  });
});
