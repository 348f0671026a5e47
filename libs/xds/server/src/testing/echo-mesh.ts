import { ExtensionTypeUrl } from '@aviary/xds-api';
import { TypeUrl, type ResourceTypeUrl } from '@aviary/xds-protos';
import type { SnapshotInput } from '@aviary/xds-cache';

/** Test-only: what a translator would produce for a proxyless client of one echo service. */
export const HCM = ExtensionTypeUrl.HttpConnectionManager;
export const ROUTER = ExtensionTypeUrl.Router;
export const HOST = 'echo.default.svc.cluster.local';
export const LISTENER = `${HOST}:9080`;
export const clusterName = (subset: string): string => `outbound|9080|${subset}|${HOST}`;

export interface EchoMeshOptions {
  /** subset → [address, port] */
  readonly backends: Readonly<Record<string, readonly [string, number]>>;
  /** subset → weight */
  readonly weights: Readonly<Record<string, number>>;
}

export function echoMesh(o: EchoMeshOptions): SnapshotInput {
  const subsets = Object.keys(o.backends).sort();
  const listener = {
    name: LISTENER,
    api_listener: {
      api_listener: {
        '@type': HCM,
        rds: { route_config_name: LISTENER, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
      },
    },
  };
  const route = {
    name: LISTENER,
    virtual_hosts: [
      {
        name: `${HOST}:9080`,
        domains: [LISTENER, HOST],
        routes: [
          {
            match: { prefix: '' },
            route: {
              weighted_clusters: {
                clusters: Object.entries(o.weights).map(([subset, weight]) => ({ name: clusterName(subset), weight: { value: weight } })),
              },
            },
          },
        ],
      },
    ],
  };
  const clusters = subsets.map((s) => ({
    name: clusterName(s),
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: clusterName(s) },
    lb_policy: 'ROUND_ROBIN',
    connect_timeout: { seconds: 1 },
  }));
  const endpoints = subsets.map((s) => {
    const [address, port] = o.backends[s]!;
    return {
      cluster_name: clusterName(s),
      endpoints: [
        {
          locality: { region: 'local', zone: 'z1' },
          load_balancing_weight: { value: 1 },
          lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } }, health_status: 'HEALTHY', load_balancing_weight: { value: 1 } }],
        },
      ],
    };
  });
  const input: Partial<Record<ResourceTypeUrl, object[]>> = {
    [TypeUrl.Listener]: [listener],
    [TypeUrl.RouteConfiguration]: [route],
    [TypeUrl.Cluster]: clusters,
    [TypeUrl.ClusterLoadAssignment]: endpoints,
  };
  return input;
}
