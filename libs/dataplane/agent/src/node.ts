/**
 * The Envoy node of an agent, Istio-style: id `<type>~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`
 * and the metadata keys pilot reads (libs/xds-cache parseNode): NAMESPACE, SERVICE_ACCOUNT,
 * LABELS, INTERCEPTION_MODE, WORKLOAD_NAME, INSTANCE_IPS, NAME, CLUSTER_ID.
 */
import { AviaryError } from '@aviary/errors';

export type AgentMode = 'router' | 'sidecar';
/** Where the agent runs: `local` (no iptables: INTERCEPTION_MODE NONE) or `kubernetes`. */
export type Platform = 'local' | 'kubernetes';

export interface NodeConfig {
  readonly mode: AgentMode;
  readonly platform: Platform;
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** `k=v,k=v` as in AVIARY_LABELS, or the labels themselves (e.g. read from the downward API file). */
  readonly labels: string | Readonly<Record<string, string>>;
  readonly podIp: string;
  readonly trustDomain: string;
}

export interface AgentNode {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly locality: { readonly region: string; readonly zone: string };
  readonly spiffeId: string;
  /** The workload name (label `app`, else the instance name): telemetry's workload. */
  readonly workload: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * A downward API `metadata.labels` file (Istio's /etc/istio/pod/labels): one `key="value"` line
 * per label, the value a Go-quoted string. Throws AGENT_LABELS_INVALID naming the line.
 */
export function parseDownwardApiLabels(text: string, source = 'labels file'): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^([^=\s]+)="((?:[^"\\]|\\.)*)"$/.exec(line);
    let value: unknown;
    try {
      value = m === null ? undefined : JSON.parse(`"${m[2] as string}"`);
    } catch {
      value = undefined;
    }
    if (m === null || typeof value !== 'string') {
      throw new AviaryError('INVALID_ARGUMENT', 'AGENT_LABELS_INVALID', `${source}: line ${i + 1} is not key="value": ${JSON.stringify(line.slice(0, 200))}`);
    }
    out[m[1] as string] = value;
  });
  return out;
}

export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p.length > 0)) {
    const eq = pair.indexOf('=');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/**
 * Istio's INTERCEPTION_MODE: local mode has no iptables, so every proxy says NONE and pilot
 * binds its listeners to the workload's own address; in Kubernetes the init container installs
 * REDIRECT rules (gateways are never captured but Istio reports REDIRECT for them too).
 */
export function interceptionModeOf(platform: Platform): 'NONE' | 'REDIRECT' {
  return platform === 'local' ? 'NONE' : 'REDIRECT';
}

export function agentNode(c: NodeConfig): AgentNode {
  const labels = typeof c.labels === 'string' ? parseLabels(c.labels) : { ...c.labels };
  const workload = labels.app ?? c.name;
  return {
    id: `${c.mode}~${c.podIp}~${c.name}.${c.namespace}~${c.namespace}.svc.cluster.local`,
    cluster: `${workload}.${c.namespace}`,
    metadata: {
      NAMESPACE: c.namespace,
      SERVICE_ACCOUNT: c.serviceAccount,
      LABELS: labels,
      INTERCEPTION_MODE: interceptionModeOf(c.platform),
      WORKLOAD_NAME: workload,
      NAME: c.name,
      INSTANCE_IPS: c.podIp,
      CLUSTER_ID: 'Kubernetes',
    },
    locality: { region: 'local', zone: 'local' },
    spiffeId: `spiffe://${c.trustDomain}/ns/${c.namespace}/sa/${c.serviceAccount}`,
    workload,
    labels,
  };
}
