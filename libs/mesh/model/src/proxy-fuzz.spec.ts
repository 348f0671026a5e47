/**
 * Property-based fuzzing of xDS node parsing: any id, cluster, metadata and locality either
 * parse into a proxy whose namespace is a DNS label and whose identity is in the trust domain,
 * or are refused with a typed XDS_NODE_INVALID error, never another exception. The run count is
 * recorded in docs/security.md.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { parseNode, type NodeLike } from './proxy';

const fuzzRuns = { nodes: 5000 } as const;

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const id = fc.oneof(
  fc.string({ maxLength: 1100 }),
  fc.tuple(fc.constantFrom('sidecar', 'router', 'proxyless', ''), fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })).map((p) => p.join('~')),
  fc.tuple(fc.constantFrom('sidecar', 'router'), fc.ipV4(), label, label).map(([t, ip, pod, ns]) => `${t}~${ip}~${pod}.${ns}~${ns}.svc.cluster.local`),
);
const metadataValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), label, fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string({ maxLength: 10 }), fc.integer())));
const metadata = fc.record(
  { GENERATOR: fc.oneof(fc.constant('grpc'), metadataValue), NAMESPACE: metadataValue, SERVICE_ACCOUNT: metadataValue, LABELS: metadataValue },
  { requiredKeys: [] },
);
const node: fc.Arbitrary<NodeLike> = fc.record(
  { id, cluster: fc.string({ maxLength: 50 }), metadata, locality: fc.record({ region: fc.string({ maxLength: 10 }), zone: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }), user_agent_name: fc.string({ maxLength: 20 }) },
  { requiredKeys: [] },
) as fc.Arbitrary<NodeLike>;

describe('parseNode, fuzzed', () => {
  it('parses a sane proxy or refuses with XDS_NODE_INVALID', () => {
    fc.assert(
      fc.property(node, (n) => {
        try {
          const p = parseNode(n, { trustDomain: 'example.org' });
          expect(p.namespace).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
          expect(p.namespace.length).toBeLessThanOrEqual(63);
          expect(p.id.length).toBeLessThanOrEqual(1024);
          expect(Object.values(p.labels).every((v) => typeof v === 'string')).toBe(true);
          if (p.identity !== undefined) expect(p.identity.startsWith(`spiffe://example.org/ns/${p.namespace}/sa/`)).toBe(true);
        } catch (err) {
          expect(isAviaryError(err) && err.code === 'XDS_NODE_INVALID', String(err)).toBe(true);
        }
      }),
      { numRuns: fuzzRuns.nodes },
    );
  });
});
