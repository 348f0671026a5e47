import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { buildSnapshot, parseNode, type MeshSnapshot, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';

/** Test fixtures: the Bookinfo mesh and one proxy of each kind. */

export function loadObjects(file = 'bookinfo.yaml'): ModelObject[] {
  const text = readFileSync(fileURLToPath(new URL(`./${file}`, import.meta.url)), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as ModelObject);
}

export function bookinfo(objects: ModelObject[] = loadObjects()): MeshSnapshot {
  return buildSnapshot(objects, { trustDomain: 'cluster.local' });
}

export const proxies: Readonly<Record<string, ProxyInfo>> = {
  'sidecar-productpage': parseNode({
    id: 'sidecar~10.0.0.10~productpage-v1-7d9f.default~default.svc.cluster.local',
    metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-productpage' },
  }),
  'sidecar-reviews': parseNode({
    id: 'sidecar~10.0.1.1~reviews-v1-5c8b.default~default.svc.cluster.local',
    metadata: { NAMESPACE: 'default', LABELS: { app: 'reviews', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-reviews' },
  }),
  router: parseNode({
    id: 'router~10.0.9.1~istio-ingressgateway-6f7c.istio-system~istio-system.svc.cluster.local',
    metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } },
  }),
  proxyless: parseNode({ id: 'grpc-client-1', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' }, locality: { region: 'us-east', zone: 'us-east-1a' } }),
};
