/** Tests only: a small consistent mesh (two listeners, their routes, EDS clusters and assignments). */
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { TypeUrl } from '@aviary/xds-protos';
import type { SnapshotInput } from '../snapshot';

export const HCM = ExtensionTypeUrl.HttpConnectionManager;
export const hcm = (route: string) => ({ '@type': HCM, stat_prefix: 'x', rds: { route_config_name: route, config_source: { ads: {} } } });
export const cla = (name: string, port = 9080) => ({
  cluster_name: name,
  endpoints: [{ locality: { zone: 'z' }, load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }],
});
export const edsCluster = (name: string, service?: string) => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, ...(service && { service_name: service }) } });

export function mesh(over: Partial<SnapshotInput> = {}): SnapshotInput {
  return {
    [TypeUrl.Listener]: [
      { name: 'api', api_listener: { api_listener: hcm('r-api') } },
      { name: 'inbound', filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm('r-chain') }] }] },
    ],
    [TypeUrl.RouteConfiguration]: [{ name: 'r-api' }, { name: 'r-chain' }],
    [TypeUrl.Cluster]: [edsCluster('a'), edsCluster('b', 'b-svc'), { name: 'static', type: 'STATIC' }],
    [TypeUrl.ClusterLoadAssignment]: [cla('a'), cla('b-svc')],
    ...over,
  };
}
