import type { Msg } from '../envoy';
import { T } from '../envoy';

/**
 * Tests only: wraps one proxy's translated resources into a static Envoy bootstrap, so that
 * `envoy --mode validate` checks them the way Envoy would take them over xDS. Listeners and
 * clusters become static; every RDS reference is replaced by its route configuration inline;
 * every EDS cluster becomes STATIC with its ClusterLoadAssignment. SDS secret references stay
 * dynamic and need the `sds-grpc` cluster (a Unix socket, as the agent's bootstrap has it) that
 * is added here, with `xds-grpc` (the ADS stream credentials come over) and the access log
 * cluster `aviary-als`.
 */

export interface NamedResources {
  readonly listeners: readonly { name: string; resource: Msg }[];
  readonly routes: readonly { name: string; resource: Msg }[];
  readonly clusters: readonly { name: string; resource: Msg }[];
  readonly endpoints: readonly { name: string; resource: Msg }[];
}

export const isObject = (v: unknown): v is Msg => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A deep copy with every HttpConnectionManager's `rds` replaced by its `route_config`. */
export function inlineRds(value: unknown, routes: ReadonlyMap<string, Msg>): unknown {
  if (Array.isArray(value)) return value.map((v) => inlineRds(v, routes));
  if (!isObject(value)) return value;
  const out: Msg = {};
  for (const [k, v] of Object.entries(value)) out[k] = inlineRds(v, routes);
  if (out['@type'] === T.HttpConnectionManager && isObject(out.rds)) {
    const name = out.rds.route_config_name as string;
    const route = routes.get(name);
    if (!route) throw new Error(`listener references route configuration ${name}, which is not in the resources`);
    delete out.rds;
    out.route_config = route;
  }
  return out;
}

export function staticCluster(c: Msg, endpoints: ReadonlyMap<string, Msg>): Msg {
  if (c.type !== 'EDS') return c;
  const { eds_cluster_config: eds, ...rest } = c;
  const serviceName = (isObject(eds) && (eds.service_name as string | undefined)) || (c.name as string);
  const cla = endpoints.get(serviceName);
  if (!cla) throw new Error(`cluster ${String(c.name)} reads EDS ${serviceName}, which is not in the resources`);
  return { ...rest, type: 'STATIC', load_assignment: cla };
}

export function pipeCluster(name: string, path: string): Msg {
  return {
    name,
    type: 'STATIC',
    connect_timeout: { seconds: 1 },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path } } } }] }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': T.HttpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } },
    },
  };
}

export function staticBootstrap(nodeId: string, resources: NamedResources): Msg {
  const routes = new Map(resources.routes.map((r) => [r.name, r.resource]));
  const endpoints = new Map(resources.endpoints.map((r) => [r.name, r.resource]));
  return {
    node: { id: nodeId, cluster: 'aviary-validate' },
    static_resources: {
      listeners: resources.listeners.map((l) => inlineRds(l.resource, routes)),
      clusters: [
        ...resources.clusters.map((c) => staticCluster(c.resource, endpoints)),
        pipeCluster('sds-grpc', '/tmp/aviary-validate/sds.sock'),
        pipeCluster('aviary-als', '/tmp/aviary-validate/als.sock'),
        pipeCluster('xds-grpc', '/tmp/aviary-validate/xds.sock'),
      ],
    },
    // Credentials (credentialName) come by SDS over ADS, as from pilot: the ADS stream must exist.
    dynamic_resources: { ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] } },
  };
}
