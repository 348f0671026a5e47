import type { V1EndpointSlice, V1Node, V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { StoredObject } from '@aviary/mesh-api';
import { networkingVersions, type ServiceEntrySpec, type WorkloadEntrySpec } from '@aviary/mesh-api';
import { portProtocol } from '@aviary/mesh-model';

/**
 * Kubernetes Services, EndpointSlices, Pods and Nodes → the registry objects pilot's mesh model
 * already understands (ServiceEntry + WorkloadEntry), so the model needs no Kubernetes notion.
 * Pure: same input, same output.
 *
 * - A Service → ServiceEntry `k8s-service.<svc>` in its namespace: host
 *   `<svc>.<ns>.svc.<domainSuffix>`, the ClusterIPs as addresses, ports (protocol from
 *   appProtocol, else the port name's prefix, else TCP), resolution STATIC, location
 *   MESH_INTERNAL, workloadSelector = the Service's selector, exportTo from the
 *   `networking.istio.io/exportTo` annotation. ExternalName Services are left out.
 * - A ready endpoint (conditions.ready true or unset) backed by a Pod → WorkloadEntry
 *   `k8s-pod.<pod>` in the Pod's namespace: address, ports by Service port name (from every
 *   slice that lists the Pod; the first slice in name order wins a clash), the Pod's labels and
 *   service account, locality `<region>/<zone>` from its Node's topology labels (else the
 *   slice's zone). The ServiceEntry selects it by labels, as Istio selects WorkloadEntries.
 * - A ready endpoint of a selector-less Service (hand-made slices, as for an external database or
 *   the Gateway API conformance suite's `manual-endpointslices`), or one without a Pod → an inline
 *   `endpoints[]` entry of that Service's ServiceEntry (one per address, ports merged over its
 *   slices), with the Pod's labels and service account when a slice names one: the Service
 *   selects no WorkloadEntry, so its slices are its only source of endpoints.
 */

export const SERVICE_ENTRY_PREFIX = 'k8s-service.';
export const WORKLOAD_ENTRY_PREFIX = 'k8s-pod.';
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const REGION_LABEL = 'topology.kubernetes.io/region';
const ZONE_LABEL = 'topology.kubernetes.io/zone';
const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

export interface RegistryInput {
  readonly services: readonly V1Service[];
  readonly endpointSlices: readonly V1EndpointSlice[];
  /** Keyed `<namespace>/<name>`. */
  readonly pods: ReadonlyMap<string, V1Pod>;
  /** Keyed by node name. */
  readonly nodes: ReadonlyMap<string, V1Node>;
}

const appProtocols: Readonly<Record<string, string>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
  https: 'HTTPS',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  tcp: 'TCP',
  tls: 'TLS',
  mongo: 'MONGO',
  redis: 'REDIS',
  mysql: 'MYSQL',
};

/** Port name used in the model: the Service port's name, or `port-<number>` for the single unnamed port. */
export function meshPortName(port: Pick<V1ServicePort, 'name' | 'port'>): string {
  return port.name !== undefined && port.name !== '' ? port.name : `port-${port.port}`;
}

/** Istio's rule: appProtocol, else the port name's prefix (`grpc-echo` → GRPC), else TCP; UDP stays UDP. */
export function servicePortProtocol(port: Pick<V1ServicePort, 'name' | 'appProtocol' | 'protocol'>): string {
  if (port.protocol === 'UDP') return 'UDP';
  const app = port.appProtocol?.toLowerCase();
  if (app !== undefined && app !== '' && appProtocols[app] !== undefined) return appProtocols[app];
  return portProtocol(undefined, port.name ?? '');
}

export function serviceHost(name: string, namespace: string, domainSuffix: string): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

function localityOf(node: V1Node | undefined, zone: string | undefined): string | undefined {
  const labels = node?.metadata?.labels ?? {};
  const region = labels[REGION_LABEL] ?? '';
  const z = labels[ZONE_LABEL] ?? zone ?? '';
  if (region === '' && z === '') return undefined;
  return `${region}/${z}`;
}

function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

const apiVersion = networkingVersions[0];

/** Whether a Service selects its Pods (else its EndpointSlices are written by hand, or by another controller). */
function hasSelector(svc: V1Service): boolean {
  return svc.spec?.selector !== undefined && Object.keys(svc.spec.selector).length > 0;
}

/** Every ServiceEntry and WorkloadEntry the cluster's Services and ready endpoints imply, sorted by kind/namespace/name. */
export function translateRegistry(input: RegistryInput, domainSuffix: string): StoredObject[] {
  const services = new Map<string, V1Service>();
  for (const s of input.services) {
    if (s.spec?.type === 'ExternalName' || s.metadata?.name === undefined) continue;
    services.set(serviceKey(s.metadata.namespace ?? 'default', s.metadata.name), s);
  }

  /** Per Service key, per address. */
  const inline = new Map<string, Map<string, { ports: Record<string, number>; spec: WorkloadEntrySpec }>>();
  const workloads = new Map<string, { namespace: string; pod: string; ports: Record<string, number>; spec: WorkloadEntrySpec }>();
  // Name order decides a port-name clash; the namespace breaks ties, so the input's order never matters.
  const slices = [...input.endpointSlices].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '') || (a.metadata?.namespace ?? '').localeCompare(b.metadata?.namespace ?? ''));
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const namespace = slice.metadata?.namespace ?? 'default';
    const svcName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    const svc = svcName === undefined ? undefined : services.get(serviceKey(namespace, svcName));
    if (svc === undefined) continue;
    const svcPorts = svc.spec?.ports ?? [];
    // Slice ports carry the Service port's name ('' for a single unnamed port) and the resolved target port.
    const ports: Record<string, number> = {};
    for (const p of slice.ports ?? []) {
      const sp = svcPorts.find((x) => (x.name ?? '') === (p.name ?? ''));
      if (sp === undefined || p.port === undefined) continue;
      ports[meshPortName(sp)] = p.port;
    }
    for (const ep of slice.endpoints ?? []) {
      if (ep.conditions?.ready === false) continue;
      const address = ep.addresses[0];
      if (address === undefined) continue;
      const pod = ep.targetRef?.kind === 'Pod' && ep.targetRef.name !== undefined ? input.pods.get(serviceKey(ep.targetRef.namespace ?? namespace, ep.targetRef.name)) : undefined;
      const nodeName = pod?.spec?.nodeName ?? ep.nodeName;
      const locality = localityOf(nodeName === undefined ? undefined : input.nodes.get(nodeName), ep.zone);
      if (pod === undefined || !hasSelector(svc)) {
        const byAddress = inline.get(serviceKey(namespace, svcName!)) ?? new Map<string, { ports: Record<string, number>; spec: WorkloadEntrySpec }>();
        inline.set(serviceKey(namespace, svcName!), byAddress);
        const existing = byAddress.get(address);
        if (existing !== undefined) {
          for (const [name, port] of Object.entries(ports)) existing.ports[name] ??= port;
          continue;
        }
        const epPorts = { ...ports };
        const sa = pod?.spec?.serviceAccountName;
        const labels = pod?.metadata?.labels;
        byAddress.set(address, {
          ports: epPorts,
          spec: {
            address,
            ports: epPorts,
            ...(labels === undefined || Object.keys(labels).length === 0 ? {} : { labels: { ...labels } }),
            ...(sa === undefined || sa === '' ? {} : { serviceAccount: sa }),
            ...(locality === undefined ? {} : { locality }),
          },
        });
        continue;
      }
      const podNs = pod.metadata?.namespace ?? namespace;
      const podName = pod.metadata?.name ?? '';
      const key = serviceKey(podNs, podName);
      const existing = workloads.get(key);
      if (existing !== undefined) {
        for (const [name, port] of Object.entries(ports)) existing.ports[name] ??= port;
        continue;
      }
      const sa = pod.spec?.serviceAccountName;
      const podPorts = { ...ports };
      workloads.set(key, {
        namespace: podNs,
        pod: podName,
        ports: podPorts,
        spec: {
          address,
          ports: podPorts,
          labels: { ...(pod.metadata?.labels ?? {}) },
          ...(sa === undefined || sa === '' ? {} : { serviceAccount: sa }),
          ...(locality === undefined ? {} : { locality }),
        },
      });
    }
  }

  const out: StoredObject[] = [];
  for (const [key, svc] of services) {
    const namespace = svc.metadata!.namespace ?? 'default';
    const name = svc.metadata!.name!;
    const clusterIps = (svc.spec?.clusterIPs ?? (svc.spec?.clusterIP === undefined ? [] : [svc.spec.clusterIP])).filter((ip) => ip !== '' && ip !== 'None');
    const ports = (svc.spec?.ports ?? [])
      .filter((p) => p.protocol !== 'SCTP')
      .map((p) => ({
        number: p.port,
        name: meshPortName(p),
        protocol: servicePortProtocol(p),
        ...(typeof p.targetPort === 'number' ? { targetPort: p.targetPort } : {}),
      }))
      .sort((a, b) => a.number - b.number);
    const exportTo = svc.metadata?.annotations?.[EXPORT_TO_ANNOTATION]
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const selector = svc.spec?.selector;
    const endpoints = [...(inline.get(key)?.values() ?? [])].map((e) => e.spec);
    const spec: ServiceEntrySpec = {
      hosts: [serviceHost(name, namespace, domainSuffix)],
      ...(clusterIps.length === 0 ? {} : { addresses: clusterIps }),
      ports,
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ...(endpoints.length === 0 ? {} : { endpoints: endpoints.sort((a, b) => (a.address ?? '').localeCompare(b.address ?? '')) }),
      ...(hasSelector(svc) ? { workloadSelector: { labels: { ...selector } } } : {}),
      ...(exportTo === undefined || exportTo.length === 0 ? {} : { exportTo }),
    };
    out.push({
      apiVersion,
      kind: 'ServiceEntry',
      metadata: { name: `${SERVICE_ENTRY_PREFIX}${name}`, namespace },
      spec,
    });
  }
  for (const w of workloads.values()) {
    out.push({ apiVersion, kind: 'WorkloadEntry', metadata: { name: `${WORKLOAD_ENTRY_PREFIX}${w.pod}`, namespace: w.namespace }, spec: w.spec });
  }
  const k = (o: StoredObject): string => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
  return out.sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
}
