import { describe, expect, it } from 'vitest';
import { GATEWAY_NAME_LABEL, type GatewayDeployment } from '@aviary/mesh-model';
import { addressOf, deploymentName, gatewayObjects, parsePodTemplate } from './gateway-deployer';
import { parseOverlays } from './gateway-overlay';

const template = parsePodTemplate(
  `
metadata: { labels: { istio: ingressgateway }, annotations: { sidecar.istio.io/inject: "false" } }
spec:
  serviceAccountName: chart-gateway
  containers:
  - name: gateway
    image: docker.io/aviary/gateway:0.1.0
    env: [{ name: AVIARY_MODE, value: router }, { name: AVIARY_LABELS, value: istio=ingressgateway }]
    ports: [{ name: http-monitoring, containerPort: 15020 }, { name: http, containerPort: 8080 }]
`,
  'pod-template.yaml',
);
const gw: GatewayDeployment = {
  namespace: 'infra',
  name: 'same-namespace',
  className: 'aviary',
  ports: [
    { name: 'http-80', port: 80, targetPort: 8080, protocol: 'HTTP' },
    { name: 'https-443', port: 443, targetPort: 8443, protocol: 'HTTPS' },
  ],
};

describe('gatewayObjects', () => {
  // Plain JSON objects: indexed as the API server would read them.
  type Json = { kind: string; metadata: Record<string, unknown> & { ownerReferences?: unknown[] }; spec: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  const [sa, deployment, service] = gatewayObjects(gw, 'uid-1', template, 'secret') as unknown as [Json, Json, Json];

  it('names everything <gateway>-<class>, in the Gateway namespace, owned by the Gateway', () => {
    expect(deploymentName(gw)).toBe('same-namespace-aviary');
    for (const o of [sa, deployment, service]) {
      expect(o.metadata).toMatchObject({ name: 'same-namespace-aviary', namespace: 'infra' });
      expect(o.metadata.ownerReferences).toEqual([{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'same-namespace', uid: 'uid-1', controller: true }]);
    }
    expect([sa.kind, deployment.kind, service.kind]).toEqual(['ServiceAccount', 'Deployment', 'Service']);
  });

  it('the router runs with the gateway-name label, the listener ports at their bind ports, its own service account', () => {
    const pod = deployment.spec.template;
    expect(pod.metadata.labels[GATEWAY_NAME_LABEL]).toBe('same-namespace');
    expect(pod.metadata.labels['istio']).toBeUndefined(); // the chart ingress's Service must not select it
    expect(deployment.spec.selector).toEqual({ matchLabels: { [GATEWAY_NAME_LABEL]: 'same-namespace' } });
    expect(pod.spec.serviceAccountName).toBe('same-namespace-aviary');
    const router = pod.spec.containers[0];
    expect(router.env).toEqual([
      { name: 'AVIARY_MODE', value: 'router' },
      { name: 'AVIARY_LABELS', value: `${GATEWAY_NAME_LABEL}=same-namespace` },
      { name: 'AVIARY_NATS_PASSWORD', value: 'secret' },
    ]);
    expect(router.ports.map((p: { containerPort: number }) => p.containerPort)).toEqual([15020, 8080, 8443]);
  });

  it('the Service maps each listener port to the port the router binds it at', () => {
    expect(service.spec).toEqual({
      type: 'ClusterIP',
      selector: { [GATEWAY_NAME_LABEL]: 'same-namespace' },
      ports: [
        { name: 'http-80', port: 80, targetPort: 8080, protocol: 'TCP' },
        { name: 'https-443', port: 443, targetPort: 8443, protocol: 'TCP' },
      ],
    });
  });

  it('puts spec.infrastructure labels and annotations on every object and the pods; pilot\'s own labels win', () => {
    const withInfra: GatewayDeployment = { ...gw, infrastructure: { labels: { team: 'web', [GATEWAY_NAME_LABEL]: 'spoofed' }, annotations: { 'example.com/owner': 'web-team' } } };
    const objects = gatewayObjects(withInfra, 'uid-1', template, '') as unknown as Json[];
    for (const o of objects) {
      expect(o.metadata['labels']).toMatchObject({ team: 'web', [GATEWAY_NAME_LABEL]: 'same-namespace' });
      expect(o.metadata['annotations']).toEqual({ 'example.com/owner': 'web-team' });
    }
    const pod = objects[1]!.spec.template;
    expect(pod.metadata.labels).toMatchObject({ team: 'web', [GATEWAY_NAME_LABEL]: 'same-namespace' });
    expect(pod.metadata.annotations).toEqual({ 'sidecar.istio.io/inject': 'false', 'example.com/owner': 'web-team' });
  });

  it('merges the parametersRef overlays: replicas, resources of the router by name, a LoadBalancer Service', () => {
    const overlays = parseOverlays(
      {
        deployment: 'spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: gateway\n        resources: { limits: { cpu: "2" } }\n        env: [{ name: AVIARY_MODE, value: router }, { name: EXTRA, value: "1" }]\n',
        service: 'metadata: { annotations: { lb.example.com/internal: "true" } }\nspec: { type: LoadBalancer, externalTrafficPolicy: Local }\n',
      },
      'ConfigMap infra/params',
    );
    const [, deployment, service] = gatewayObjects(gw, 'uid-1', template, 'secret', overlays) as unknown as [Json, Json, Json];
    expect(deployment.spec['replicas']).toBe(3);
    const [router] = deployment.spec['template'].spec.containers;
    expect(router.image).toBe('docker.io/aviary/gateway:0.1.0');
    expect(router.resources).toEqual({ limits: { cpu: '2' } });
    expect(router.env.map((e: { name: string }) => e.name)).toEqual(['AVIARY_MODE', 'AVIARY_LABELS', 'AVIARY_NATS_PASSWORD', 'EXTRA']);
    expect(deployment.spec['selector']).toEqual({ matchLabels: { [GATEWAY_NAME_LABEL]: 'same-namespace' } });
    expect(service.spec).toMatchObject({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { [GATEWAY_NAME_LABEL]: 'same-namespace' } });
    expect(service.spec['ports']).toHaveLength(2);
    expect(service.metadata['annotations']).toEqual({ 'lb.example.com/internal': 'true' });
  });

  it('reports a LoadBalancer\'s ingress once assigned, a cluster IP otherwise', () => {
    expect(addressOf({ spec: { type: 'ClusterIP', clusterIP: '10.96.0.9' } })).toEqual({ address: { type: 'IPAddress', value: '10.96.0.9' } });
    expect(addressOf({ spec: { type: 'LoadBalancer', clusterIP: '10.96.0.9' }, status: { loadBalancer: {} } })).toEqual({});
    expect(addressOf({ spec: { type: 'LoadBalancer' }, status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } })).toEqual({ address: { type: 'IPAddress', value: '203.0.113.7' } });
    expect(addressOf({ spec: { type: 'LoadBalancer' }, status: { loadBalancer: { ingress: [{ hostname: 'lb.example.com' }] } } })).toEqual({ address: { type: 'Hostname', value: 'lb.example.com' } });
    expect(addressOf({ spec: { clusterIP: 'None' } })).toEqual({});
  });

  it('refuses a template without containers', () => {
    expect(() => parsePodTemplate('spec: {}', 't.yaml')).toThrow('t.yaml: a pod template needs spec.containers');
  });
});
