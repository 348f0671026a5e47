import type { Server } from '@aviary/mesh-api';
import { compareStrings, hostMatches, type BoundVirtualService, type GatewayEntry } from '@aviary/mesh-model';
import { outboundClusters } from './clusters';
import type { Ctx } from './context';
import { N, prune, socketAddress, T, typed, wrap, type Msg } from './envoy';
import { peerWorkloadHeader } from './accesslog';
import { corsFilter, faultFilter, hcmFilter, tcpProxyFilter, type TcpTarget } from './hcm';
import { firstTcpRoute, l4Target } from './l4routes';
import { rateLimitHttpFilter, withRateLimits } from './ratelimit';
import { httpSecurityFilters, tcpSecurityFilters, type SecurityScope } from './authz/filters';
import { routerScope } from './authz/scope';
import { matchApplies, virtualServiceRoutes, type ClusterRefs } from './routes';
import type { Generated } from './result';
import { gatewayDownstream, transportSocket } from './tls';

/**
 * Router (ingress gateway), Istio's shape: for each port of the Gateway servers whose selector
 * matches the proxy's labels, a listener `0.0.0.0_<port>` (`127.0.0.1_<port>` with
 * INTERCEPTION_MODE NONE, i.e. local mode). Plain HTTP servers share RDS
 * `http.<port>`; SIMPLE/MUTUAL TLS servers each get a filter chain matched by SNI with their
 * own RDS `https.<port>.<server>.<gateway>.<ns>`; PASSTHROUGH servers get tcp_proxy chains per
 * SNI from the VirtualServices' `tls` routes. Routes come from VirtualServices bound to the
 * gateway (`gateways: [ns/name]`). Clusters: the services those routes reach.
 */

/** A router (ingress gateway) reports as the source of the requests it forwards, as Istio's gateways do. */
const SOURCE = { reporter: 'source' } as const;

interface BoundServer {
  readonly gateway: GatewayEntry;
  readonly server: Server;
  readonly index: number;
}

function serverHosts(server: Server): string[] {
  return server.hosts.map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h));
}

function hostAllowsNamespace(server: Server, gatewayNs: string, vsNs: string): boolean {
  return server.hosts.some((h) => {
    if (!h.includes('/')) return true;
    const ns = h.slice(0, h.indexOf('/'));
    return ns === '*' || ns === vsNs || (ns === '.' && vsNs === gatewayNs);
  });
}

/** The most specific of two intersecting host patterns. */
function narrower(a: string, b: string): string {
  return hostMatches(a, b) ? b : a;
}

/**
 * The port a router listens on for a Gateway server port, as Istio: in Kubernetes, the
 * targetPort of the router's own Service port with that number (the chart's 80 → 8080 and
 * 443 → 8443, so a Gateway says 443 and Envoy binds 8443 without privileges); the number itself
 * when no Service of the router has that port, and always in local mode.
 */
function servicePortTarget(ctx: Ctx, number: number): number {
  const ip = ctx.proxy.ip;
  if (ctx.interceptionNone || ip === undefined) return number;
  for (const host of [...ctx.snapshot.endpoints.hostsAt(ip)].sort()) {
    const own = ctx.snapshot.endpoints.forServicePort(host, number).find((e) => e.address === ip);
    if (own !== undefined) return own.port;
  }
  return number;
}

export function routerResources(ctx: Ctx): Generated {
  const out: Generated = { listeners: [], routes: [], clusters: [], endpoints: [] };
  const servers: BoundServer[] = [];
  for (const gateway of ctx.snapshot.gateways.forProxy(ctx.proxy.labels)) {
    (gateway.spec.servers ?? []).forEach((server, index) => servers.push({ gateway, server, index }));
  }
  const byPort = new Map<number, BoundServer[]>();
  for (const s of servers) {
    const port = s.server.port.targetPort ?? servicePortTarget(ctx, s.server.port.number);
    const list = byPort.get(port);
    if (list) list.push(s);
    else byPort.set(port, [s]);
  }
  const refs: ClusterRefs = new Set();
  const scope = routerScope(ctx);
  const security = httpSecurityFilters(ctx, scope, 'the router');
  const httpFiltersBase = security.filters;
  for (const c of security.clusters) {
    out.clusters.push({ name: c.name, resource: c.cluster });
    if (c.loadAssignment) out.endpoints.push({ name: c.name, resource: c.loadAssignment });
  }
  // Local mode (INTERCEPTION_MODE NONE) keeps the gateway on loopback; in Kubernetes it serves the pod's every address.
  const address = ctx.interceptionNone ? '127.0.0.1' : '0.0.0.0';

  for (const [port, list] of [...byPort].sort(([a], [b]) => a - b)) {
    const chains: Msg[] = [];
    let needsTlsInspector = false;
    const unencrypted = list.filter((s) => !s.server.tls || (s.server.tls.httpsRedirect === true && !s.server.tls.mode));
    const tls = list.filter((s) => !unencrypted.includes(s));
    const plainTcp = unencrypted.filter(isTcpServer);
    const plain = unencrypted.filter((s) => !isTcpServer(s));
    if (plainTcp.length > 0 && plain.length > 0) {
      ctx.problem(`port ${port}: TCP servers (${plainTcp.map(serverName).join(', ')}) share the port with HTTP servers without TLS; HTTP wins`);
    } else if (plainTcp.length > 0) {
      const target = tcpRouteTarget(ctx, plainTcp, refs);
      if (target !== undefined) chains.push({ filters: [...tcpSecurityFilters(ctx, scope, `router TCP port ${port}`), tcpProxyFilter(`outbound_0.0.0.0_${port}`, target, SOURCE)] });
    }
    if (plain.length > 0) {
      const name = `http.${port}`;
      out.routes.push({ name, resource: routeConfiguration(ctx, name, port, plain, refs) });
      chains.push({ filters: [hcmFilter({ statPrefix: `outbound_0.0.0.0_${port}`, rds: name, filters: httpFilters(ctx, httpFiltersBase, plain), useRemoteAddress: true, accessLog: SOURCE })] });
    }
    for (const s of tls) {
      const mode = s.server.tls!.mode ?? 'SIMPLE';
      const sni = serverHosts(s.server).filter((h) => h !== '*');
      needsTlsInspector = true;
      if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
        chains.push(...passthroughChains(ctx, s, port, refs, scope));
        continue;
      }
      if (isTcpServer(s)) {
        // Protocol TLS that the router terminates: the plaintext goes on by the VirtualServices' tcp routes.
        const target = tcpRouteTarget(ctx, [s], refs);
        if (target === undefined) continue;
        chains.push(
          prune({
            filter_chain_match: { server_names: sni },
            filters: [...tcpSecurityFilters(ctx, scope, `router TLS port ${port}`), tcpProxyFilter(`outbound_0.0.0.0_${port}`, target, SOURCE)],
            transport_socket: transportSocket(gatewayDownstream(s.server.tls!, ctx.options.sdsClusterName, ctx.trustDomain, [])),
          }),
        );
        continue;
      }
      const name = `https.${port}.${serverName(s)}.${s.gateway.name}.${s.gateway.namespace}`;
      out.routes.push({ name, resource: routeConfiguration(ctx, name, port, [s], refs) });
      chains.push(
        prune({
          filter_chain_match: { server_names: sni },
          filters: [hcmFilter({ statPrefix: `outbound_0.0.0.0_${port}`, rds: name, filters: httpFilters(ctx, httpFiltersBase, [s]), useRemoteAddress: true, accessLog: SOURCE })],
          transport_socket: transportSocket(gatewayDownstream(s.server.tls!, ctx.options.sdsClusterName, ctx.trustDomain)),
        }),
      );
    }
    if (chains.length === 0) continue;
    const listenerName = `${address}_${port}`;
    out.listeners.push({
      name: listenerName,
      resource: {
        name: listenerName,
        address: socketAddress(address, port),
        traffic_direction: 'OUTBOUND',
        ...(needsTlsInspector && { listener_filters: [{ name: N.tlsInspector, typed_config: typed(T.TlsInspector) }] }),
        filter_chains: chains,
      },
    });
  }

  // Clusters (and their endpoints) for every service port the routes reach, with all subsets.
  const wanted = new Set<string>();
  for (const ref of refs) {
    const [, port, , host] = ref.split('|');
    wanted.add(`${host}|${port}`);
  }
  for (const key of [...wanted].sort(compareStrings)) {
    const [host, portText] = key.split('|') as [string, string];
    const service = ctx.snapshot.services.get(host);
    const port = service?.ports.find((p) => p.number === Number(portText));
    if (!service || !port || !ctx.isVisible(host)) continue;
    for (const c of outboundClusters(ctx, service, port)) {
      out.clusters.push({ name: c.name, resource: c.cluster });
      if (c.loadAssignment) out.endpoints.push({ name: c.name, resource: c.loadAssignment });
    }
  }
  return out;
}

/** A server whose traffic is proxied as TCP: protocol TCP, or TLS (terminated here, or passed through by SNI). */
function isTcpServer(s: BoundServer): boolean {
  const protocol = s.server.port.protocol.toUpperCase();
  return protocol === 'TCP' || protocol === 'TLS';
}

function serverName(s: BoundServer): string {
  return s.server.name ?? s.server.port.name ?? `server-${s.index}`;
}

/**
 * The tcp route for TCP servers of one listener port, as Istio: the VirtualServices bound to a
 * server's Gateway whose hosts meet the server's (and that it admits by namespace), in order;
 * the first tcp route whose match applies (port = the server's port number). Undefined, with a
 * problem, when there is none: the port gets no filter chain for those servers.
 */
function tcpRouteTarget(ctx: Ctx, servers: readonly BoundServer[], refs: ClusterRefs): TcpTarget | undefined {
  for (const s of servers) {
    const gatewayName = `${s.gateway.namespace}/${s.gateway.name}`;
    const scope = { port: s.server.port.number, gateway: gatewayName };
    for (const vs of ctx.snapshot.virtualServices.forGateway(gatewayName)) {
      if (!hostAllowsNamespace(s.server, s.gateway.namespace, vs.entry.namespace)) continue;
      if (!vs.hosts.some((vh) => serverHosts(s.server).some((sh) => hostMatches(sh, vh) || hostMatches(vh, sh)))) continue;
      const route = firstTcpRoute(ctx, vs.entry.spec.tcp, scope);
      if (route) return l4Target(ctx, vs, route.route, scope, refs);
    }
  }
  ctx.problem(`${servers.map((s) => `${s.gateway.namespace}/${s.gateway.name}`).join(', ')}: TCP server on port ${servers[0]!.server.port.number} has no matching VirtualService tcp route`);
  return undefined;
}

function gatewayRateLimits(ctx: Ctx, servers: readonly BoundServer[]) {
  const seen = new Set<string>();
  const out = [];
  for (const s of servers) {
    for (const p of [...ctx.snapshot.rateLimitPolicies.forTarget('Gateway', s.gateway.namespace, s.gateway.name), ...ctx.snapshot.rateLimitPolicies.forWorkload(ctx.proxy.namespace, ctx.proxy.labels)]) {
      if (!seen.has(p.key)) {
        seen.add(p.key);
        out.push(p);
      }
    }
  }
  return out.sort((a, b) => compareStrings(a.key, b.key));
}

function httpFilters(ctx: Ctx, base: readonly Msg[], servers: readonly BoundServer[]): Msg[] {
  return [...base, ...(gatewayRateLimits(ctx, servers).length > 0 ? [rateLimitHttpFilter()] : []), corsFilter(), faultFilter()];
}

function routeConfiguration(ctx: Ctx, name: string, port: number, servers: readonly BoundServer[], refs: ClusterRefs): Msg {
  const byHost = new Map<string, { routes: Msg[]; redirect: boolean }>();
  const rateLimits = gatewayRateLimits(ctx, servers);
  for (const s of servers) {
    const gatewayName = `${s.gateway.namespace}/${s.gateway.name}`;
    for (const vs of ctx.snapshot.virtualServices.forGateway(gatewayName)) {
      if (!hostAllowsNamespace(s.server, s.gateway.namespace, vs.entry.namespace)) continue;
      for (const vsHost of vs.hosts) {
        for (const serverHost of serverHosts(s.server)) {
          if (!(hostMatches(serverHost, vsHost) || hostMatches(vsHost, serverHost))) continue;
          const host = narrower(serverHost, vsHost);
          let entry = byHost.get(host);
          if (!entry) byHost.set(host, (entry = { routes: [], redirect: s.server.tls?.httpsRedirect === true }));
          if (entry.routes.length === 0 || !sameVs(entry, vs)) entry.routes.push(...virtualServiceRoutes(ctx, vs, { port, gateway: gatewayName }, refs).map((r) => ({ ...r, _vs: vs.entry.key })));
        }
      }
    }
  }
  const vhosts: Msg[] = [...byHost.keys()].sort(compareStrings).map((host) => {
    const entry = byHost.get(host)!;
    const vhostName = `${host}:${port}`;
    const routes = entry.routes.map(({ _vs: _drop, ...r }) => r);
    return prune({
      name: vhostName,
      domains: [host],
      routes: withRateLimits(rateLimits, vhostName, routes),
      ...(entry.redirect && { require_tls: 'ALL' }),
    });
  });
  if (vhosts.length === 0) {
    vhosts.push({ name: `blackhole:${port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, direct_response: { status: 404 } }] });
  }
  // The gateway names itself to the sidecars it calls (see accesslog.ts). Hosts match without the
  // Host header's port (`example.com:8080` is `example.com`, `a.example.com:1234` meets
  // `*.example.com`), which is forwarded unchanged: the Gateway API matches hostnames so
  // (HTTPRouteHostnameIntersection), and Istio Gateway servers too (Istio adds `host:*` domains,
  // which cannot carry the port of a wildcard host: an Envoy domain takes one leading or trailing wildcard).
  return { name, virtual_hosts: vhosts, validate_clusters: wrap(false), ignore_port_in_host_matching: true, request_headers_to_add: [peerWorkloadHeader()] };
}

function sameVs(entry: { routes: Msg[] }, vs: BoundVirtualService): boolean {
  return entry.routes.some((r) => r._vs === vs.entry.key);
}

function passthroughChains(ctx: Ctx, s: BoundServer, port: number, refs: ClusterRefs, scope: SecurityScope): Msg[] {
  const gatewayName = `${s.gateway.namespace}/${s.gateway.name}`;
  const chains: Msg[] = [];
  for (const vs of ctx.snapshot.virtualServices.forGateway(gatewayName)) {
    for (const route of vs.entry.spec.tls ?? []) {
      for (const m of route.match) {
        const routeScope = { port: s.server.port.number, gateway: gatewayName };
        if (!matchApplies(ctx, routeScope, m)) continue;
        const sni = m.sniHosts.filter((h) => serverHosts(s.server).some((sh) => hostMatches(sh, h) || hostMatches(h, sh)));
        if (sni.length === 0) continue;
        const target = l4Target(ctx, vs, route.route, routeScope, refs);
        if (target === undefined) continue;
        const statPrefix = typeof target === 'string' ? target : target.length === 1 ? target[0]!.name : `outbound_0.0.0.0_${port}`;
        chains.push({
          filter_chain_match: { server_names: [...sni].sort(compareStrings) },
          filters: [...tcpSecurityFilters(ctx, scope, `router TLS passthrough port ${port}`), tcpProxyFilter(statPrefix, target, SOURCE)],
        });
      }
    }
  }
  if (chains.length === 0) ctx.problem(`${gatewayName}: PASSTHROUGH server on port ${port} has no matching VirtualService tls route`);
  return chains;
}
