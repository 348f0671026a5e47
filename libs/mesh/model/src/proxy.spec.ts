import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { lenientNodeParser, parseNode, proxyKinds } from './index';

describe('parseNode', () => {
  it('parses an Istio sidecar id and metadata', () => {
    const p = parseNode({
      id: 'sidecar~10.0.0.1~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local',
      cluster: 'reviews.bookinfo',
      metadata: { NAMESPACE: 'bookinfo', LABELS: { app: 'reviews', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-reviews' },
      locality: { region: 'r', zone: 'z' },
    });
    expect(p).toMatchObject({
      kind: 'sidecar',
      ip: '10.0.0.1',
      podName: 'reviews-v1-abc',
      namespace: 'bookinfo',
      dnsDomain: 'bookinfo.svc.cluster.local',
      labels: { app: 'reviews', version: 'v1' },
      serviceAccount: 'bookinfo-reviews',
      identity: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews',
      cluster: 'reviews.bookinfo',
      locality: { region: 'r', zone: 'z' },
    });
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('keeps only the metadata keys Aviary reads, not the rest of what an Istio agent sends', () => {
    const p = parseNode({
      id: 'sidecar~10.0.0.1~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local',
      metadata: {
        NAMESPACE: 'bookinfo',
        LABELS: { app: 'reviews' },
        INSTANCE_IPS: '10.0.0.1',
        INTERCEPTION_MODE: 'REDIRECT',
        ISTIO_VERSION: '1.31.0',
        ANNOTATIONS: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(4096) },
        PROXY_CONFIG: { concurrency: 2 },
      },
    });
    expect(p.metadata).toEqual({ NAMESPACE: 'bookinfo', LABELS: { app: 'reviews' }, INSTANCE_IPS: '10.0.0.1', INTERCEPTION_MODE: 'REDIRECT' });
  });

  it('parses a router id, taking the namespace from the id when metadata has none', () => {
    const p = parseNode({ id: 'router~10.0.0.9~ingress-7f.istio-system~istio-system.svc.cluster.local' }, { trustDomain: 'example.org' });
    expect(p).toMatchObject({ kind: 'router', namespace: 'istio-system', labels: {} });
    expect(p.identity).toBeUndefined();
  });

  it('GENERATOR=grpc marks a proxyless client, with an Istio id or any id', () => {
    expect(parseNode({ id: 'sidecar~10.0.0.2~c.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc' } }).kind).toBe('proxyless');
    const p = parseNode({ id: 'client-1', metadata: { GENERATOR: 'grpc', NAMESPACE: 'team-a', SERVICE_ACCOUNT: 'sa' } }, { trustDomain: 'example.org' });
    expect(p).toMatchObject({ kind: 'proxyless', namespace: 'team-a', identity: 'spiffe://example.org/ns/team-a/sa/sa' });
    expect(p.ip).toBeUndefined();
  });

  it.each([
    [{}, 'node.id'],
    [{ id: 'client-1' }, 'GENERATOR'],
    [{ id: 'gateway~1.2.3.4~a.b~b.svc.cluster.local' }, 'sidecar or router'],
    [{ id: 'sidecar~~a.b~b.svc.cluster.local' }, 'empty IP'],
    [{ id: 'sidecar~1.2.3.4~a.b~b.svc', metadata: { LABELS: { a: 1 } } }, 'LABELS.a'],
    [{ id: 'sidecar~1.2.3.4~a.B_x~x', metadata: {} }, 'DNS-1123'],
  ])('rejects %j', (node, text) => {
    try {
      parseNode(node);
      expect.unreachable();
    } catch (e) {
      expect(isAviaryError(e) && e.code).toBe('XDS_NODE_INVALID');
      expect((e as Error).message).toContain(text);
    }
  });
});

describe('lenientNodeParser', () => {
  const parse = lenientNodeParser('example.org');

  it('reads Istio ids as parseNode does and a plain id as a proxyless client', () => {
    const istio = { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: { SERVICE_ACCOUNT: 'sa' } };
    expect(parse(istio)).toEqual(parseNode(istio, { trustDomain: 'example.org' }));
    expect(parse({ id: 'client-1', metadata: { NAMESPACE: 'team-a', SERVICE_ACCOUNT: 'sa' } })).toMatchObject({
      id: 'client-1',
      kind: 'proxyless',
      namespace: 'team-a',
      identity: 'spiffe://example.org/ns/team-a/sa/sa',
    });
    expect(proxyKinds).toEqual(['sidecar', 'router', 'proxyless']);
  });

  it('still refuses an empty id and a malformed Istio id', () => {
    for (const node of [{}, { id: 'gateway~1.2.3.4~a.b~b.svc.cluster.local' }]) {
      try {
        parse(node);
        expect.unreachable();
      } catch (e) {
        expect(isAviaryError(e) && e.code).toBe('XDS_NODE_INVALID');
      }
    }
  });
});
