// What the pilot benchmark's load generator reads of each xDS resource, as protobufjs types that
// declare only those fields of the Envoy messages (same numbers and wire types; the decoder skips
// every other field without building it). A simulated proxy needs a cluster's name and EDS
// service name, a listener's RDS names, a ClusterLoadAssignment's addresses and a route
// configuration's name; decoding whole Envoy messages (TLS contexts, endpoint metadata Structs)
// for 5,000 streams cost the load generator CPU that its event loop needs to answer the server's
// keepalive pings. tools/bench/ads-decode.spec.ts checks every field against the Envoy protos.
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package aviary.bench;
message Any { string type_url = 1; bytes value = 2; }
message DiscoveryResponse { string version_info = 1; repeated Any resources = 2; string type_url = 4; string nonce = 5; }
message Resource { string version = 1; Any resource = 2; string name = 3; }
message DeltaDiscoveryResponse { string system_version_info = 1; repeated Resource resources = 2; string type_url = 4; string nonce = 5; repeated string removed_resources = 6; }
message EdsClusterConfig { string service_name = 2; }
message Cluster { string name = 1; int32 type = 2; EdsClusterConfig eds_cluster_config = 3; }
message Filter { string name = 1; Any typed_config = 4; }
message FilterChain { repeated Filter filters = 3; }
message ApiListener { Any api_listener = 1; }
message Listener { string name = 1; repeated FilterChain filter_chains = 3; ApiListener api_listener = 19; }
message Rds { string route_config_name = 2; }
message HttpConnectionManager { Rds rds = 3; }
message SocketAddress { string address = 2; }
message Address { SocketAddress socket_address = 1; }
message Endpoint { Address address = 1; }
message LbEndpoint { Endpoint endpoint = 1; }
message LocalityLbEndpoints { repeated LbEndpoint lb_endpoints = 2; }
message ClusterLoadAssignment { string cluster_name = 1; repeated LocalityLbEndpoints endpoints = 2; }
message RouteConfiguration { string name = 1; }
`;

/** Each trimmed type by the full name of the Envoy message it reads. */
export const TRIMMED: Readonly<Record<string, string>> = Object.freeze({
  'google.protobuf.Any': 'Any',
  'envoy.service.discovery.v3.DiscoveryResponse': 'DiscoveryResponse',
  'envoy.service.discovery.v3.Resource': 'Resource',
  'envoy.service.discovery.v3.DeltaDiscoveryResponse': 'DeltaDiscoveryResponse',
  'envoy.config.cluster.v3.Cluster.EdsClusterConfig': 'EdsClusterConfig',
  'envoy.config.cluster.v3.Cluster': 'Cluster',
  'envoy.config.listener.v3.Filter': 'Filter',
  'envoy.config.listener.v3.FilterChain': 'FilterChain',
  'envoy.config.listener.v3.ApiListener': 'ApiListener',
  'envoy.config.listener.v3.Listener': 'Listener',
  'envoy.extensions.filters.network.http_connection_manager.v3.Rds': 'Rds',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager': 'HttpConnectionManager',
  'envoy.config.core.v3.SocketAddress': 'SocketAddress',
  'envoy.config.core.v3.Address': 'Address',
  'envoy.config.endpoint.v3.Endpoint': 'Endpoint',
  'envoy.config.endpoint.v3.LbEndpoint': 'LbEndpoint',
  'envoy.config.endpoint.v3.LocalityLbEndpoints': 'LocalityLbEndpoints',
  'envoy.config.endpoint.v3.ClusterLoadAssignment': 'ClusterLoadAssignment',
  'envoy.config.route.v3.RouteConfiguration': 'RouteConfiguration',
});

const root = protobuf.parse(PROTO, { keepCase: true }).root;

/** The trimmed type that reads the Envoy message `envoyName`. */
export function trimmedType(envoyName: string): protobuf.Type {
  const name = TRIMMED[envoyName];
  if (!name) throw new Error(`ads-decode: no trimmed type for ${envoyName}`);
  return root.lookupType(`aviary.bench.${name}`);
}
