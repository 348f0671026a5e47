import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { withStoredKind } from '@aviary/mesh-api';
import { buildSnapshot, parseNode, type MeshSnapshot, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';

/** Test fixtures: the Bookinfo mesh and one proxy of each kind; the local-mode mesh and its proxies. */

export function loadObjects(file = 'bookinfo.yaml'): ModelObject[] {
  const text = readFileSync(fileURLToPath(new URL(`./${file}`, import.meta.url)), 'utf8');
  // As the config API stores them: the Gateway API's `kind: Gateway` becomes KubernetesGateway.
  return parseAllDocuments(text).map((d) => withStoredKind(d.toJS() as ModelObject));
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

/** The local-mode mesh (local.yaml): no iptables, each workload on its own loopback IP. */
export function localMesh(): MeshSnapshot {
  return buildSnapshot(loadObjects('local.yaml'), { trustDomain: 'cluster.local' });
}

/** Proxies as the agent starts them in local mode: INTERCEPTION_MODE NONE, INSTANCE_IPS set. */
export const localProxies: Readonly<Record<string, ProxyInfo>> = {
  'sidecar-hello-v1': parseNode({
    id: 'sidecar~127.0.0.11~hello-v1.demo~demo.svc.cluster.local',
    metadata: { NAMESPACE: 'demo', LABELS: { app: 'hello', version: 'v1' }, SERVICE_ACCOUNT: 'hello', INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.11' },
  }),
  'sidecar-greeter': parseNode({
    id: 'sidecar~127.0.0.13~greeter-1.demo~demo.svc.cluster.local',
    metadata: { NAMESPACE: 'demo', LABELS: { app: 'greeter' }, SERVICE_ACCOUNT: 'greeter', INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.13' },
  }),
  router: parseNode({
    id: 'router~127.0.0.1~ingressgateway.istio-system~istio-system.svc.cluster.local',
    metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' }, INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.1' },
  }),
};

/** Every translated feature Bookinfo does not use (features.yaml). */
export function featuresMesh(): MeshSnapshot {
  return buildSnapshot(loadObjects('features.yaml'), { trustDomain: 'cluster.local' });
}

export const featureProxies: Readonly<Record<string, ProxyInfo>> = {
  'sidecar-shop': parseNode({
    id: 'sidecar~10.1.0.1~shop-a.shop~shop.svc.cluster.local',
    metadata: { NAMESPACE: 'shop', LABELS: { app: 'shop', version: 'a' }, SERVICE_ACCOUNT: 'shop' },
  }),
  router: parseNode({
    id: 'router~10.1.9.1~gw.shop~shop.svc.cluster.local',
    metadata: { NAMESPACE: 'shop', LABELS: { istio: 'ingressgateway' } },
  }),
};

/** The Gateway API front end (gateway-api.yaml). */
export function gatewayApiMesh(): MeshSnapshot {
  return buildSnapshot(loadObjects('gateway-api.yaml'), { trustDomain: 'cluster.local' });
}

/** TCPRoute and TLSRoute (gateway-api-l4.yaml). */
export function gatewayApiL4Mesh(): MeshSnapshot {
  return buildSnapshot(loadObjects('gateway-api-l4.yaml'), { trustDomain: 'cluster.local' });
}

export const gatewayApiL4Proxies: Readonly<Record<string, ProxyInfo>> = {
  router: parseNode({
    id: 'router~10.3.9.1~edge-5c8d.web~web.svc.cluster.local',
    metadata: { NAMESPACE: 'web', LABELS: { 'gateway.networking.k8s.io/gateway-name': 'edge' } },
  }),
};

export const gatewayApiProxies: Readonly<Record<string, ProxyInfo>> = {
  router: parseNode({
    id: 'router~10.2.9.1~web-gw-7d9f.web~web.svc.cluster.local',
    metadata: { NAMESPACE: 'web', LABELS: { 'gateway.networking.k8s.io/gateway-name': 'web-gw' } },
  }),
  'sidecar-greeter': parseNode({
    id: 'sidecar~10.2.0.3~greeter-1.web~web.svc.cluster.local',
    metadata: { NAMESPACE: 'web', LABELS: { app: 'greeter' }, SERVICE_ACCOUNT: 'greeter' },
  }),
};
