/**
 * Builders for Envoy v3 resources in canonical proto-JSON shape, as pilot sends them. Used by
 * the specs and by anyone driving a proxy with static config.
 */
import { ExtensionTypeUrl } from '@aviary/xds-api';

export const types = {
  hcm: ExtensionTypeUrl.HttpConnectionManager,
  tcpProxy: ExtensionTypeUrl.TcpProxy,
  router: ExtensionTypeUrl.Router,
  fault: ExtensionTypeUrl.HTTPFault,
  rbac: ExtensionTypeUrl.RBAC,
  rbacPerRoute: ExtensionTypeUrl.RBACPerRoute,
  localRateLimit: ExtensionTypeUrl.LocalRateLimit,
  downstreamTls: ExtensionTypeUrl.DownstreamTlsContext,
  upstreamTls: ExtensionTypeUrl.UpstreamTlsContext,
} as const;

export type Obj = Record<string, unknown>;

export function duration(ms: number): Obj {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export function routerFilter(): Obj {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': types.router } };
}

export function hcm(opts: { rds?: string; routeConfig?: Obj; filters?: Obj[]; statPrefix?: string }): Obj {
  return {
    '@type': types.hcm,
    stat_prefix: opts.statPrefix ?? 'http',
    ...(opts.rds !== undefined ? { rds: { route_config_name: opts.rds, config_source: { ads: {} } } } : { route_config: opts.routeConfig }),
    http_filters: [...(opts.filters ?? []), routerFilter()],
  };
}

export function listener(name: string, port: number, chains: Obj[], host = '127.0.0.1'): Obj {
  return { name, address: { socket_address: { address: host, port_value: port } }, filter_chains: chains };
}

export function httpChain(h: Obj, extra: Obj = {}): Obj {
  return { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: h }], ...extra };
}

export function routeConfig(name: string, virtualHosts: Obj[]): Obj {
  return { name, virtual_hosts: virtualHosts };
}

export function vhost(name: string, domains: string[], routes: Obj[], extra: Obj = {}): Obj {
  return { name, domains, routes, ...extra };
}

export function route(match: Obj, action: Obj, extra: Obj = {}): Obj {
  return { match, ...action, ...extra };
}

export function toCluster(cluster: string, extra: Obj = {}): Obj {
  return { route: { cluster, ...extra } };
}

export function weighted(clusters: [string, number][], extra: Obj = {}): Obj {
  return { route: { weighted_clusters: { clusters: clusters.map(([name, w]) => ({ name, weight: { value: w } })) }, ...extra } };
}

export function staticCluster(name: string, endpoints: [string, number][], extra: Obj = {}): Obj {
  return {
    name,
    type: 'STATIC',
    connect_timeout: duration(1000),
    load_assignment: { cluster_name: name, endpoints: [{ locality: {}, lb_endpoints: endpoints.map(([a, p]) => ({ endpoint: { address: { socket_address: { address: a, port_value: p } } } })) }] },
    ...extra,
  };
}

export function edsCluster(name: string, extra: Obj = {}): Obj {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: name }, ...extra };
}

export function loadAssignment(name: string, endpoints: [string, number][]): Obj {
  return { cluster_name: name, endpoints: [{ locality: { region: 'r', zone: 'z' }, load_balancing_weight: { value: 1 }, lb_endpoints: endpoints.map(([a, p]) => ({ endpoint: { address: { socket_address: { address: a, port_value: p } } } })) }] };
}

export function faultFilter(config: Obj = {}): Obj {
  return { name: 'envoy.filters.http.fault', typed_config: { '@type': types.fault, ...config } };
}

export function rbacFilter(rules: Obj | undefined): Obj {
  return { name: 'envoy.filters.http.rbac', typed_config: { '@type': types.rbac, ...(rules === undefined ? {} : { rules }) } };
}

export function rateLimit(maxTokens: number, fillMs: number, tokensPerFill = maxTokens): Obj {
  return {
    '@type': types.localRateLimit,
    stat_prefix: 'http_local_rate_limiter',
    token_bucket: { max_tokens: maxTokens, tokens_per_fill: { value: tokensPerFill }, fill_interval: duration(fillMs) },
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
  };
}

export function rateLimitFilter(config: Obj = { '@type': types.localRateLimit, stat_prefix: 'http_local_rate_limiter' }): Obj {
  return { name: 'envoy.filters.http.local_ratelimit', typed_config: config };
}

/** DownstreamTlsContext referencing SDS secrets `default` / `ROOTCA` (Istio's names). */
export function downstreamMtls(requireClient = true): Obj {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': types.downstreamTls,
      require_client_certificate: { value: requireClient },
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
        combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } } },
      },
    },
  };
}

/** UpstreamTlsContext for ISTIO_MUTUAL verifying the server's SPIFFE id. */
export function upstreamMtls(spiffeIds: string[], sni?: string): Obj {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': types.upstreamTls,
      ...(sni === undefined ? {} : { sni }),
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: spiffeIds.map((id) => ({ san_type: 'URI', matcher: { exact: id } })) },
          validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
        },
        alpn_protocols: ['istio', 'h2', 'http/1.1'],
      },
    },
  };
}
