import { inlineRoutes, staticClusters, unixGrpcCluster, type XdsSet } from './envoy-process';

type Msg = Record<string, unknown>;

/**
 * The agent's access log cluster (CONTRACT.md; `ALS_CLUSTER` of @aviary/xds-translate). This lib
 * is imported by the serving layer's specs, so it may depend on neither the model nor the
 * translator: the caller passes pilot's translation in.
 */
const ALS_CLUSTER = 'aviary-als';

/** An Istio config object as a user writes it. */
export interface MeshObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: Record<string, unknown>;
}

/** An xDS node as a proxy sends it (Istio-style id and metadata). */
export interface MeshNode {
  readonly id: string;
  readonly metadata: Record<string, unknown>;
}

/**
 * pilot's translation of `objects` for `node`, e.g.
 * `(objects, node) => translate(parseNode(node), buildSnapshot(objects, { trustDomain: 'cluster.local' }))`.
 */
export type TranslateMesh = (objects: readonly MeshObject[], node: MeshNode) => XdsSet;

export const HELLO_HOST = 'hello.demo.svc.cluster.local';
export const ROUTER_LISTENER = '0.0.0.0_8080';
/** The name of the sidecar's inbound listener for a target port. */
export const inboundListener = (port: number): string => `inbound_${port}`;

/**
 * The demo's shape, translated by pilot's real translator without pilot: an ingress gateway
 * routing `/hello*` to `hello` subset v1 (one WorkloadEntry `hello-v1` at `workloadIp:port`,
 * DestinationRule `tls: DISABLE`, or `ISTIO_MUTUAL` with `mtls`), and that workload's sidecar
 * inbound chain forwarding to `127.0.0.1:port`. Everything else answers 404 (`NR`). With
 * `tcpPort`, the service also has TCP port 5432 served by the workload at `tcpPort`.
 */
export function helloMesh(translateMesh: TranslateMesh, workloadIp: string, port: number, options: { mtls?: boolean; tcpPort?: number } = {}): { router: XdsSet; sidecar: XdsSet } {
  const tcp = options.tcpPort;
  const objects: MeshObject[] = [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'hello', namespace: 'demo' },
      spec: { hosts: [HELLO_HOST], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, ...(tcp === undefined ? [] : [{ number: 5432, name: 'tcp-echo', protocol: 'TCP' }])], workloadSelector: { labels: { app: 'hello' } } },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'hello-v1', namespace: 'demo' },
      spec: { address: workloadIp, ports: { http: port, ...(tcp !== undefined && { 'tcp-echo': tcp }) }, serviceAccount: 'hello', labels: { app: 'hello', version: 'v1' } },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'hello', namespace: 'demo' },
      spec: { host: HELLO_HOST, trafficPolicy: { tls: { mode: options.mtls === true ? 'ISTIO_MUTUAL' : 'DISABLE' } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'hello-gateway', namespace: 'demo' },
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'hello', namespace: 'demo' },
      spec: { hosts: ['*'], gateways: ['hello-gateway'], http: [{ match: [{ uri: { prefix: '/hello' } }], route: [{ destination: { host: HELLO_HOST, subset: 'v1', port: { number: 80 } } }] }] },
    },
  ];
  const router = translateMesh(objects, {
    id: 'router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local',
    metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } },
  });
  const sidecar = translateMesh(objects, {
    id: `sidecar~${workloadIp}~hello-v1-1.demo~demo.svc.cluster.local`,
    metadata: { NAMESPACE: 'demo', LABELS: { app: 'hello', version: 'v1' }, SERVICE_ACCOUNT: 'hello' },
  });
  return { router, sidecar };
}

/** The router's listener (bound to 127.0.0.1, an ephemeral port) and clusters, logging to the ALS server at `alsSocket`. */
export function routerBootstrap(xds: XdsSet, alsSocket: string): Msg {
  const listener = xds.listeners.find((l) => l.name === ROUTER_LISTENER);
  if (listener === undefined) throw new Error(`the router has no listener ${ROUTER_LISTENER}`);
  const resource = inlineRoutes(listener.resource as Msg, xds);
  return {
    node: { id: 'router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local', cluster: 'istio-ingressgateway' },
    static_resources: {
      listeners: [{ ...resource, address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }],
      clusters: [...staticClusters(xds), unixGrpcCluster(ALS_CLUSTER, alsSocket)],
    },
  };
}

/**
 * The sidecar's inbound chains for `ports` (PERMISSIVE: the plaintext ones, or with `mtls` the
 * mutual TLS ones), each on a listener of its own at `workloadIp:<port>` named
 * `inboundListener(port)`, as local mode binds them (no iptables, no original-destination capture).
 */
export function sidecarInboundBootstrap(xds: XdsSet, alsSocket: string, workloadIp: string, ports: number | readonly number[], options: { mtls?: boolean } = {}): Msg {
  const inbound = xds.listeners.find((l) => l.name === 'virtualInbound');
  if (inbound === undefined) throw new Error('the sidecar has no virtualInbound listener');
  const chains = (inbound.resource as { filter_chains: Msg[] }).filter_chains;
  const tls = options.mtls === true;
  const listeners = (typeof ports === 'number' ? [ports] : ports).map((port) => {
    const chain = chains.find((c) => (c.transport_socket !== undefined) === tls && (c.filter_chain_match as { destination_port?: { value: number } } | undefined)?.destination_port?.value === port);
    if (chain === undefined) throw new Error(`the sidecar has no ${tls ? 'mutual TLS' : 'plaintext'} inbound chain for port ${port}`);
    return { name: inboundListener(port), address: { socket_address: { address: workloadIp, port_value: port } }, filter_chains: [{ filters: chain.filters, ...(tls && { transport_socket: chain.transport_socket }) }] };
  });
  return {
    node: { id: `sidecar~${workloadIp}~hello-v1-1.demo~demo.svc.cluster.local`, cluster: 'hello' },
    static_resources: {
      listeners,
      clusters: [...staticClusters(xds).filter((c) => String(c.name).startsWith('inbound|')), unixGrpcCluster(ALS_CLUSTER, alsSocket)],
    },
  };
}

/** A workload's certificate files for `staticSecrets`. */
export interface WorkloadCertFiles {
  readonly certChain: string;
  readonly privateKey: string;
  readonly trustedCa: string;
}

/**
 * Replaces pilot's SDS references (secrets `default` and `ROOTCA` from the agent) with files, for
 * an Envoy run without an agent: `tls_certificate_sds_secret_configs` become `tls_certificates`
 * and a `combined_validation_context` its default context plus `trusted_ca`.
 */
export function staticSecrets<T>(bootstrap: T, files: WorkloadCertFiles): T {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x === null || typeof x !== 'object') return x;
    const o = { ...(x as Msg) };
    if (o.tls_certificate_sds_secret_configs !== undefined) {
      delete o.tls_certificate_sds_secret_configs;
      o.tls_certificates = [{ certificate_chain: { filename: files.certChain }, private_key: { filename: files.privateKey } }];
    }
    if (o.combined_validation_context !== undefined) {
      const combined = o.combined_validation_context as { default_validation_context?: Msg };
      delete o.combined_validation_context;
      o.validation_context = { ...(combined.default_validation_context ?? {}), trusted_ca: { filename: files.trustedCa } };
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, walk(v)]));
  };
  return walk(bootstrap) as T;
}
