import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kubeObject } from './kube';
import { analyzeManifests } from './manifests';
import type { AnalyzeOptions } from './model';

/** Findings as [code, primary resource, path, message] for YAML a user would write. */
function findings(text: string, options: AnalyzeOptions = {}): [string, string, string, string][] {
  const docs = parseAllDocuments(text).map((d) => d.toJS() as unknown);
  return analyzeManifests(docs, options).map((f) => [f.code, f.resources[0] ?? '', f.path ?? '', f.message]);
}

const service = (name: string, ports: string, extra = '') => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: bookinfo${extra} }
spec:
  selector: { app: ${name} }
  ports: ${ports}
`;

describe('IST0118 / IST0150 port names', () => {
  it('flags names that are not <protocol>[-suffix] and accepts the conventions Istio accepts', () => {
    const ports = `
  - { name: web, port: 8080, targetPort: 9080, protocol: TCP }
  - { port: 8000, protocol: TCP }
  - { name: http-web, port: 9080, protocol: TCP }
  - { name: GRPC-Web-x, port: 9081, protocol: TCP }
  - { name: metrics, port: 9090, appProtocol: http, protocol: TCP }
  - { name: h2c, port: 9091, appProtocol: kubernetes.io/h2c, protocol: TCP }
  - { name: dns, port: 5353, protocol: UDP }
  - { name: db, port: 3306, protocol: TCP }`;
    expect(findings(service('reviews', ports))).toEqual([
      ['IST0118', 'Service/bookinfo/reviews', 'spec.ports[0].name', "Port name web (port: 8080, targetPort: 9080) doesn't follow the naming convention of Istio port."],
      ['IST0118', 'Service/bookinfo/reviews', 'spec.ports[1].name', "Port name  (port: 8000, targetPort: 0) doesn't follow the naming convention of Istio port."],
    ]);
  });

  it('reports IST0150 instead on ExternalName Services, where `tcp` is flagged too', () => {
    const text = `
apiVersion: v1
kind: Service
metadata: { name: legacy, namespace: bookinfo }
spec:
  type: ExternalName
  externalName: db.example.com
  ports: [{ name: tcp, port: 5432 }, { name: postgres, port: 5433 }, { name: http, port: 80 }]
`;
    const message = 'Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly';
    expect(findings(text)).toEqual([
      ['IST0150', 'Service/bookinfo/legacy', 'spec.ports[0].name', message],
      ['IST0150', 'Service/bookinfo/legacy', 'spec.ports[1].name', message],
    ]);
  });

  it("skips the control plane's Services and gateway-controller-managed ones", () => {
    const ports = '[{ name: webhook, port: 443 }]';
    expect(findings(service('istiod', ports, ', labels: { istio: pilot }') + '---' + service('gw', ports, ', labels: { gateway.istio.io/managed: istio.io-gateway-controller }'))).toEqual([]);
  });
});

describe('IST0134 ServiceEntry addresses', () => {
  const se = (name: string, spec: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: bookinfo }
spec:
  hosts: [${name}.example.com]
  resolution: DNS
${spec}
`;
  it('flags each TCP or protocol-less port of a ServiceEntry without addresses', () => {
    const text = [
      se('db', '  ports: [{ number: 5432, name: pg, protocol: TCP }, { number: 5433, name: other }, { number: 80, name: http, protocol: HTTP }]'),
      se('mq', '  addresses: [10.1.2.3]\n  ports: [{ number: 5672, name: amqp, protocol: TCP }]'),
      se('web', '  ports: [{ number: 443, name: https, protocol: HTTPS }]'),
    ].join('---');
    expect(findings(text).map(([code, r, path]) => [code, r, path])).toEqual([
      ['IST0134', 'ServiceEntry/bookinfo/db', 'spec.ports[0]'],
      ['IST0134', 'ServiceEntry/bookinfo/db', 'spec.ports[1]'],
    ]);
  });

  it('counts addresses the control plane allocated (status.addresses)', () => {
    const text = se('db', '  ports: [{ number: 5432, name: pg, protocol: TCP }]') + 'status:\n  addresses: [{ value: 240.240.0.1 }]\n';
    expect(findings(text)).toEqual([]);
  });
});

describe('IST0107 / IST0108 / IST0135 annotations', () => {
  it("checks Istio's annotations on core kinds against istio.io/api's table", () => {
    const text = `
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: bookinfo
  annotations:
    sidecar.istio.io/nonexistent: "true"
    sidecar.istio.io/proxyCPU: 100m
    networking.istio.io/exportTo: "."
    example.com/owner: team-a
    sidecar.istio.io/status: "{}"
spec:
  ports: [{ name: http, port: 9080 }]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews
  namespace: bookinfo
  annotations: { sidecar.istio.io/inject: "false" }
spec: {}
---
apiVersion: v1
kind: Pod
metadata:
  name: ratings
  namespace: bookinfo
  labels: { sidecar.istio.io/inject: "false" }
  annotations: { sidecar.istio.io/inject: "false", sidecar.istio.io/statsInclusionPrefixes: cluster }
spec:
  containers: [{ name: ratings, image: ratings:1 }]
`;
    expect(findings(text)).toEqual([
      [
        'IST0107',
        'Deployment/bookinfo/reviews',
        'metadata.annotations["sidecar.istio.io/inject"]',
        'Misplaced annotation: sidecar.istio.io/inject can only be applied to Pod',
      ],
      ['IST0107', 'Service/bookinfo/reviews', 'metadata.annotations["sidecar.istio.io/proxyCPU"]', 'Misplaced annotation: sidecar.istio.io/proxyCPU can only be applied to Pod'],
      ['IST0108', 'Service/bookinfo/reviews', 'metadata.annotations["sidecar.istio.io/nonexistent"]', 'Unknown annotation: sidecar.istio.io/nonexistent'],
      [
        'IST0135',
        'Deployment/bookinfo/reviews',
        'metadata.annotations["sidecar.istio.io/inject"]',
        'Annotation "sidecar.istio.io/inject" has been deprecated in favor of the "sidecar.istio.io/inject" label and may not work in future Istio versions.',
      ],
      [
        'IST0135',
        'Pod/bookinfo/ratings',
        'metadata.annotations["sidecar.istio.io/statsInclusionPrefixes"]',
        'Annotation "sidecar.istio.io/statsInclusionPrefixes" has been deprecated and may not work in future Istio versions.',
      ],
    ]);
  });
});

describe('workload checks (complete inventory only)', () => {
  const gatewayPodAndService = `
apiVersion: v1
kind: Pod
metadata: { name: ingress-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec:
  containers: [{ name: istio-proxy, image: proxyv2:1 }]
---
apiVersion: v1
kind: Service
metadata: { name: ingress, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  ports: [{ name: http2, port: 80, targetPort: 8080, protocol: TCP }, { name: http-status, port: 15021 }]
`;
  const gateway = (name: string, selector: string, ports: number[]) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: bookinfo }
spec:
  selector: { ${selector} }
  servers:
${ports.map((p) => `  - { port: { number: ${p}, name: http-${p}, protocol: HTTP }, hosts: ["${name}.example.com"] }`).join('\n')}
`;

  it('IST0101 (selector) and IST0162: gateway workloads and the ports their Service exposes', () => {
    const text = `${gatewayPodAndService}---${gateway('public', 'istio: ingressgateway', [80, 8080, 15021, 9000])}---${gateway('internal', 'istio: internal', [80])}`;
    expect(findings(text, { complete: true })).toEqual([
      ['IST0101', 'Gateway/bookinfo/internal', 'spec.selector', 'Referenced selector not found: "istio=internal"'],
      [
        'IST0162',
        'Gateway/bookinfo/public',
        'spec.servers[2].port.number',
        'The gateway is listening on a target port (port 15021) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.',
      ],
      [
        'IST0162',
        'Gateway/bookinfo/public',
        'spec.servers[3].port.number',
        'The gateway is listening on a target port (port 9000) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.',
      ],
    ]);
    expect(findings(text)).toEqual([]);
  });

  it('IST0101 (selector): a Sidecar selecting no Pod in its namespace', () => {
    const text = `
apiVersion: v1
kind: Pod
metadata: { name: reviews-1, namespace: other, labels: { app: reviews } }
spec: {}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: reviews, namespace: bookinfo }
spec:
  workloadSelector: { labels: { app: reviews } }
  egress: [{ hosts: ["./*"] }]
`;
    expect(findings(text, { complete: true })).toEqual([['IST0101', 'Sidecar/bookinfo/reviews', 'spec.workloadSelector', 'Referenced selector not found: "app=reviews"']]);
  });

  it('IST0127 and IST0101 (namespace): AuthorizationPolicies against injected Pods and Namespaces', () => {
    const ap = (name: string, namespace: string, selector: string, sources: string) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${selector}
  rules: [{ from: [{ source: { namespaces: [${sources}] } }] }]
`;
    const text = [
      `
apiVersion: v1
kind: Namespace
metadata: { name: bookinfo, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Namespace
metadata: { name: legacy }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-1, namespace: bookinfo, labels: { app: reviews } }
spec: {}
---
apiVersion: v1
kind: Pod
metadata: { name: old-1, namespace: legacy, labels: { app: old } }
spec: {}
`,
      ap('reviews', 'bookinfo', '  selector: { matchLabels: { app: reviews } }', 'bookinfo, "legacy*", payments'),
      ap('ratings', 'bookinfo', '  selector: { matchLabels: { app: ratings } }', '"*"'),
      ap('old', 'legacy', '  selector: { matchLabels: { app: old } }', 'legacy'),
      ap('all', 'legacy', '', 'legacy'),
      ap('mesh', 'istio-system', '  selector: { matchLabels: { app: reviews } }', 'bookinfo'),
    ].join('---');
    expect(findings(text, { complete: true }).map(([code, r, path, message]) => [code, r, path, message])).toEqual([
      ['IST0101', 'AuthorizationPolicy/bookinfo/reviews', 'spec.rules[0].from[0].source.namespaces[2]', 'Referenced namespace not found: "payments"'],
      ['IST0127', 'AuthorizationPolicy/bookinfo/ratings', 'spec.selector', 'No matching workloads for this resource with the following labels: app=ratings'],
      ['IST0127', 'AuthorizationPolicy/legacy/all', 'spec.selector', 'No matching workloads for this resource with the following labels: '],
      ['IST0127', 'AuthorizationPolicy/legacy/old', 'spec.selector', 'No matching workloads for this resource with the following labels: app=old'],
    ]);
  });

  it('IST0101 (host): with a complete inventory, hosts must come from a Service or a ServiceEntry', () => {
    const text = `${service('reviews', '[{ name: http, port: 9080 }]')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: bookinfo }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews }, weight: 90 }, { destination: { host: ratings }, weight: 10 }]
    mirror: { host: shadow }
`;
    expect(findings(text, { complete: true }).map(([code, r, , message]) => [code, r, message])).toEqual([
      ['IST0101', 'VirtualService/bookinfo/reviews', 'Referenced mirror host not found: "shadow"'],
      ['IST0101', 'VirtualService/bookinfo/reviews', 'Referenced host not found: "ratings"'],
    ]);
    expect(findings(text)).toEqual([]);
  });
});

describe('IST0106 and core-kind checks', () => {
  it("ignores every document in Kubernetes' own namespaces, as Istio does", () => {
    const text = `${service('dns', '[{ name: weird, port: 53 }]').replace('namespace: bookinfo', 'namespace: kube-system')}---${service('web', '[{ name: web, port: 80 }]')}`;
    expect(findings(text).map(([code, r]) => [code, r])).toEqual([['IST0118', 'Service/bookinfo/web']]);
  });

  it('reports invalid mesh documents as IST0106 and leaves them out of the analysis', () => {
    const text = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec:
  host: reviews
  subsets: [{ name: "", labels: { version: v1 } }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: not-ours, namespace: bookinfo }
data: {}
`;
    const list = findings(text);
    expect(list.map(([code, r]) => [code, r])).toEqual([['IST0106', 'DestinationRule/bookinfo/reviews']]);
    expect(list[0]![3]).toMatch(/^Schema validation error: spec\.subsets\[0\]\.name: /);
  });

  it('bounds and checks the fields of core kinds that the analyzers read', () => {
    const bad = kubeObject({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'Bad_Name', namespace: 'bookinfo', labels: { app: 1 } },
      spec: { type: 7, ports: [{ port: 70000, targetPort: true, protocol: 'x'.repeat(300) }] },
    });
    expect(bad.errors.map((e) => e.path)).toEqual(['metadata.name', 'metadata.labels["app"]', 'spec.type', 'spec.ports[0].port', 'spec.ports[0].targetPort', 'spec.ports[0].protocol']);
    // Kubernetes' own value rules are the API server's: an HTTP "protocol" or an unnamed container is taken as written, as by Istio.
    const loose = kubeObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ image: 'proxyv2' }] } });
    expect(loose.errors).toEqual([]);
    expect(kubeObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80, protocol: 'HTTP' }] } }).errors).toEqual([]);
    expect(kubeObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', namespace: 'b' } }).errors.map((e) => e.path)).toEqual(['metadata.namespace']);
    expect(kubeObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: new Array(1001).fill({ name: 'c' }) } }).errors.map((e) => e.path)).toEqual(['spec.containers']);
    const ok = kubeObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bookinfo' } });
    expect(ok.object?.metadata).toEqual({ name: 'bookinfo', namespace: '' });
  });
});
