import { ExtensionTypeUrl, typeNameOf } from '@aviary/xds-api';
import { compileTransportSocket, socketAddress, type TlsContextRef } from './cluster';
import { compileHttpFilter, type HttpFilter } from './filters';
import { compileRbac, type CompiledRbac } from './rbac';
import { anyOf, arr, durationMs, invalid, num, obj, optObj, optStr, type Raw, str } from './raw';
import { compileRouteConfiguration, type RouteConfig } from './routes';

const HCM = typeNameOf(ExtensionTypeUrl.HttpConnectionManager);
const TCP_PROXY = typeNameOf(ExtensionTypeUrl.TcpProxy);
const NETWORK_RBAC = typeNameOf(ExtensionTypeUrl.NetworkRBAC);

export interface HttpConnectionManager {
  readonly kind: 'http';
  readonly statPrefix: string;
  /** RDS name, or undefined when the route config is inline. */
  readonly rdsName: string | undefined;
  readonly inlineRoutes: RouteConfig | undefined;
  /** HTTP filters in order; the router (always last) is implicit. */
  readonly filters: readonly HttpFilter[];
  readonly streamIdleTimeoutMs: number | undefined;
  readonly codec: 'AUTO' | 'HTTP1' | 'HTTP2';
}

export interface TcpProxy {
  readonly kind: 'tcp';
  readonly statPrefix: string;
  readonly cluster: string;
  /** Network RBAC filters before the proxy, in order: a connection must pass each. */
  readonly rbac: readonly CompiledRbac[];
}

export interface FilterChainMatch {
  readonly serverNames: readonly string[];
  readonly transportProtocol: string | undefined;
  readonly applicationProtocols: readonly string[];
  readonly destinationPort: number | undefined;
}

export interface FilterChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  readonly tls: TlsContextRef | undefined;
  readonly terminal: HttpConnectionManager | TcpProxy;
}

export interface Listener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly bindToPort: boolean;
  /** use_original_dst: hands connections to the listener of their original destination port. */
  readonly useOriginalDst: boolean;
  /** traffic_direction: INBOUND listeners report as `destination` in telemetry. */
  readonly direction: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
  readonly filterChains: readonly FilterChain[];
  readonly defaultChain: FilterChain | undefined;
  /** Whether any chain needs TLS: the listener then sniffs the first byte. */
  readonly anyTls: boolean;
  readonly anyPlain: boolean;
}

function filterChainMatch(v: unknown, path: string): FilterChainMatch {
  const o = optObj(v, path) ?? {};
  const dp = o.destination_port;
  return {
    serverNames: arr(o.server_names, `${path}.server_names`).map((s, i) => str(s, `${path}.server_names[${i}]`).toLowerCase()),
    transportProtocol: optStr(o.transport_protocol, `${path}.transport_protocol`) || undefined,
    applicationProtocols: arr(o.application_protocols, `${path}.application_protocols`).map((s, i) => str(s, `${path}.application_protocols[${i}]`)),
    destinationPort: dp === undefined ? undefined : num(typeof dp === 'object' && dp !== null ? (dp as Raw).value : dp, `${path}.destination_port`),
  };
}

function hcm(msg: Raw, path: string): HttpConnectionManager {
  let rdsName: string | undefined;
  let inlineRoutes: RouteConfig | undefined;
  if (msg.rds !== undefined) {
    const rds = obj(msg.rds, `${path}.rds`);
    rdsName = str(rds.route_config_name, `${path}.rds.route_config_name`);
    if (rdsName.length === 0) invalid(`${path}.rds.route_config_name`, 'must not be empty');
  } else if (msg.route_config !== undefined) {
    inlineRoutes = compileRouteConfiguration(msg.route_config, `${path}.route_config`);
  } else {
    invalid(path, 'one of rds, route_config is required');
  }
  const raw = arr(msg.http_filters, `${path}.http_filters`);
  if (raw.length === 0) invalid(`${path}.http_filters`, 'must end with the router filter');
  const filters: HttpFilter[] = [];
  raw.forEach((f, i) => {
    const c = compileHttpFilter(f, `${path}.http_filters[${i}]`);
    if (c === 'router') {
      if (i !== raw.length - 1) invalid(`${path}.http_filters[${i}]`, 'the router filter must be the last HTTP filter');
    } else if (i === raw.length - 1) {
      invalid(`${path}.http_filters[${i}]`, 'the last HTTP filter must be the router');
    } else if (c !== undefined) {
      filters.push(c);
    }
  });
  const codecRaw = msg.codec_type ?? 'AUTO';
  const codec = (typeof codecRaw === 'number' ? ['AUTO', 'HTTP1', 'HTTP2'][codecRaw] : String(codecRaw)) as HttpConnectionManager['codec'] | undefined;
  if (codec !== 'AUTO' && codec !== 'HTTP1' && codec !== 'HTTP2') invalid(`${path}.codec_type`, `unsupported codec ${String(codecRaw)}`);
  return {
    kind: 'http',
    statPrefix: optStr(msg.stat_prefix, `${path}.stat_prefix`) ?? '',
    rdsName,
    inlineRoutes,
    filters,
    streamIdleTimeoutMs: durationMs(msg.stream_idle_timeout, `${path}.stream_idle_timeout`),
    codec,
  };
}

function tcpProxy(msg: Raw, path: string): TcpProxy {
  let cluster = optStr(msg.cluster, `${path}.cluster`);
  if (cluster === undefined && msg.weighted_clusters !== undefined) {
    const list = arr(obj(msg.weighted_clusters, `${path}.weighted_clusters`).clusters, `${path}.weighted_clusters.clusters`);
    if (list.length !== 1) invalid(`${path}.weighted_clusters`, 'only a single weighted cluster is supported for TCP');
    cluster = str(obj(list[0], `${path}.weighted_clusters.clusters[0]`).name, `${path}.weighted_clusters.clusters[0].name`);
  }
  if (cluster === undefined || cluster.length === 0) invalid(`${path}.cluster`, 'is required');
  return { kind: 'tcp', statPrefix: optStr(msg.stat_prefix, `${path}.stat_prefix`) ?? '', cluster, rbac: [] };
}

function filterChain(v: unknown, path: string): FilterChain {
  const o = obj(v, path);
  const filters = arr(o.filters, `${path}.filters`);
  let terminal: HttpConnectionManager | TcpProxy | undefined;
  const rbac: CompiledRbac[] = [];
  filters.forEach((f, i) => {
    const p = `${path}.filters[${i}]`;
    const fo = obj(f, p);
    if (fo.typed_config === undefined) invalid(`${p}.typed_config`, 'is required');
    const { type, msg } = anyOf(fo.typed_config, `${p}.typed_config`);
    if (type === HCM || type === TCP_PROXY) {
      if (i !== filters.length - 1) invalid(p, 'a terminal filter must be the last network filter');
      terminal = type === HCM ? hcm(msg, `${p}.typed_config`) : tcpProxy(msg, `${p}.typed_config`);
    } else if (type === NETWORK_RBAC) {
      if (msg.shadow_rules !== undefined || msg.matcher !== undefined) invalid(`${p}.typed_config`, 'network RBAC supports `rules` only');
      if (msg.rules !== undefined) rbac.push(compileRbac(msg.rules, `${p}.typed_config.rules`));
    } else if (!type.startsWith('istio.') && !type.includes('.wasm.') && !type.includes('metadata_exchange')) {
      invalid(`${p}.typed_config`, `unsupported network filter ${type}`);
    }
  });
  if (terminal === undefined) invalid(`${path}.filters`, 'needs an http_connection_manager or tcp_proxy filter');
  if (rbac.length > 0 && terminal.kind !== 'tcp') invalid(`${path}.filters`, 'network RBAC is supported before tcp_proxy only');
  if (rbac.length > 0 && terminal.kind === 'tcp') terminal = { ...terminal, rbac };
  const match = filterChainMatch(o.filter_chain_match, `${path}.filter_chain_match`);
  const tls = compileTransportSocket(o.transport_socket, `${path}.transport_socket`, true);
  if (tls !== undefined && tls.certificateSecrets.length === 0 && tls.inlineCertificates.length === 0) invalid(`${path}.transport_socket`, 'a TLS filter chain needs a certificate');
  return { name: optStr(o.name, `${path}.name`) ?? '', match, tls, terminal };
}

/** Compiles and validates a `config.listener.v3.Listener`. */
export function compileListener(v: unknown, path = 'Listener'): Listener {
  const o = obj(v, path);
  const name = str(o.name, `${path}.name`);
  if (name.length === 0) invalid(`${path}.name`, 'must not be empty');
  if (o.api_listener !== undefined) invalid(`${path}.api_listener`, 'API listeners are for proxyless clients');
  const { host, port } = socketAddress(o.address, `${path}.address`);
  const filterChains = arr(o.filter_chains, `${path}.filter_chains`).map((c, i) => filterChain(c, `${path}.filter_chains[${i}]`));
  const defaultChain = o.default_filter_chain === undefined ? undefined : filterChain(o.default_filter_chain, `${path}.default_filter_chain`);
  const all = defaultChain === undefined ? filterChains : [...filterChains, defaultChain];
  if (all.length === 0) invalid(`${path}.filter_chains`, 'at least one filter chain is required');
  const bind = optObj(o.bind_to_port, `${path}.bind_to_port`);
  return {
    name,
    host,
    port,
    bindToPort: bind === undefined ? true : bind.value === true,
    useOriginalDst: (optObj(o.use_original_dst, `${path}.use_original_dst`)?.value ?? false) === true,
    direction: o.traffic_direction === 'INBOUND' || o.traffic_direction === 1 ? 'INBOUND' : o.traffic_direction === 'OUTBOUND' || o.traffic_direction === 2 ? 'OUTBOUND' : 'UNSPECIFIED',
    filterChains,
    defaultChain,
    anyTls: all.some((c) => c.tls !== undefined || c.match.transportProtocol === 'tls'),
    anyPlain: all.some((c) => c.tls === undefined && c.match.transportProtocol !== 'tls'),
  };
}

/**
 * The destination port a connection is matched with. Without iptables (local mode) a peer
 * dials the capture port itself, so the original port is unknown; when the listener's chains
 * name exactly one destination port and none is the local port, that one is meant.
 */
export function effectiveDestinationPort(listener: Listener, localPort: number): number {
  const ports = new Set(listener.filterChains.flatMap((c) => (c.match.destinationPort === undefined ? [] : [c.match.destinationPort])));
  if (ports.size === 1 && !ports.has(localPort)) return [...ports][0] as number;
  return localPort;
}

/**
 * The listener an HTTP request on a `use_original_dst` listener belongs to: the non-bound
 * listener of the port in its authority (Istio's per-port outbound listeners), else undefined.
 */
export function originalDstListener(listeners: Iterable<Listener>, authority: string): Listener | undefined {
  const m = /:(\d+)$/.exec(authority);
  const port = m === null ? 80 : Number(m[1]);
  for (const l of listeners) if (!l.bindToPort && l.port === port) return l;
  return undefined;
}

/** What the transport knows of a connection when picking a filter chain. */
export interface ConnectionFacts {
  readonly tls: boolean;
  readonly serverName: string | undefined;
  readonly destinationPort: number;
  readonly alpn: readonly string[];
}

function serverNameScore(names: readonly string[], sni: string | undefined): number {
  if (names.length === 0) return 1;
  if (sni === undefined) return -1;
  const s = sni.toLowerCase();
  if (names.includes(s)) return 3 + s.length;
  for (const n of names) if (n.startsWith('*.') && s.endsWith(n.slice(1))) return 2 + n.length;
  return -1;
}

/**
 * Envoy's filter chain selection, in its order of precedence: destination port, server name
 * (exact before wildcard), transport protocol, application protocols. The most specific chain
 * wins; no match falls back to the default chain.
 */
export function selectFilterChain(listener: Listener, c: ConnectionFacts): FilterChain | undefined {
  let best: FilterChain | undefined;
  let bestScore: number[] = [];
  for (const chain of listener.filterChains) {
    const m = chain.match;
    if (m.destinationPort !== undefined && m.destinationPort !== c.destinationPort) continue;
    const sn = serverNameScore(m.serverNames, c.serverName);
    if (sn < 0) continue;
    const tp = m.transportProtocol ?? (chain.tls !== undefined ? 'tls' : undefined);
    if (tp !== undefined && tp !== (c.tls ? 'tls' : 'raw_buffer')) continue;
    if (tp === undefined && chain.tls === undefined && c.tls) continue;
    if (m.applicationProtocols.length > 0 && !m.applicationProtocols.some((a) => c.alpn.includes(a))) continue;
    const score = [m.destinationPort === undefined ? 0 : 1, sn, m.transportProtocol === undefined ? 0 : 1, m.applicationProtocols.length > 0 ? 1 : 0];
    if (best === undefined || compareScores(score, bestScore) > 0) {
      best = chain;
      bestScore = score;
    }
  }
  return best ?? listener.defaultChain;
}

function compareScores(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
