// Configuration of the data-plane benchmark (tools/bench/dataplane.ts), as pure functions: the
// two nginx instances, the static Envoy bootstrap (with pilot's telemetry blocks toggled) and the
// mesh config applied through pilot for the ingress and the sidecar pair.
import { hcmTracing, httpAccessLog, telemetryFilter, type Msg } from '@aviary/xds-translate';

const T = 'type.googleapis.com/';
/** The backend's body: 128 bytes with the newline. */
export const BODY = 'x'.repeat(127);
export const MESH_HOST = 'bench-mesh.bench-mesh.svc.cluster.local';
/** Workload IPs of the sidecar pair (local mode: each workload its own loopback address). */
export const CLIENT_IP = '127.0.0.21';
export const SERVER_IP = '127.0.0.22';

// ---- nginx ----

/** nginx.conf of a one-worker nginx whose files all live in `dir` (prefix `name`), with `server` (and `upstream`) blocks. */
export function nginxConf(dir: string, name: string, server: string, upstream = ''): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${name}-${t};`).join(' ');
  return `worker_processes 1;
daemon off;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  ${temp}
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  ${upstream}
  server {
${server}
  }
}
`;
}

// ---- static Envoy ----

const router = { name: 'envoy.filters.http.router', typed_config: { '@type': `${T}envoy.extensions.filters.http.router.v3.Router` } };

/**
 * A static HCM routing everything to `backend`. The toggles add the blocks pilot puts on every
 * sidecar and router HCM, taken from @aviary/xds-translate itself: the telemetry filter and the
 * gRPC access log to the agent (`als`), and the OpenTelemetry tracer exporting to the agent with
 * Envoy's default sampling, 100 % (`tracing`), or with Istio's default 1 % (`tracing1`).
 */
function staticHcm(toggles: { als?: boolean; tracing?: 100 | 1 }): Msg {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
      stat_prefix: 'bench',
      route_config: { name: 'bench', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend', timeout: '15s' } }] }] },
      http_filters: [...(toggles.als === true ? [telemetryFilter('source')] : []), router],
      ...(toggles.als === true || toggles.tracing !== undefined ? { generate_request_id: { value: true } } : {}),
      ...(toggles.als === true ? { access_log: [httpAccessLog({ reporter: 'source' })] } : {}),
      ...(toggles.tracing === undefined ? {} : { tracing: { ...hcmTracing(), ...(toggles.tracing === 100 ? {} : { random_sampling: { value: toggles.tracing } }) } }),
    },
  };
}

export const staticVariants = [
  { name: 'static', title: 'Envoy, static bootstrap', toggles: {} },
  { name: 'static-als', title: 'static + pilot\'s ALS to the agent', toggles: { als: true } },
  { name: 'static-trace', title: 'static + pilot\'s tracing (100 %)', toggles: { tracing: 100 } },
  { name: 'static-als-trace', title: 'static + ALS + tracing 100 % (= pilot\'s HCM)', toggles: { als: true, tracing: 100 } },
  { name: 'static-als-trace1', title: 'static + ALS + tracing 1 % (Istio\'s default)', toggles: { als: true, tracing: 1 } },
] as const;

export function staticBootstrap(ports: readonly number[], backendPort: number, alsSocket: string): object {
  const ep = (address: object) => ({ lb_endpoints: [{ endpoint: { address } }] });
  return {
    node: { id: 'bench-static', cluster: 'bench' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    overload_manager: {
      resource_monitors: [
        { name: 'envoy.resource_monitors.global_downstream_max_connections', typed_config: { '@type': `${T}envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig`, max_active_downstream_connections: 100_000 } },
      ],
    },
    static_resources: {
      listeners: staticVariants.map((v, i) => ({ name: v.name, address: { socket_address: { address: '127.0.0.1', port_value: ports[i] } }, filter_chains: [{ filters: [staticHcm(v.toggles)] }] })),
      clusters: [
        { name: 'backend', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'backend', endpoints: [ep({ socket_address: { address: '127.0.0.1', port_value: backendPort } })] } },
        {
          // The ingress agent's ALS server (its access log and trace sink), as pilot's HCM uses it.
          name: 'aviary-als',
          type: 'STATIC',
          connect_timeout: '1s',
          typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': `${T}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`, explicit_http_config: { http2_protocol_options: {} } } },
          load_assignment: { cluster_name: 'aviary-als', endpoints: [ep({ pipe: { path: alsSocket } })] },
        },
      ],
    },
  };
}

// ---- mesh config ----

export function meshYaml(backendPort: number, gatewayPort: number, servicePort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bench-direct, namespace: bench-edge }
spec:
  hosts: [bench-direct.bench-edge.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${backendPort} }]
  workloadSelector: { labels: { app: bench-backend } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: bench-backend, namespace: bench-edge }
spec: { address: 127.0.0.1, ports: { http: ${backendPort} }, labels: { app: bench-backend } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bench-gateway, namespace: bench-edge }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: ${gatewayPort}, name: http-bench, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bench-edge, namespace: bench-edge }
spec:
  hosts: ['*']
  gateways: [bench-gateway]
  http: [{ route: [{ destination: { host: bench-direct.bench-edge.svc.cluster.local, port: { number: 80 } } }] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bench-mesh, namespace: bench-mesh }
spec:
  hosts: [${MESH_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${servicePort}, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: bench-server } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: bench-server, namespace: bench-mesh }
spec: { address: ${SERVER_IP}, ports: { http: ${backendPort} }, serviceAccount: bench-server, labels: { app: bench-server, security.istio.io/tlsMode: istio } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: bench-mesh, namespace: bench-mesh }
spec: { host: ${MESH_HOST}, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: bench-mesh }
spec: { mtls: { mode: STRICT } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: bench-client, namespace: bench-mesh }
spec:
  workloadSelector: { labels: { app: bench-client } }
  egress: [{ hosts: ['./*'], bind: ${CLIENT_IP} }]
`;
}
