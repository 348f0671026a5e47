import { AviaryError } from '@aviary/errors';
import type { XdsPeer } from '@aviary/xds-cache';
import type { WireNode } from '../wire';

/** Tests only: a connected client as `testPeer` reads it. */
export interface TestPeer extends XdsPeer {
  readonly namespace: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * Tests only: a node parser without mesh semantics (the server's own tests must not depend on
 * Istio's node format, which @aviary/mesh-model parses): the id as sent, `kind` and
 * `namespace` from the metadata keys KIND (default `sidecar`) and NAMESPACE (default
 * `default`). A node without an id is refused as the real parsers refuse it.
 */
export function testPeer(node: WireNode): TestPeer {
  const id = node.id ?? '';
  if (id === '') throw new AviaryError('INVALID_ARGUMENT', 'XDS_NODE_INVALID', 'the first request of a stream must carry node.id', { nodeId: id });
  const metadata = node.metadata ?? {};
  const text = (key: string, fallback: string): string => (typeof metadata[key] === 'string' && metadata[key] !== '' ? (metadata[key] as string) : fallback);
  return Object.freeze({ id, kind: text('KIND', 'sidecar'), namespace: text('NAMESPACE', 'default'), metadata });
}

/** The kinds `testPeer` is used with, for `XdsServerOptions.kinds`. */
export const testKinds: readonly string[] = ['sidecar', 'router', 'proxyless'];
