/**
 * What Aviary does with every field of the nine Istio kinds, in one table: translated into Envoy
 * configuration, validated only (with the reason nothing needs translating), or rejected (with the
 * message a resource using it gets). Validation refuses rejected fields from this table
 * (../rules/unsupported.ts) and docs/istio-fields.md is generated from it
 * (tools/fields/generate.mjs), so the documentation and the behaviour cannot drift apart.
 *
 * Keys are field patterns as schemaPaths produces them (`spec.http[].corsPolicy`, `[]` after an
 * array, `{}` after a map). An entry with `subtree` also covers every field below it that has no
 * entry of its own; every schema field must resolve to an entry (fields.spec.ts checks it).
 */

/** The Istio kinds whose fields the registry covers (Aviary's own RateLimitPolicy is not one). */
export const istioKinds = [
  'Gateway',
  'VirtualService',
  'DestinationRule',
  'ServiceEntry',
  'Sidecar',
  'WorkloadEntry',
  'PeerAuthentication',
  'RequestAuthentication',
  'AuthorizationPolicy',
] as const;
export type IstioKind = (typeof istioKinds)[number];

export type FieldStatus = 'translated' | 'validated' | 'rejected';

/** A case of an otherwise translated field that Aviary refuses. */
export interface Refusal {
  /** The error message (the field path is reported with it). */
  readonly message: string;
  /** Absent: every use is refused. Present: only values for which `test` holds. */
  readonly when?: { readonly describe: string; readonly test: (value: unknown, spec: Record<string, unknown>) => boolean };
}

export interface FieldRule {
  readonly status: FieldStatus;
  /** translated: what it becomes; validated: why nothing is translated. */
  readonly note?: string;
  /** Always set for `rejected`; for `translated`, the cases that are refused. */
  readonly refuse?: Refusal;
  /** Also covers the fields below it that have no entry of their own. */
  readonly subtree?: boolean;
}

type Rules = Record<string, FieldRule>;

const NOT_YET = 'is not supported by Aviary yet';

function translated(note: string, subtree = false): FieldRule {
  return { status: 'translated', note, subtree };
}
function validatedOnly(note: string): FieldRule {
  return { status: 'validated', note };
}
/** Rejected whenever present (with everything below it). */
function rejected(field: string, detail?: string): FieldRule {
  return { status: 'rejected', subtree: true, refuse: { message: `${field} ${NOT_YET}${detail ? `: ${detail}` : ''}` } };
}
/** Translated, but refused in the cases `test` picks. */
function translatedExcept(note: string, field: string, describe: string, test: (value: unknown, spec: Record<string, unknown>) => boolean, subtree = false): FieldRule {
  return { status: 'translated', note, subtree, refuse: { message: `${field} ${describe} ${NOT_YET}`, when: { describe, test } } };
}

/** Re-roots a fragment (keys relative to it, '' for the fragment's own field) under `prefix`. */
function mount(prefix: string, fragment: Rules): Rules {
  return Object.fromEntries(Object.entries(fragment).map(([k, v]) => [k === '' ? prefix : `${prefix}.${k}`, v]));
}

const stringMatch = translated('route/RBAC string matcher (exact, prefix, safe_regex)', true);
const destination = translated('cluster `outbound|<port>|<subset>|<host>`', true);

const connectionPool: Rules = {
  '': translated('cluster circuit breakers, timeouts and protocol options'),
  tcp: translated('see its fields'),
  'tcp.maxConnections': translated('circuit_breakers max_connections'),
  'tcp.connectTimeout': translated('cluster connect_timeout'),
  'tcp.tcpKeepalive': translated('upstream_connection_options.tcp_keepalive (probes, time, interval)', true),
  'tcp.maxConnectionDuration': translated('common_http_protocol_options.max_connection_duration'),
  'tcp.idleTimeout': rejected('connectionPool.tcp.idleTimeout', 'TCP proxy idle timeouts are not configured'),
  http: translated('see its fields'),
  'http.http1MaxPendingRequests': translated('circuit_breakers max_pending_requests'),
  'http.http2MaxRequests': translated('circuit_breakers max_requests'),
  'http.maxRequestsPerConnection': translated('common_http_protocol_options.max_requests_per_connection'),
  'http.maxRetries': translated('circuit_breakers max_retries'),
  'http.idleTimeout': translated('common_http_protocol_options.idle_timeout'),
  'http.h2UpgradePolicy': translated('UPGRADE: http2_protocol_options towards the upstream'),
  'http.useClientProtocol': translated('use_downstream_protocol_config (HTTP/1.1 and HTTP/2 as the client spoke)'),
  'http.maxConcurrentStreams': translated('http2_protocol_options.max_concurrent_streams'),
  'http.http2KeepAlive': translated('http2_protocol_options.connection_keepalive (interval, timeout)', true),
};

const loadBalancer: Rules = {
  '': translated('cluster lb_policy'),
  simple: translatedExcept('lb_policy ROUND_ROBIN, LEAST_REQUEST (also for LEAST_CONN), RANDOM', 'loadBalancer.simple', 'PASSTHROUGH', (v) => v === 'PASSTHROUGH'),
  consistentHash: translated('lb_policy RING_HASH or MAGLEV with a route hash_policy', true),
  'consistentHash.httpCookie.attributes': rejected('httpCookie.attributes'),
  zoneAwareLbSetting: rejected('zoneAwareLbSetting', 'zone-aware routing is not configured'),
  localityLbSetting: {
    status: 'rejected',
    subtree: true,
    refuse: {
      message: `localityLbSetting ${NOT_YET}: locality-aware load balancing (distribute, failover) is not configured; set enabled: false or remove it`,
      when: { describe: 'unless enabled is false', test: (v) => (v as { enabled?: boolean }).enabled !== false },
    },
  },
  warmupDurationSecs: translated('slow_start_config.slow_start_window on ROUND_ROBIN / LEAST_REQUEST'),
  warmup: translated('slow_start_config (slow_start_window, aggression, min_weight_percent) on ROUND_ROBIN / LEAST_REQUEST', true),
};

const clientTls: Rules = {
  '': translated('cluster transport_socket (UpstreamTlsContext)', true),
  caCrl: rejected('tls.caCrl', 'certificate revocation lists are not configured'),
  credentialName: rejected('tls.credentialName', 'client certificates from Secrets are served to gateway servers only; use clientCertificate, privateKey and caCertificates (files)'),
};

const outlierDetection: Rules = {
  '': translated('cluster outlier_detection', true),
  minHealthPercent: translated('common_lb_config.healthy_panic_threshold'),
  outlierDetectionHttpErrorCodes: rejected('outlierDetectionHttpErrorCodes'),
};

const portTrafficPolicy: Rules = {
  '': translated('policy for one port of the destination'),
  port: translated('selects the port', true),
  ...mount('loadBalancer', loadBalancer),
  ...mount('connectionPool', connectionPool),
  ...mount('outlierDetection', outlierDetection),
  ...mount('tls', clientTls),
};

const trafficPolicy: Rules = {
  '': translated('cluster settings'),
  ...mount('loadBalancer', loadBalancer),
  ...mount('connectionPool', connectionPool),
  ...mount('outlierDetection', outlierDetection),
  ...mount('tls', clientTls),
  ...mount('portLevelSettings[]', portTrafficPolicy),
  portLevelSettings: translated('per-port overrides'),
  tunnel: rejected('trafficPolicy.tunnel', 'HTTP CONNECT/POST tunnelling is not configured'),
  proxyProtocol: rejected('trafficPolicy.proxyProtocol', 'the PROXY protocol header is not sent upstream'),
  retryBudget: rejected('trafficPolicy.retryBudget'),
};

const serverTls: Rules = {
  '': translated('DownstreamTlsContext of the filter chain'),
  httpsRedirect: translated('route require_tls (redirect to HTTPS)'),
  mode: translated('SIMPLE/MUTUAL/OPTIONAL_MUTUAL/ISTIO_MUTUAL terminate TLS; PASSTHROUGH/AUTO_PASSTHROUGH route by SNI'),
  serverCertificate: translated('tls_certificates certificate_chain filename'),
  privateKey: translated('tls_certificates private_key filename'),
  caCertificates: translated('validation_context trusted_ca filename'),
  caCrl: rejected('tls.caCrl', 'certificate revocation lists are not configured'),
  credentialName: translated('SDS secret `kubernetes://<credentialName>` (and `-cacert` for MUTUAL) by ADS from pilot, read from the Secret of that name in the gateway\'s namespace (local mode: the credential of that name in pilot\'s local secret store, `/api/v1/credentials`), for authenticated (mTLS xDS) proxies only'),
  credentialNames: rejected('tls.credentialNames', 'use credentialName'),
  caCertCredentialName: rejected('tls.caCertCredentialName', 'put ca.crt in the credentialName secret'),
  tlsCertificates: rejected('tls.tlsCertificates', 'use serverCertificate and privateKey, or credentialName'),
  insecureSkipVerify: rejected('tls.insecureSkipVerify'),
  subjectAltNames: translated('validation_context match_typed_subject_alt_names'),
  verifyCertificateSpki: rejected('tls.verifyCertificateSpki'),
  verifyCertificateHash: rejected('tls.verifyCertificateHash'),
  minProtocolVersion: translated('tls_params.tls_minimum_protocol_version'),
  maxProtocolVersion: translated('tls_params.tls_maximum_protocol_version'),
  cipherSuites: translated('tls_params.cipher_suites'),
};

const unix = (v: unknown): boolean => typeof v === 'string' && v.startsWith('unix://');
const workloadEntry: Rules = {
  address: translatedExcept('endpoint address: an IP, or a hostname for DNS resolution', 'a unix:// address', 'for an endpoint', unix),
  ports: translated('endpoint port per service port name'),
  'ports{}': translated('endpoint port'),
  labels: translated('subset selection and telemetry labels', true),
  network: translated('endpoint network metadata (telemetry, RBAC source network)'),
  locality: translated('endpoint locality (region/zone/subzone)'),
  weight: translated('load_balancing_weight'),
  serviceAccount: translated('the endpoint identity (upstream SAN check, telemetry)'),
};

const sidecarPort = (where: string): Rules => ({
  port: translated('the listener port'),
  'port.number': translated('listener port'),
  'port.protocol': translated('HTTP connection manager or TCP proxy'),
  'port.name': translated('listener / stat names'),
  'port.targetPort': rejected(`${where}.port.targetPort`, 'deprecated by Istio; use defaultEndpoint'),
});

const isMeshBound = (spec: Record<string, unknown>): boolean => {
  const gateways = (spec['gateways'] as string[] | undefined) ?? [];
  return gateways.length === 0 || gateways.includes('mesh');
};

const virtualService: Rules = {
  'spec.hosts': translated('virtual host domains'),
  'spec.gateways': translated('which proxies get the routes (sidecars for `mesh`, gateways by name)'),
  'spec.exportTo': translated('visibility of the routes per namespace'),
  'spec.http': translated('routes of the virtual hosts'),
  'spec.http[].name': translated('route name'),
  'spec.http[].match': translated('route match (one route per match)'),
  'spec.http[].match[]': translated('see its fields', true),
  'spec.http[].match[].uri': stringMatch,
  'spec.http[].match[].scheme': stringMatch,
  'spec.http[].match[].method': stringMatch,
  'spec.http[].match[].authority': stringMatch,
  'spec.http[].match[].headers{}': stringMatch,
  'spec.http[].match[].queryParams{}': stringMatch,
  'spec.http[].match[].withoutHeaders{}': stringMatch,
  'spec.http[].match[].statPrefix': translated('route stat_prefix (sidecars and gateways)'),
  'spec.http[].route': translated('weighted_clusters', true),
  'spec.http[].route[].destination': destination,
  'spec.http[].redirect': translated('redirect action', true),
  'spec.http[].redirect.derivePort': rejected('redirect.derivePort', 'set redirect.port'),
  'spec.http[].redirect.prefixRewrite': translated('redirect prefix_rewrite (the matched prefix, or the whole path of an exact match, replaced)'),
  'spec.http[].directResponse': translated('direct_response action', true),
  'spec.http[].delegate': translated("replaced at model build by the named delegate VirtualService's routes, each intersected with this route's matches and taking its unset fields (Istio mergeHTTPRoute); a missing or not exported delegate adds no routes", true),
  'spec.http[].rewrite': translated('prefix_rewrite / host_rewrite_literal / regex_rewrite', true),
  'spec.http[].timeout': translated('route timeout'),
  'spec.http[].retries': translated('retry_policy', true),
  'spec.http[].retries.retryRemoteLocalities': rejected('retries.retryRemoteLocalities'),
  'spec.http[].retries.retryIgnorePreviousHosts': rejected('retries.retryIgnorePreviousHosts'),
  'spec.http[].fault': translated('envoy.filters.http.fault per-route config', true),
  'spec.http[].fault.delay.exponentialDelay': rejected('fault.delay.exponentialDelay', 'use fixedDelay'),
  'spec.http[].fault.abort.http2Error': rejected('fault.abort.http2Error', 'use httpStatus or grpcStatus'),
  'spec.http[].mirror': destination,
  'spec.http[].mirrors': translated('request_mirror_policies', true),
  'spec.http[].mirrors[].destination': destination,
  'spec.http[].mirrorPercent': translated('request_mirror_policies runtime_fraction'),
  'spec.http[].mirrorPercentage': translated('request_mirror_policies runtime_fraction', true),
  'spec.http[].corsPolicy': translated('envoy.filters.http.cors with a per-route CorsPolicy (sidecars and gateways; gRPC clients have no CORS filter)', true),
  'spec.http[].corsPolicy.allowOrigins': translated('allow_origin_string_match', true),
  'spec.http[].corsPolicy.allowOrigin': translated('allow_origin_string_match, exact (`*`: any origin)'),
  'spec.http[].corsPolicy.maxAge': translated('max_age in whole seconds'),
  'spec.http[].corsPolicy.unmatchedPreflights': translated('forward_not_matching_preflights (IGNORE: false)'),
  'spec.http[].headers': translated('request/response header mutations', true),
  'spec.tls': translatedExcept(
    'TLS passthrough on Gateway servers (PASSTHROUGH): filter chains by SNI to a tcp_proxy (the first route whose match applies)',
    'spec.tls',
    'on sidecars (a VirtualService bound to the mesh gateway)',
    (_v, spec) => isMeshBound(spec),
  ),
  'spec.tls[].match': translated('filter chains by SNI'),
  'spec.tls[].match[].sniHosts': translated('filter_chain_match.server_names'),
  'spec.tls[].match[].port': translated('selects the Gateway server port (its number)'),
  'spec.tls[].match[].destinationSubnets': rejected('tls match destinationSubnets', 'filter chains by destination address are not generated'),
  'spec.tls[].match[].sourceLabels': translated('at generation time: the match applies only to gateway proxies with these labels'),
  'spec.tls[].match[].gateways': translated('at generation time: the match applies only to these gateways'),
  'spec.tls[].match[].sourceNamespace': translated('at generation time: the match applies only to gateway proxies of this namespace'),
  'spec.tls[].route': translated('tcp_proxy cluster, or weighted_clusters with several destinations'),
  'spec.tls[].route[].destination': destination,
  'spec.tls[].route[].weight': translated('tcp_proxy weighted_clusters weight (weight 0: no traffic; a single destination takes all traffic)'),
  'spec.tcp': translated('tcp_proxy of Gateway servers with protocol TCP, or TLS that the router terminates, and of sidecar listeners for TCP service ports (the first route whose match applies; none: the service\'s own cluster on sidecars)'),
  'spec.tcp[].match': translated('the route applies when any of its matches does (no match: always)'),
  'spec.tcp[].match[].port': translated('at generation time: the Gateway server port or the service port of the listener'),
  'spec.tcp[].match[].gateways': translated('at generation time: the match applies only to these gateways (`mesh`: sidecars)'),
  'spec.tcp[].match[].sourceLabels': translated('at generation time: the match applies only to proxies with these labels'),
  'spec.tcp[].match[].sourceNamespace': translated('at generation time: the match applies only to proxies of this namespace'),
  'spec.tcp[].match[].destinationSubnets': rejected('tcp match destinationSubnets', 'filter chains by destination address are not generated'),
  'spec.tcp[].match[].sourceSubnet': rejected('tcp match sourceSubnet', 'filter chains by source address are not generated'),
  'spec.tcp[].route': translated('tcp_proxy cluster, or weighted_clusters with several destinations'),
  'spec.tcp[].route[].destination': destination,
  'spec.tcp[].route[].weight': translated('tcp_proxy weighted_clusters weight (weight 0: no traffic; a single destination takes all traffic)'),
};

const destinationRule: Rules = {
  'spec.host': translated('the clusters of the destination service'),
  ...mount('spec.trafficPolicy', trafficPolicy),
  'spec.subsets': translated('one cluster per subset'),
  'spec.subsets[].name': translated('cluster `outbound|<port>|<name>|<host>`'),
  'spec.subsets[].labels': translated('endpoints of the subset cluster', true),
  ...mount('spec.subsets[].trafficPolicy', trafficPolicy),
  'spec.exportTo': translated('visibility of the rule per namespace'),
  'spec.workloadSelector': translated('which proxies the rule applies to', true),
};

const gatewayTlsAllowed = new Set(['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'TLS', 'TCP']);
const gateway: Rules = {
  'spec.selector': translated('which router proxies serve the Gateway', true),
  'spec.servers': translated('listeners of the router'),
  'spec.servers[].port': translated('the listener'),
  'spec.servers[].port.number': translated('listener port'),
  'spec.servers[].port.protocol': translatedExcept(
    'HTTP(S)/gRPC: HTTP connection manager (WebSocket upgrades and HTTP/2 extended CONNECT allowed); TCP: tcp_proxy by the tcp routes; TLS: SNI filter chains, passed through by the tls routes or terminated and proxied by the tcp routes',
    'protocol',
    'other than HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, TLS or TCP',
    (v) => typeof v === 'string' && !gatewayTlsAllowed.has(v.toUpperCase()),
  ),
  'spec.servers[].port.name': translated('route configuration name'),
  'spec.servers[].port.targetPort': translated('the port the router listens on'),
  'spec.servers[].bind': rejected('bind', 'the router listens on all its addresses'),
  'spec.servers[].hosts': translated('virtual hosts and SNI server_names'),
  ...mount('spec.servers[].tls', serverTls),
  'spec.servers[].defaultEndpoint': rejected('defaultEndpoint'),
  'spec.servers[].name': translated('route configuration name'),
};

const serviceEntry: Rules = {
  'spec.hosts': translated('service hostnames (clusters, virtual hosts)'),
  'spec.addresses': translated('service VIPs (proxyless listeners, change detection)'),
  'spec.ports': translated('service ports', true),
  'spec.location': translated('MESH_EXTERNAL: no auto mTLS'),
  'spec.resolution': translated(
    'NONE/STATIC: EDS clusters; DNS: STRICT_DNS and DNS_ROUND_ROBIN: LOGICAL_DNS clusters with the endpoints inline (hostnames resolved by Envoy, IPv4; without endpoints the hosts themselves). gRPC clients get the IP endpoints over EDS',
  ),
  'spec.endpoints': translated('EDS endpoints'),
  ...mount('spec.endpoints[]', workloadEntry),
  'spec.workloadSelector': translated('selects WorkloadEntries as endpoints', true),
  'spec.exportTo': translated('visibility of the service per namespace'),
  'spec.subjectAltNames': translated('upstream TLS SAN check'),
};

const sidecar: Rules = {
  'spec.workloadSelector': translated('which sidecars the resource applies to', true),
  'spec.ingress': translated('inbound listeners'),
  ...mount('spec.ingress[]', sidecarPort('ingress')),
  'spec.ingress[].bind': translated('listener address'),
  'spec.ingress[].captureMode': translated('NONE: a listener of its own'),
  'spec.ingress[].defaultEndpoint': translated('inbound cluster endpoint (127.0.0.1:<port> or unix://)'),
  ...mount('spec.ingress[].tls', serverTls),
  'spec.ingress[].tls.httpsRedirect': rejected('ingress tls.httpsRedirect', 'it applies to Gateway servers'),
  ...mount('spec.ingress[].connectionPool', connectionPool),
  'spec.egress': translated('outbound listeners'),
  ...mount('spec.egress[]', sidecarPort('egress')),
  'spec.egress[].bind': translatedExcept('listener address', 'a unix:// bind', 'for an egress listener', unix),
  'spec.egress[].captureMode': translated('NONE: a listener bound to an address'),
  'spec.egress[].hosts': translated('which services the listener serves'),
  ...mount('spec.inboundConnectionPool', connectionPool),
  'spec.outboundTrafficPolicy': translated('PassthroughCluster or BlackHoleCluster for unknown destinations'),
  'spec.outboundTrafficPolicy.mode': translated('ALLOW_ANY / REGISTRY_ONLY'),
  'spec.outboundTrafficPolicy.egressProxy': destination,
};

const selector = translated('which workloads the policy applies to', true);
const targetRef: Rules = {
  '': translated('the Gateway or Service the policy applies to'),
  group: validatedOnly('checked against the kind; the kind, name and namespace identify the target'),
  kind: translated('target kind'),
  name: translated('target name'),
  namespace: translated('target namespace'),
};

const requestAuthentication: Rules = {
  'spec.selector': selector,
  ...mount('spec.targetRef', targetRef),
  'spec.targetRefs': translated('targets'),
  ...mount('spec.targetRefs[]', targetRef),
  'spec.jwtRules': translated('envoy.filters.http.jwt_authn providers', true),
  'spec.jwtRules[].spaceDelimitedClaims': rejected('spaceDelimitedClaims'),
};

const authorizationPolicy: Rules = {
  'spec.selector': selector,
  ...mount('spec.targetRef', targetRef),
  'spec.targetRefs': translated('targets'),
  ...mount('spec.targetRefs[]', targetRef),
  'spec.rules': translated('envoy.filters.http.rbac / network RBAC policies', true),
  'spec.action': translated('ALLOW/DENY/AUDIT: RBAC; CUSTOM: envoy.filters.http.ext_authz'),
  'spec.provider': translated('the meshConfig extension provider for CUSTOM', true),
};

const peerAuthentication: Rules = {
  'spec.selector': selector,
  'spec.mtls': translated('inbound filter chains (mTLS, plaintext or both)', true),
  'spec.portLevelMtls': translated('per-port inbound filter chains', true),
};

/** The registry: kind → field pattern → rule. */
export const fieldRegistry: Readonly<Record<IstioKind, Readonly<Rules>>> = Object.freeze({
  Gateway: gateway,
  VirtualService: virtualService,
  DestinationRule: destinationRule,
  ServiceEntry: serviceEntry,
  Sidecar: sidecar,
  WorkloadEntry: mount('spec', workloadEntry),
  PeerAuthentication: peerAuthentication,
  RequestAuthentication: requestAuthentication,
  AuthorizationPolicy: authorizationPolicy,
});

/** The parent pattern of a pattern: `a.b[]` → `a.b`, `a.b` → `a`, `a` → undefined. */
function parent(pattern: string): string | undefined {
  if (pattern.endsWith('[]') || pattern.endsWith('{}')) return pattern.slice(0, -2);
  const dot = pattern.lastIndexOf('.');
  return dot < 0 ? undefined : pattern.slice(0, dot);
}

/** The rule of a field: its own entry, else the nearest ancestor entry marked `subtree`. */
export function ruleFor(kind: IstioKind, pattern: string): { readonly rule: FieldRule; readonly from: string } | undefined {
  const rules = fieldRegistry[kind];
  const own = rules[pattern];
  if (own !== undefined) return { rule: own, from: pattern };
  for (let p = parent(pattern); p !== undefined; p = parent(p)) {
    const r = rules[p];
    if (r?.subtree === true) return { rule: r, from: p };
  }
  return undefined;
}
