import { MESH_GATEWAY, compareStrings, type Service, type ServicePortInfo } from '@aviary/mesh-model';
import { outboundClusters } from './clusters';
import { BLACKHOLE_CLUSTER, clusterName, isHttp2Port, isHttpPort, PASSTHROUGH_CLUSTER, type Ctx } from './context';
import { durationMs, N, prune, socketAddress, T, typed, wrap, type Msg } from './envoy';
import { faultFilter, hcmFilter, tcpProxyFilter } from './hcm';
import { withRateLimits, rateLimitHttpFilter } from './ratelimit';
import { httpSecurityFilters, tcpSecurityFilters } from './authz/filters';
import { inboundScope } from './authz/scope';
import { defaultRoute, virtualServiceRoutes, type ClusterRefs } from './routes';
import type { Generated } from './result';
import { istioMutualDownstream, transportSocket } from './tls';

/**
 * Sidecar (Istio's shape): `virtualOutbound` on 15001 and a `0.0.0.0_<port>` listener per
 * outbound port (HTTP ports read RDS `<port>`; TCP ports proxy to the service's cluster);
 * `virtualInbound` on 15006 with filter chains per port of the workload's own service
 * instances (matched by the proxy IP), forwarding to `inbound|<port>||` clusters at
 * 127.0.0.1:<port>; mTLS per PeerAuthentication (STRICT: TLS chain only; PERMISSIVE: TLS and
 * plaintext chains selected by transport_protocol; DISABLE: plaintext); RBAC and local rate
 * limits on inbound HTTP.
 */

export const OUTBOUND_PORT = 15001;
export const INBOUND_PORT = 15006;
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughClusterIpv4';

export function sidecarResources(ctx: Ctx): Generated {
  const out: Generated = { listeners: [], routes: [], clusters: [], endpoints: [] };
  outbound(ctx, out);
  inbound(ctx, out);
  return out;
}

/**
 * The outbound half: reads only the proxy's kind, namespace and the labels that select a
 * Sidecar, DestinationRule or VirtualService source match, so proxies that agree on those
 * share it (see `outboundKey`).
 */
export function sidecarOutbound(ctx: Ctx): Generated {
  const out: Generated = { listeners: [], routes: [], clusters: [], endpoints: [] };
  outbound(ctx, out);
  return out;
}

/** The inbound half: the proxy's own service instances (by IP), PeerAuthentication, RBAC, rate limits. */
export function sidecarInbound(ctx: Ctx): Generated {
  const out: Generated = { listeners: [], routes: [], clusters: [], endpoints: [] };
  inbound(ctx, out);
  return out;
}

function staticCluster(name: string, address: string, port: number, http2: boolean): Msg {
  return prune({
    name,
    type: 'STATIC',
    connect_timeout: durationMs(10_000),
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address, port) } }] }] },
    ...(http2 && {
      typed_extension_protocol_options: { [N.httpProtocolOptions]: typed(T.HttpProtocolOptions, { explicit_http_config: { http2_protocol_options: {} } }) },
    }),
  });
}

function passthroughClusters(out: Generated, inboundToo: boolean): void {
  out.clusters.push({ name: PASSTHROUGH_CLUSTER, resource: { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', connect_timeout: durationMs(10_000), lb_policy: 'CLUSTER_PROVIDED' } });
  out.clusters.push({ name: BLACKHOLE_CLUSTER, resource: { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: durationMs(10_000) } });
  if (inboundToo) {
    out.clusters.push({
      name: INBOUND_PASSTHROUGH_CLUSTER,
      resource: { name: INBOUND_PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', connect_timeout: durationMs(10_000), lb_policy: 'CLUSTER_PROVIDED' },
    });
  }
}

/** Domains Istio puts on a service's virtual host: FQDN and the short forms a client in the namespace may use. */
function domainsFor(ctx: Ctx, service: Service, port: number): string[] {
  const names = [service.hostname];
  const suffix = `.svc.${ctx.snapshot.options.domainSuffix}`;
  if (service.hostname.endsWith(suffix)) {
    const short = service.hostname.slice(0, -suffix.length); // name.ns
    const [name, ns] = short.split('.');
    if (ns !== undefined && short.split('.').length === 2) {
      if (ns === ctx.proxy.namespace) names.push(name!);
      names.push(short, `${short}.svc`);
    }
  }
  return names.flatMap((n) => [n, `${n}:${port}`]);
}

function outbound(ctx: Ctx, out: Generated): void {
  const allowAny = ctx.outboundAllowAny();
  const httpPorts = new Map<number, { service: Service; port: ServicePortInfo }[]>();
  const tcpPorts = new Map<number, { service: Service; port: ServicePortInfo }[]>();
  for (const service of ctx.visibleServices()) {
    for (const port of service.ports) {
      const map = isHttpPort(port) ? httpPorts : tcpPorts;
      const list = map.get(port.number);
      if (list) list.push({ service, port });
      else map.set(port.number, [{ service, port }]);
      for (const c of outboundClusters(ctx, service, port)) {
        out.clusters.push({ name: c.name, resource: c.cluster });
        out.endpoints.push({ name: c.name, resource: c.loadAssignment });
      }
    }
  }
  passthroughClusters(out, true);

  for (const [portNumber, entries] of httpPorts) {
    const routeName = String(portNumber);
    const vhosts: Msg[] = [];
    for (const { service } of entries) {
      const refs: ClusterRefs = new Set();
      const vs = ctx.snapshot.virtualServices.forHost(service.hostname, ctx.proxy.namespace);
      let routes = vs ? virtualServiceRoutes(ctx, vs, { port: portNumber, gateway: MESH_GATEWAY }, refs) : [];
      if (routes.length === 0) routes = [defaultRoute(ctx, service, portNumber, refs)];
      vhosts.push({ name: `${service.hostname}:${portNumber}`, domains: domainsFor(ctx, service, portNumber), routes });
    }
    vhosts.push({
      name: allowAny ? 'allow_any' : 'block_all',
      domains: ['*'],
      routes: [
        allowAny
          ? { name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: durationMs(0) } }
          : { name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } },
      ],
    });
    vhosts.sort((a, b) => compareStrings(a.name as string, b.name as string));
    out.routes.push({ name: routeName, resource: { name: routeName, virtual_hosts: vhosts, validate_clusters: wrap(false) } });
    const listenerName = `0.0.0.0_${portNumber}`;
    out.listeners.push({
      name: listenerName,
      resource: {
        name: listenerName,
        address: socketAddress('0.0.0.0', portNumber),
        bind_to_port: wrap(false),
        traffic_direction: 'OUTBOUND',
        filter_chains: [{ filters: [hcmFilter({ statPrefix: `outbound_0.0.0.0_${portNumber}`, rds: routeName, filters: [faultFilter()] })] }],
      },
    });
  }

  for (const [portNumber, entries] of tcpPorts) {
    if (httpPorts.has(portNumber)) {
      ctx.problem(`port ${portNumber}: TCP services ${entries.map((e) => e.service.hostname).join(', ')} share the port with HTTP services; HTTP wins`);
      continue;
    }
    if (entries.length > 1) ctx.problem(`port ${portNumber}: several TCP services (${entries.map((e) => e.service.hostname).join(', ')}); ${entries[0]!.service.hostname} is used`);
    const first = entries[0]!;
    const listenerName = `0.0.0.0_${portNumber}`;
    out.listeners.push({
      name: listenerName,
      resource: {
        name: listenerName,
        address: socketAddress('0.0.0.0', portNumber),
        bind_to_port: wrap(false),
        traffic_direction: 'OUTBOUND',
        filter_chains: [{ filters: [tcpProxyFilter(`outbound|${portNumber}||${first.service.hostname}`, clusterName('outbound', portNumber, '', first.service.hostname))] }],
      },
    });
  }

  out.listeners.push({
    name: 'virtualOutbound',
    resource: {
      name: 'virtualOutbound',
      address: socketAddress('0.0.0.0', OUTBOUND_PORT),
      use_original_dst: wrap(true),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter(allowAny ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER, allowAny ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER)] }],
    },
  });
}

interface Instance {
  readonly service: Service;
  readonly port: ServicePortInfo;
  /** The workload's listening port. */
  readonly targetPort: number;
}

/** The proxy's own service instances: endpoints whose address is the proxy IP, one per target port. */
function instances(ctx: Ctx): Instance[] {
  const ip = ctx.proxy.ip;
  if (!ip) return [];
  const byTarget = new Map<number, Instance>();
  // The services with an endpoint at the IP, in `services.all()` order (by hostname).
  const services = [...ctx.snapshot.endpoints.hostsAt(ip)].sort(compareStrings).flatMap((h) => ctx.snapshot.services.get(h) ?? []);
  for (const service of services) {
    for (const port of service.ports) {
      for (const e of ctx.snapshot.endpoints.forServicePort(service.hostname, port.number)) {
        if (e.address !== ip || byTarget.has(e.port)) continue;
        byTarget.set(e.port, { service, port, targetPort: e.port });
      }
    }
  }
  return [...byTarget.values()].sort((a, b) => a.targetPort - b.targetPort);
}

function inbound(ctx: Ctx, out: Generated): void {
  const { namespace, labels } = ctx.proxy;
  const pa = ctx.snapshot.peerAuthentications;
  const chains: Msg[] = [];
  for (const inst of instances(ctx)) {
    const cluster = clusterName('inbound', inst.targetPort, '', '');
    out.clusters.push({ name: cluster, resource: staticCluster(cluster, '127.0.0.1', inst.targetPort, isHttp2Port(inst.port)) });
    const mode = pa.modeFor(namespace, labels, inst.targetPort);
    const http = isHttpPort(inst.port);
    const scope = inboundScope(ctx, inst.service);
    let filters: Msg[];
    if (http) {
      const seName = inst.service.source.split('/')[2] ?? '';
      const rateLimits = [
        ...ctx.snapshot.rateLimitPolicies.forWorkload(namespace, labels),
        ...ctx.snapshot.rateLimitPolicies.forTarget('ServiceEntry', inst.service.namespace, seName),
      ];
      const vhostKey = `${inst.service.hostname}:${inst.port.number}`;
      const route = {
        name: 'default',
        match: { prefix: '/' },
        route: { cluster, timeout: durationMs(0) },
        decorator: { operation: `${vhostKey}/*` },
      };
      const security = httpSecurityFilters(ctx, scope, `inbound port ${inst.targetPort}`);
      for (const c of security.clusters) {
        out.clusters.push({ name: c.name, resource: c.cluster });
        out.endpoints.push({ name: c.name, resource: c.loadAssignment });
      }
      filters = [hcmFilter({
        statPrefix: `inbound_0.0.0.0_${inst.targetPort}`,
        routeConfig: {
          name: cluster,
          virtual_hosts: [{ name: `inbound|http|${inst.targetPort}`, domains: ['*'], routes: withRateLimits(rateLimits, vhostKey, [route]) }],
          validate_clusters: wrap(false),
        },
        filters: [...security.filters, ...(rateLimits.length > 0 ? [rateLimitHttpFilter()] : [])],
        forwardClientCert: true,
      })];
    } else {
      filters = [...tcpSecurityFilters(ctx, scope, `TCP port ${inst.targetPort}`), tcpProxyFilter(cluster, cluster)];
    }
    const alpn = http ? ['h2', 'http/1.1'] : [];
    if (mode !== 'DISABLE') {
      chains.push({
        name: `inbound_${inst.targetPort}_mtls`,
        filter_chain_match: { destination_port: wrap(inst.targetPort), transport_protocol: 'tls' },
        filters,
        transport_socket: transportSocket(istioMutualDownstream(ctx.options.sdsClusterName, ctx.trustDomain, alpn)),
      });
    }
    if (mode !== 'STRICT') {
      chains.push({ name: `inbound_${inst.targetPort}_plaintext`, filter_chain_match: { destination_port: wrap(inst.targetPort), transport_protocol: 'raw_buffer' }, filters });
    }
  }
  const defaultMode = pa.modeFor(namespace, labels);
  const catchAll = tcpProxyFilter(INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER);
  if (defaultMode !== 'DISABLE') {
    chains.push({
      name: 'virtualInbound-catchall-mtls',
      filter_chain_match: { transport_protocol: 'tls' },
      filters: [catchAll],
      transport_socket: transportSocket(istioMutualDownstream(ctx.options.sdsClusterName, ctx.trustDomain, [])),
    });
  }
  if (defaultMode !== 'STRICT') chains.push({ name: 'virtualInbound-catchall-plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [catchAll] });
  out.listeners.push({
    name: 'virtualInbound',
    resource: prune({
      name: 'virtualInbound',
      address: socketAddress('0.0.0.0', INBOUND_PORT),
      traffic_direction: 'INBOUND',
      listener_filters: [
        { name: N.originalDst, typed_config: typed(T.OriginalDst) },
        { name: N.tlsInspector, typed_config: typed(T.TlsInspector) },
      ],
      filter_chains: chains,
    }),
  });
}
