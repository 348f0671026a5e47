import { AviaryError } from '@aviary/errors';

/**
 * What the control plane knows about a connected proxy, parsed from the xDS `Node` the way
 * Istio reads it: the id `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>` (type
 * `sidecar` or `router`) and the metadata keys NAMESPACE, LABELS, SERVICE_ACCOUNT and
 * GENERATOR (`grpc` marks a proxyless gRPC client). A proxyless client may use any id.
 */
export type ProxyKind = 'sidecar' | 'router' | 'proxyless';

/** Every ProxyKind (a closed metric label). */
export const proxyKinds: readonly ProxyKind[] = Object.freeze(['sidecar', 'router', 'proxyless']);

export interface ProxyLocality {
  readonly region?: string;
  readonly zone?: string;
  readonly sub_zone?: string;
}

export interface ProxyInfo {
  /** The node id exactly as sent. */
  readonly id: string;
  readonly kind: ProxyKind;
  /** First IP of the node id (Istio ids only). */
  readonly ip?: string;
  /** `pod` of `pod.ns` in the node id. */
  readonly podName?: string;
  readonly namespace: string;
  /** `ns.svc.cluster.local` of the node id. */
  readonly dnsDomain?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  /** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>` when the service account is known. */
  readonly identity?: string;
  /** `node.cluster`. */
  readonly cluster: string;
  readonly locality?: ProxyLocality;
  readonly generator?: string;
  readonly userAgent?: string;
  /**
   * The node metadata keys Aviary reads (`READ_METADATA`), as sent. The rest is not kept: Istio's
   * agent sends dozens of keys (annotations, PROXY_CONFIG, …) that pilot would otherwise hold for
   * every connected proxy.
   */
  readonly metadata: Readonly<Record<string, unknown>>;
  /**
   * Set by pilot's mTLS port once the stream's client certificate proved the namespace and
   * service account the node claims; never parsed from the node. Credentials (Secrets) are
   * served only to authenticated proxies.
   */
  readonly authenticated?: true;
}

/** The fields of an xDS `Node` (snake_case, metadata already converted from Struct to JSON). */
export interface NodeLike {
  readonly id?: string;
  readonly cluster?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly locality?: ProxyLocality;
  readonly user_agent_name?: string;
}

export interface ParseNodeOptions {
  /** Trust domain for the SPIFFE identity; default `cluster.local`. */
  readonly trustDomain?: string;
}

/** The node metadata keys anything in Aviary reads (parseNode and the translators). */
const READ_METADATA: readonly string[] = ['NAMESPACE', 'LABELS', 'SERVICE_ACCOUNT', 'GENERATOR', 'INTERCEPTION_MODE', 'INSTANCE_IPS'];

function readMetadata(metadata: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of READ_METADATA) if (metadata[key] !== undefined) out[key] = metadata[key];
  return out;
}

const MAX_ID = 1024;
const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function invalid(message: string, id: string | undefined): never {
  throw new AviaryError('INVALID_ARGUMENT', 'XDS_NODE_INVALID', message, { nodeId: id ?? '' });
}

function stringMap(value: unknown, id: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) invalid('node metadata LABELS must be an object of strings', id);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') invalid(`node metadata LABELS.${k} must be a string`, id);
    out[k] = v;
  }
  return out;
}

function optionalString(metadata: Readonly<Record<string, unknown>>, key: string, id: string): string | undefined {
  const v = metadata[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') invalid(`node metadata ${key} must be a string`, id);
  return v;
}

export function parseNode(node: NodeLike, options: ParseNodeOptions = {}): ProxyInfo {
  const id = node.id ?? '';
  if (id === '') invalid('the first request of a stream must carry node.id', id);
  if (id.length > MAX_ID) invalid(`node.id is longer than ${MAX_ID} characters`, id);
  const metadata = node.metadata ?? {};
  const generator = optionalString(metadata, 'GENERATOR', id);
  const metaNamespace = optionalString(metadata, 'NAMESPACE', id);
  const serviceAccount = optionalString(metadata, 'SERVICE_ACCOUNT', id);
  const labels = stringMap(metadata.LABELS, id);

  const parts = id.split('~');
  let kind: ProxyKind;
  let ip: string | undefined;
  let podName: string | undefined;
  let idNamespace: string | undefined;
  let dnsDomain: string | undefined;
  if (parts.length === 4) {
    const [type, ipPart, podPart, domain] = parts as [string, string, string, string];
    if (type !== 'sidecar' && type !== 'router') invalid(`node.id type must be sidecar or router, got ${JSON.stringify(type)}`, id);
    if (ipPart === '') invalid('node.id has an empty IP', id);
    kind = type;
    ip = ipPart;
    const dot = podPart.indexOf('.');
    podName = dot < 0 ? podPart : podPart.slice(0, dot);
    idNamespace = dot < 0 ? undefined : podPart.slice(dot + 1);
    dnsDomain = domain === '' ? undefined : domain;
    idNamespace ??= dnsDomain?.split('.')[0];
  } else if (generator === 'grpc') {
    kind = 'proxyless';
  } else {
    invalid('node.id must be <sidecar|router>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain> (or set GENERATOR=grpc)', id);
  }
  if (generator === 'grpc') kind = 'proxyless';

  const namespace = metaNamespace ?? idNamespace ?? 'default';
  if (!dns1123.test(namespace) || namespace.length > 63) invalid(`namespace ${JSON.stringify(namespace)} is not a DNS-1123 label`, id);
  const trustDomain = options.trustDomain ?? 'cluster.local';
  const info: ProxyInfo = {
    id,
    kind,
    namespace,
    labels,
    cluster: node.cluster ?? '',
    metadata: readMetadata(metadata),
    ...(ip !== undefined && { ip }),
    ...(podName !== undefined && { podName }),
    ...(dnsDomain !== undefined && { dnsDomain }),
    ...(serviceAccount !== undefined && { serviceAccount, identity: `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}` }),
    ...(node.locality !== undefined && { locality: node.locality }),
    ...(generator !== undefined && { generator }),
    ...(node.user_agent_name !== undefined && { userAgent: node.user_agent_name }),
  };
  return Object.freeze(info);
}

/**
 * Pilot's reading of a node: Istio node ids (`sidecar~…`, `router~…`) and GENERATOR=grpc nodes
 * parse as `parseNode` does; a plain id such as a proxyless client's `client-1` is taken as
 * proxyless rather than refused.
 */
export function lenientNodeParser(trustDomain: string): (node: NodeLike) => ProxyInfo {
  return (node) => {
    try {
      return parseNode(node, { trustDomain });
    } catch (err) {
      const id = node.id ?? '';
      if (id === '' || id.includes('~')) throw err;
      return parseNode({ ...node, metadata: { ...(node.metadata ?? {}), GENERATOR: 'grpc' } }, { trustDomain });
    }
  };
}
