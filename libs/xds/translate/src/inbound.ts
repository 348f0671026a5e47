import type { ConnectionPoolSettings, ServerTLSSettings } from '@aviary/mesh-api';
import { compareStrings, portProtocol, type Service, type ServicePortInfo } from '@aviary/mesh-model';
import { circuitBreakers, protocolOptions, upstreamConnectionOptions } from './clusters';
import { clusterName, isHttpPort, type Ctx } from './context';
import { duration, durationMs, N, prune, socketAddress, T, typed, wrap, type Msg } from './envoy';
import { hcmFilter, tcpProxyFilter } from './hcm';
import { rateLimitHttpFilter, withRateLimits } from './ratelimit';
import { httpSecurityFilters, tcpSecurityFilters } from './authz/filters';
import { inboundScope } from './authz/scope';
import type { Generated } from './result';
import { gatewayDownstream, istioMutualDownstream, transportSocket } from './tls';

/**
 * A sidecar's inbound side, Istio's shape. The inbound ports are the workload's own service
 * instances (endpoints at its IP, forwarded to 127.0.0.1:<port>), or, when the Sidecar resource
 * that applies has `ingress`, exactly those listeners (`port`, `defaultEndpoint`, `bind`,
 * `captureMode`, `tls`, `connectionPool`; `inboundConnectionPool` for all). Each port gets filter chains per PeerAuthentication (STRICT: mTLS only;
 * PERMISSIVE: mTLS and plaintext by transport_protocol; DISABLE: plaintext) or per ingress
 * `tls`, RBAC and local rate limits on HTTP, and an `inbound|<port>||` cluster.
 *
 * Captured ports (iptables) are chains of `virtualInbound` on 15006, matched by destination
 * port, with passthrough chains for the rest. With `INTERCEPTION_MODE: NONE`, or an ingress
 * listener with `bind` or `captureMode: NONE`, a port is its own listener bound to `bind`, else
 * the workload's IP (INSTANCE_IPS[0]), on that port; NONE mode has no virtualInbound.
 */

export const INBOUND_PORT = 15006;
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughClusterIpv4';

interface InboundPort {
  /** The port clients connect to. */
  readonly port: number;
  /** Upper-case protocol. */
  readonly protocol: string;
  /** The service instance behind it (rate limits, route decorator), when known. */
  readonly instance?: { readonly service: Service; readonly port: ServicePortInfo };
  /** Where the `inbound|<port>||` cluster sends. */
  readonly endpoint: Msg;
  /** Its own bound listener on this address; undefined: a chain of virtualInbound. */
  readonly bind?: string;
  readonly tls?: ServerTLSSettings;
  /** Sidecar `ingress[].connectionPool`, else `inboundConnectionPool`. */
  readonly pool?: ConnectionPoolSettings;
}

interface Instance {
  readonly service: Service;
  readonly port: ServicePortInfo;
  /** The workload's listening port. */
  readonly targetPort: number;
}

/** The proxy's own service instances: endpoints at the workload's IP, one per target port. */
function instances(ctx: Ctx, ip: string | undefined): Instance[] {
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

/** `defaultEndpoint` (validated form) → an Envoy address; undefined (with a problem) when unusable. */
function endpointAddress(ctx: Ctx, where: string, value: string, ip: string | undefined): Msg | undefined {
  if (value.startsWith('unix://')) return { pipe: { path: value.slice('unix://'.length) } };
  const m = /^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]|)?:(\d+)$/.exec(value);
  if (!m) {
    ctx.problem(`${where}: defaultEndpoint ${JSON.stringify(value)} is not 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port> or unix://<path>; listener skipped`);
    return undefined;
  }
  const port = Number(m[2]);
  if (m[1] === '127.0.0.1') return socketAddress('127.0.0.1', port);
  if (m[1] === '[::1]') return socketAddress('::1', port);
  if (!ip) {
    ctx.problem(`${where}: defaultEndpoint ${value} forwards to the workload's IP, which this proxy did not send; listener skipped`);
    return undefined;
  }
  return socketAddress(ip, port);
}

function inboundPorts(ctx: Ctx, ip: string | undefined): InboundPort[] {
  const own = instances(ctx, ip);
  const none = ctx.interceptionNone;
  const sidecar = ctx.sidecarResource()?.spec;
  const ingress = sidecar?.ingress ?? [];
  const inboundPool = sidecar?.inboundConnectionPool;
  if (ingress.length === 0) {
    return own.map((inst) => ({
      port: inst.targetPort,
      protocol: inst.port.protocol,
      instance: inst,
      endpoint: socketAddress('127.0.0.1', inst.targetPort),
      ...(none && ip !== undefined && { bind: ip }),
      ...(inboundPool && { pool: inboundPool }),
    }));
  }
  const out: InboundPort[] = [];
  ingress.forEach((ing, i) => {
    const where = `${ctx.sidecarResource()!.key} ingress[${i}]`;
    const port = ing.port.number;
    if (port === undefined) return ctx.problem(`${where}: port.number is required; listener skipped`);
    if (out.some((p) => p.port === port)) return ctx.problem(`${where}: port ${port} is already an ingress listener; skipped`);
    if (ing.port.targetPort !== undefined) ctx.problem(`${where}: port.targetPort is not supported (deprecated by Istio); use defaultEndpoint`);
    const endpoint = endpointAddress(ctx, where, ing.defaultEndpoint ?? `127.0.0.1:${port}`, ip);
    if (!endpoint) return;
    const bound = none || ing.captureMode === 'NONE' || ing.bind !== undefined;
    const bind = bound ? (ing.bind ?? ip) : undefined;
    if (bound && bind === undefined) return ctx.problem(`${where}: no bind address and no workload IP to bind port ${port}; listener skipped`);
    const target = endpoint.socket_address as { address: string; port_value: number } | undefined;
    if (bind !== undefined && target?.address === bind && target.port_value === port) return ctx.problem(`${where}: defaultEndpoint is the listener's own address ${bind}:${port}; skipped`);
    const instance = own.find((inst) => inst.targetPort === port);
    const protocol = portProtocol(ing.port.protocol, ing.port.name ?? '');
    out.push({
      port,
      // HTTPS terminated by the sidecar (ingress tls) is HTTP behind it, as on a gateway.
      protocol: ing.tls && protocol === 'HTTPS' ? 'HTTP' : protocol,
      endpoint,
      ...(instance && { instance }),
      ...(bind !== undefined && { bind }),
      ...(ing.tls && { tls: ing.tls }),
      ...((ing.connectionPool ?? inboundPool) && { pool: ing.connectionPool ?? inboundPool }),
    });
  });
  return out.sort((a, b) => a.port - b.port);
}

/**
 * Inbound listener filters: tls_inspector (chains match on transport_protocol) and, for HTTP
 * ports, http_inspector. On a listener shared by several ports it runs only on the HTTP ones,
 * so that a server-first TCP protocol on another port is not held waiting for client bytes.
 */
export function inspectors(httpPorts: readonly number[], shared = true): Msg[] {
  const out: Msg[] = [{ name: N.tlsInspector, typed_config: typed(T.TlsInspector) }];
  if (httpPorts.length === 0) return out;
  const inspector = { name: N.httpInspector, typed_config: typed(T.HttpInspector) };
  if (!shared) return [...out, inspector];
  const ranges = [...new Set(httpPorts)].sort((a, b) => a - b).map((p) => ({ destination_port_range: { start: p, end: p + 1 } }));
  const onHttpPorts = ranges.length === 1 ? ranges[0]! : { or_match: { rules: ranges } };
  return [...out, { ...inspector, filter_disabled: { not_match: onHttpPorts } }];
}

/** `inbound|<port>||`: the app's address; connection pool settings as on outbound clusters (Istio). */
function inboundCluster(name: string, p: InboundPort): Msg {
  return prune({
    name,
    type: 'STATIC',
    connect_timeout: duration(p.pool?.tcp?.connectTimeout) ?? durationMs(10_000),
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: p.endpoint } }] }] },
    ...circuitBreakers(p.pool),
    ...upstreamConnectionOptions(p.pool),
    ...protocolOptions(p, p.pool),
  });
}

/**
 * The network filters of one inbound port: an HCM (jwt_authn, RBAC, ext_authz, rate limits,
 * inline route), or network RBAC and a TCP proxy. Clusters the filters call go to `out`.
 */
function portFilters(ctx: Ctx, out: Generated, p: InboundPort, cluster: string, statPrefix: string): Msg[] {
  const { namespace, labels } = ctx.proxy;
  // Inbound listeners report as the destination, for the service the port serves (if any).
  const destination = { reporter: 'destination', ...(p.instance && { destinationService: p.instance.service.hostname }) } as const;
  const scope = inboundScope(ctx, p.instance?.service);
  if (!isHttpPort(p)) return [...tcpSecurityFilters(ctx, scope, `TCP port ${p.port}`), tcpProxyFilter(cluster, cluster, destination)];
  const security = httpSecurityFilters(ctx, scope, `inbound port ${p.port}`);
  for (const c of security.clusters) {
    out.clusters.push({ name: c.name, resource: c.cluster });
    if (c.loadAssignment) out.endpoints.push({ name: c.name, resource: c.loadAssignment });
  }
  const service = p.instance?.service;
  const seName = service?.source.split('/')[2] ?? '';
  const rateLimits = [
    ...ctx.snapshot.rateLimitPolicies.forWorkload(namespace, labels),
    ...(service ? ctx.snapshot.rateLimitPolicies.forTarget('ServiceEntry', service.namespace, seName) : []),
  ];
  const vhostKey = p.instance ? `${p.instance.service.hostname}:${p.instance.port.number}` : `inbound|${p.port}`;
  const route = { name: 'default', match: { prefix: '/' }, route: { cluster, timeout: durationMs(0) }, decorator: { operation: `${vhostKey}/*` } };
  const hcm = hcmFilter({
    statPrefix,
    routeConfig: {
      name: cluster,
      virtual_hosts: [{ name: `inbound|http|${p.port}`, domains: ['*'], routes: withRateLimits(rateLimits, vhostKey, [route]) }],
      validate_clusters: wrap(false),
    },
    filters: [...security.filters, ...(rateLimits.length > 0 ? [rateLimitHttpFilter()] : [])],
    forwardClientCert: true,
    accessLog: destination,
  });
  return [hcm];
}

/** mTLS and/or plaintext chains of one port (`matchPort` on virtualInbound), or its ingress `tls` chain. */
function portChains(ctx: Ctx, p: InboundPort, filters: Msg[], matchPort: boolean): Msg[] {
  const alpn = isHttpPort(p) ? ['h2', 'http/1.1'] : [];
  const port = matchPort ? { destination_port: wrap(p.port) } : {};
  if (p.tls) {
    return [{ name: `inbound_${p.port}_tls`, filter_chain_match: { ...port, transport_protocol: 'tls' }, filters, transport_socket: transportSocket(gatewayDownstream(p.tls, ctx.options.sdsClusterName, ctx.trustDomain)) }];
  }
  const mode = ctx.snapshot.peerAuthentications.modeFor(ctx.proxy.namespace, ctx.proxy.labels, p.port);
  const chains: Msg[] = [];
  if (mode !== 'DISABLE') {
    chains.push({
      name: `inbound_${p.port}_mtls`,
      filter_chain_match: { ...port, transport_protocol: 'tls' },
      filters,
      transport_socket: transportSocket(istioMutualDownstream(ctx.options.sdsClusterName, ctx.trustDomain, alpn)),
    });
  }
  if (mode !== 'STRICT') chains.push({ name: `inbound_${p.port}_plaintext`, filter_chain_match: { ...port, transport_protocol: 'raw_buffer' }, filters });
  return chains;
}

export function inbound(ctx: Ctx, out: Generated): void {
  const ip = ctx.instanceIp;
  const chains: Msg[] = [];
  const httpPorts: number[] = [];
  for (const p of inboundPorts(ctx, ip)) {
    const cluster = clusterName('inbound', p.port, '', '');
    out.clusters.push({ name: cluster, resource: inboundCluster(cluster, p) });
    if (p.bind === undefined) {
      if (isHttpPort(p)) httpPorts.push(p.port);
      chains.push(...portChains(ctx, p, portFilters(ctx, out, p, cluster, `inbound_0.0.0.0_${p.port}`), true));
      continue;
    }
    const name = `${p.bind}_${p.port}`;
    out.listeners.push({
      name,
      resource: {
        name,
        address: socketAddress(p.bind, p.port),
        traffic_direction: 'INBOUND',
        listener_filters: inspectors(isHttpPort(p) ? [p.port] : [], false),
        continue_on_listener_filters_timeout: true,
        filter_chains: portChains(ctx, p, portFilters(ctx, out, p, cluster, `inbound_${name}`), false),
      },
    });
  }
  if (ctx.interceptionNone) return;

  const { namespace, labels } = ctx.proxy;
  const defaultMode = ctx.snapshot.peerAuthentications.modeFor(namespace, labels);
  const catchAll = tcpProxyFilter(INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, { reporter: 'destination' });
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
      listener_filters: [{ name: N.originalDst, typed_config: typed(T.OriginalDst) }, ...inspectors(httpPorts)],
      continue_on_listener_filters_timeout: true,
      filter_chains: chains,
    }),
  });
}
