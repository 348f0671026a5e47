import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { agentNode, parseDownwardApiLabels } from './node';

// What the kubelet writes for a downwardAPI `metadata.labels` item (/etc/istio/pod/labels):
// one key="value" line per label, sorted, values Go-quoted.
const LABELS_FILE = [
  'app="hello"',
  'pod-template-hash="7d9f5c"',
  'security.istio.io/tlsMode="istio"',
  'service.istio.io/canonical-name="hello"',
  'version="v2"',
].join('\n');

describe('the workload labels from the downward API file', () => {
  it('parses every label, prefixed keys and escapes included', () => {
    expect(parseDownwardApiLabels(LABELS_FILE)).toEqual({
      app: 'hello',
      'pod-template-hash': '7d9f5c',
      'security.istio.io/tlsMode': 'istio',
      'service.istio.io/canonical-name': 'hello',
      version: 'v2',
    });
    expect(parseDownwardApiLabels('a="x\\"y"\n\n')).toEqual({ a: 'x"y' });
    expect(parseDownwardApiLabels('')).toEqual({});
  });

  it('refuses a malformed line, naming the file and line', () => {
    let message = '';
    try {
      parseDownwardApiLabels('app="hello"\nversion=v2\n', '/etc/istio/pod/labels');
    } catch (err) {
      if (!isAviaryError(err)) throw err;
      expect(err.code).toBe('AGENT_LABELS_INVALID');
      message = err.message;
    }
    expect(message).toBe('/etc/istio/pod/labels: line 2 is not key="value": "version=v2"');
  });

  it('become the node metadata LABELS pilot selects the proxy by, and the telemetry workload', () => {
    const node = agentNode({ mode: 'sidecar', platform: 'kubernetes', name: 'hello-v2-7d9f5c-abcde', namespace: 'mesh', serviceAccount: 'hello', labels: parseDownwardApiLabels(LABELS_FILE), podIp: '10.244.0.7', trustDomain: 'cluster.local' });
    expect(node.metadata['LABELS']).toMatchObject({ app: 'hello', version: 'v2' });
    expect(node.id).toBe('sidecar~10.244.0.7~hello-v2-7d9f5c-abcde.mesh~mesh.svc.cluster.local');
    expect(node.spiffeId).toBe('spiffe://cluster.local/ns/mesh/sa/hello');
    expect(node.workload).toBe('hello');
  });
});
