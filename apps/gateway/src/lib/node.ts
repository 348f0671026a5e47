import type { ProxyNode, XdsNode } from '@aviary/proxy';

export interface NodeConfig {
  readonly mode: 'router' | 'sidecar';
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: string;
  readonly podIp: string;
  readonly trustDomain: string;
}

export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p.length > 0)) {
    const eq = pair.indexOf('=');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** The xDS node (Istio's id format `<type>~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`) and the telemetry identity. */
export function nodeOf(c: NodeConfig): { xds: XdsNode; proxy: ProxyNode; spiffeId: string } {
  const labels = parseLabels(c.labels);
  const spiffeId = `spiffe://${c.trustDomain}/ns/${c.namespace}/sa/${c.serviceAccount}`;
  const id = `${c.mode}~${c.podIp}~${c.name}.${c.namespace}~${c.namespace}.svc.cluster.local`;
  const workload = labels.app ?? c.name;
  return {
    spiffeId,
    xds: {
      id,
      cluster: `${workload}.${c.namespace}`,
      metadata: { NAMESPACE: c.namespace, LABELS: labels, SERVICE_ACCOUNT: c.serviceAccount, WORKLOAD_NAME: workload, NAME: c.name, INSTANCE_IPS: c.podIp, CLUSTER_ID: 'Kubernetes' },
      locality: { region: 'local', zone: 'local' },
    },
    proxy: { id, mode: c.mode, workload, namespace: c.namespace, ...(labels.app === undefined ? {} : { app: labels.app }), ...(labels.version === undefined ? {} : { version: labels.version }), principal: spiffeId },
  };
}
