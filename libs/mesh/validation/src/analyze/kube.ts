import { CLUSTER_SCOPE, DEFAULT_NAMESPACE, type StoredObject } from '@aviary/mesh-api';
import type { Finding } from '../finding';

/**
 * The Kubernetes core kinds the analyzers read besides mesh kinds: Services (hosts, port names),
 * Pods (workloads for selectors), Namespaces (injection labels, AuthorizationPolicy namespaces) and
 * Deployments (annotations only). Only the fields the analyzers read are typed; the rest of a
 * manifest is kept but never looked at.
 */
export const kubeKinds = { Service: 'v1', Pod: 'v1', Namespace: 'v1', Deployment: 'apps/v1' } as const;
export type KubeKind = keyof typeof kubeKinds;

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface ServiceSpec {
  readonly type?: string;
  readonly selector?: Readonly<Record<string, string>>;
  readonly ports?: readonly ServicePort[];
}

export interface PodSpec {
  readonly containers?: readonly { readonly name?: string; readonly image?: string }[];
  readonly initContainers?: readonly { readonly name?: string; readonly image?: string }[];
}

export type KubeObject =
  | StoredObject<'Service', ServiceSpec>
  | StoredObject<'Pod', PodSpec>
  | StoredObject<'Namespace', Record<string, unknown>>
  | StoredObject<'Deployment', Record<string, unknown>>;

export function isKubeKind(kind: unknown): kind is KubeKind {
  return typeof kind === 'string' && Object.hasOwn(kubeKinds, kind);
}

/** True for a manifest of one of the core kinds (by apiVersion and kind), valid or not. */
export function isKubeManifest(doc: unknown): boolean {
  const d = doc as { apiVersion?: unknown; kind?: unknown } | null;
  return typeof d === 'object' && d !== null && isKubeKind(d.kind) && d.apiVersion === kubeKinds[d.kind];
}

// Bounds: a manifest is user input; nothing here grows without limit.
const MAX_ITEMS = 1000;
const MAX_STRING = 4096;
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Checks the fields of a core-kind manifest that the analyzers read and returns it in the stored
 * envelope (namespace defaulted; Namespaces cluster-scoped), or the problems with field paths.
 */
export function kubeObject(doc: unknown): { object: KubeObject; errors: [] } | { object?: undefined; errors: Finding[] } {
  const errors: Finding[] = [];
  const err = (path: string, message: string) => errors.push({ path, message });
  const d = doc as Record<string, unknown>;
  const kind = d['kind'] as KubeKind;
  const meta = d['metadata'];
  if (!isRecord(meta)) return { errors: [{ path: 'metadata', message: 'must be an object' }] };
  const name = meta['name'];
  const nameRule = kind === 'Service' || kind === 'Namespace' ? dns1123Label : dns1123Subdomain;
  if (typeof name !== 'string' || name.length > 253 || !nameRule.test(name)) err('metadata.name', `must be a DNS-1123 ${kind === 'Service' || kind === 'Namespace' ? 'label' : 'subdomain'}`);
  const namespace = meta['namespace'];
  if (kind === 'Namespace' && namespace !== undefined) err('metadata.namespace', 'must be absent: Namespace is cluster-scoped');
  if (namespace !== undefined && (typeof namespace !== 'string' || namespace.length > 63 || !dns1123Label.test(namespace))) err('metadata.namespace', 'must be a DNS-1123 label');
  stringMap(meta['labels'], 'metadata.labels', err);
  stringMap(meta['annotations'], 'metadata.annotations', err);
  const spec = d['spec'] ?? {};
  if (!isRecord(spec)) err('spec', 'must be an object');
  else if (kind === 'Service') checkService(spec, err);
  else if (kind === 'Pod') checkPod(spec, err);
  if (errors.length > 0) return { errors };
  const metadata = {
    name: name as string,
    namespace: kind === 'Namespace' ? CLUSTER_SCOPE : ((namespace as string | undefined) ?? DEFAULT_NAMESPACE),
    ...(meta['labels'] === undefined ? {} : { labels: meta['labels'] as Record<string, string> }),
    ...(meta['annotations'] === undefined ? {} : { annotations: meta['annotations'] as Record<string, string> }),
  };
  return { object: { apiVersion: d['apiVersion'] as string, kind, metadata, spec } as KubeObject, errors: [] };
}

// Kubernetes' own value rules (Service types, port protocols, container names) are the API
// server's to enforce; as Istio, the analyzers take what they are given and only need the types.
function checkService(spec: Record<string, unknown>, err: (path: string, message: string) => void): void {
  shortString(spec['type'], 'spec.type', err);
  stringMap(spec['selector'], 'spec.selector', err);
  const ports = spec['ports'];
  if (ports === undefined) return;
  if (!Array.isArray(ports) || ports.length > MAX_ITEMS) return err('spec.ports', `must be a list of at most ${MAX_ITEMS} ports`);
  ports.forEach((p: unknown, i) => {
    const path = `spec.ports[${i}]`;
    if (!isRecord(p)) return err(path, 'must be an object');
    if (!isPort(p['port'])) err(`${path}.port`, 'must be an integer in 1..65535');
    const tp = p['targetPort'];
    if (tp !== undefined && !isPort(tp) && !(typeof tp === 'string' && tp.length <= 253)) err(`${path}.targetPort`, 'must be a port number or a port name');
    for (const f of ['name', 'appProtocol', 'protocol'] as const) shortString(p[f], `${path}.${f}`, err);
  });
}

function checkPod(spec: Record<string, unknown>, err: (path: string, message: string) => void): void {
  for (const field of ['containers', 'initContainers'] as const) {
    const list = spec[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length > MAX_ITEMS) {
      err(`spec.${field}`, `must be a list of at most ${MAX_ITEMS} containers`);
      continue;
    }
    list.forEach((c: unknown, i) => {
      if (!isRecord(c)) return err(`spec.${field}[${i}]`, 'must be an object');
      shortString(c['name'], `spec.${field}[${i}].name`, err);
      if (c['image'] !== undefined && (typeof c['image'] !== 'string' || c['image'].length > MAX_STRING)) err(`spec.${field}[${i}].image`, 'must be a string');
    });
  }
}

function stringMap(v: unknown, path: string, err: (path: string, message: string) => void): void {
  if (v === undefined) return;
  if (!isRecord(v) || Object.keys(v).length > MAX_ITEMS) return err(path, `must be a map of at most ${MAX_ITEMS} strings`);
  for (const [k, value] of Object.entries(v)) {
    if (k.length > 317 || typeof value !== 'string' || value.length > 256 * 1024) err(`${path}[${JSON.stringify(k.slice(0, 64))}]`, 'must be a string');
  }
}

function shortString(v: unknown, path: string, err: (path: string, message: string) => void): void {
  if (v !== undefined && (typeof v !== 'string' || v.length > 253)) err(path, 'must be a string of at most 253 characters');
}

function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
