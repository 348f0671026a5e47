import { describe, expect, it } from 'vitest';
import { validate } from './validate';

const meta = { name: 'example', namespace: 'default' };
const net = (kind: string, spec: unknown, extra: Record<string, unknown> = {}) => ({ apiVersion: 'networking.istio.io/v1', kind, metadata: meta, spec, ...extra });
const sec = (kind: string, spec: unknown) => ({ apiVersion: 'security.istio.io/v1', kind, metadata: meta, spec });
const dest = (host: string, subset?: string) => ({ destination: subset === undefined ? { host } : { host, subset } });
const vs = (http: unknown[], extra: Record<string, unknown> = {}) => net('VirtualService', { hosts: ['reviews'], http, ...extra });
const route = (extra: Record<string, unknown> = {}) => ({ route: [dest('reviews', 'v1')], ...extra });
const dr = (spec: Record<string, unknown>) => net('DestinationRule', { host: 'reviews', ...spec });
const server = (extra: Record<string, unknown> = {}) => ({ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'], ...extra });
const gw = (servers: unknown[]) => net('Gateway', { selector: { istio: 'ingressgateway' }, servers });
const https = (tls: Record<string, unknown>) => server({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, tls });
const se = (spec: Record<string, unknown>) => net('ServiceEntry', { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS', ...spec });
const ap = (spec: Record<string, unknown>) => sec('AuthorizationPolicy', spec);
const rule = (r: unknown) => ap({ rules: [r] });
const rl = (spec: Record<string, unknown>) => ({
  apiVersion: 'networking.aviary.dev/v1alpha1',
  kind: 'RateLimitPolicy',
  metadata: meta,
  spec: { workloadSelector: { labels: { app: 'a' } }, rules: [{ name: 'r', tokenBucket: { maxTokens: 10, fillInterval: '1s' } }], ...spec },
});
const cn = (spec: Record<string, unknown>) => ({
  apiVersion: 'networking.aviary.dev/v1alpha1',
  kind: 'Canary',
  metadata: meta,
  spec: { target: { virtualService: 'hello', route: 'hello' }, stable: { host: 'hello', subset: 'v1' }, canary: { host: 'hello', subset: 'v2' }, steps: [{ weight: 10 }, { weight: 50 }], analysis: { successRate: 99 }, ...spec },
});
const bucket = (tokenBucket: Record<string, unknown>) => rl({ rules: [{ name: 'r', tokenBucket: { maxTokens: 10, fillInterval: '1s', ...tokenBucket } }] });

/** [what, resource, expected path, expected message fragment] */
const cases: [string, unknown, string, string][] = [
  // envelope and schema
  ['unknown kind', { apiVersion: 'networking.istio.io/v1', kind: 'Ingress', metadata: meta, spec: {} }, 'kind', 'unknown kind "Ingress"'],
  ['apiVersion not served', { ...vs([route()]), apiVersion: 'networking.istio.io/v2' }, 'apiVersion', 'is not served for kind VirtualService'],
  ['security kind with networking group', { ...sec('PeerAuthentication', {}), apiVersion: 'networking.istio.io/v1' }, 'apiVersion', 'security.istio.io/v1'],
  ['v1alpha3 not served for security', { ...sec('PeerAuthentication', {}), apiVersion: 'security.istio.io/v1alpha3' }, 'apiVersion', 'not served'],
  ['unknown spec field', net('VirtualService', { hosts: ['a'], http: [route()], hostz: ['b'] }), 'spec.hostz', 'unknown field "hostz"'],
  ['unknown nested field', vs([route({ retries: { attempts: 3, perTryTimeOut: '2s' } })]), 'spec.http[0].retries.perTryTimeOut', 'unknown field "perTryTimeOut"'],
  ['unknown field in map value', vs([route({ match: [{ headers: { 'end-user': { exactly: 'jason' } } }] })]), 'spec.http[0].match[0].headers["end-user"].exactly', 'unknown field'],
  ['unknown top-level field', { ...vs([route()]), extra: 1 }, 'extra', 'unknown field "extra"'],
  ['wrong type', vs([{ route: [{ destination: { host: 'reviews' }, weight: '50' }] }]), 'spec.http[0].route[0].weight', 'must be an integer'],
  ['enum value', dr({ trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } }), 'spec.trafficPolicy.loadBalancer.simple', 'must be one of'],
  ['missing required field', net('DestinationRule', { subsets: [] }), 'spec.host', 'required field is missing'],
  ['missing metadata.name', { ...vs([route()]), metadata: { namespace: 'default' } }, 'metadata.name', 'required'],
  // metadata
  ['name not DNS-1123', { ...vs([route()]), metadata: { name: 'Reviews_Route' } }, 'metadata.name', 'RFC 1123'],
  ['bad label key', { ...vs([route()]), metadata: { name: 'a', labels: { 'bad key!': 'x' } } }, 'metadata.labels["bad key!"]', 'invalid label key'],
  ['bad label value', { ...vs([route()]), metadata: { name: 'a', labels: { app: '-x-' } } }, 'metadata.labels.app', 'invalid label value'],
  // VirtualService
  ['weights all zero', vs([{ route: [{ ...dest('reviews', 'v1'), weight: 0 }, { ...dest('reviews', 'v2'), weight: 0 }] }]), 'spec.http[0].route', 'total destination weight is 0'],
  ['route timeout 0s (Istio: at least 1ms)', vs([route({ timeout: '0s' })]), 'spec.http[0].timeout', 'at least 1ms'],
  ['CORS maxAge 0s', vs([route({ corsPolicy: { allowOrigins: [{ exact: 'https://a.example' }], maxAge: '0s' } })]), 'spec.http[0].corsPolicy.maxAge', 'at least 1ms'],
  ['HTTP pool idleTimeout 0s', dr({ trafficPolicy: { connectionPool: { http: { idleTimeout: '0s' } } } }), 'spec.trafficPolicy.connectionPool.http.idleTimeout', 'at least 1ms'],
  ['RE2 repeat count above 1000', vs([route({ match: [{ uri: { regex: 'a{1001}' } }] })]), 'spec.http[0].match[0].uri.regex', 'RE2 allows at most 1000'],
  ['sourceNamespace not a label', vs([route({ match: [{ sourceNamespace: 'Bad_NS' }] })]), 'spec.http[0].match[0].sourceNamespace', 'is invalid'],
  ['IPv4 address as a ServiceEntry host', se({ hosts: ['10.0.0.1'] }), 'spec.hosts[0]', 'cannot be all-numeric'],
  ['IPv4 address as a destination host', vs([{ route: [dest('10.0.0.1')] }]), 'spec.http[0].route[0].destination.host', 'cannot be all-numeric'],
  ['maglev without table size', dr({ trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: {} } } } }), 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'must be set'],
  ['maglev table size not prime', dr({ trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 65536 } } } } }), 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'prime'],
  ['exportTo ~ outside ServiceEntries', dr({ exportTo: ['~'] }), 'spec.exportTo[0]', 'ServiceEntries only'],
  ['service account with a wildcard', rule({ from: [{ source: { serviceAccounts: ['foo/*'] } }] }), 'spec.rules[0].from[0].source.serviceAccounts[0]', 'wildcard not allowed'],
  ['service account of three parts', rule({ from: [{ source: { serviceAccounts: ['a/b/c'] } }] }), 'spec.rules[0].from[0].source.serviceAccounts[0]', "expected format 'serviceAccount' or 'namespace/serviceAccount'"],
  ['service accounts with namespaces', rule({ from: [{ source: { serviceAccounts: ['sleep'], namespaces: ['default'] } }] }), 'spec.rules[0].from[0].source.serviceAccounts', 'cannot be set together with namespaces or principals'],
  ['unknown cipher suite', gw([https({ mode: 'SIMPLE', credentialName: 'c', cipherSuites: ['NOT-A-CIPHER'] })]), 'spec.servers[0].tls.cipherSuites[0]', 'unknown cipher suite'],
  ['JWT claim header match', vs([route({ match: [{ headers: { '@request.auth.claims.groups': { exact: 'a' } } }] })]), 'spec.http[0].match[0].headers["@request.auth.claims.groups"]', 'is not supported by Aviary yet'],
  ['negative weight', vs([{ route: [{ ...dest('reviews', 'v1'), weight: 110 }, { ...dest('reviews', 'v2'), weight: -10 }] }]), 'spec.http[0].route[1].weight', 'must not be negative'],
  ['negative weight', vs([{ route: [{ ...dest('reviews', 'v1'), weight: -10 }, { ...dest('reviews', 'v2'), weight: 110 }] }]), 'spec.http[0].route[0].weight', 'must not be negative'],
  ['tcp weights', net('VirtualService', { hosts: ['db'], tcp: [{ route: [dest('db', 'a'), dest('db', 'b')] }] }), 'spec.tcp[0].route', 'total destination weight is 0'],
  ['StringMatch with two kinds', vs([route({ match: [{ uri: { exact: '/a', prefix: '/b' } }] })]), 'spec.http[0].match[0].uri', 'only one of exact, prefix or regex'],
  ['empty StringMatch', vs([route({ match: [{ uri: {} }] })]), 'spec.http[0].match[0].uri', 'one of exact, prefix or regex must be set'],
  ['regex does not compile', vs([route({ match: [{ uri: { regex: '^/api/(v1' } }] })]), 'spec.http[0].match[0].uri.regex', 'invalid regex'],
  ['RE2 rejects lookahead', vs([route({ match: [{ headers: { 'x-id': { regex: '(?!admin).*' } } }] })]), 'spec.http[0].match[0].headers["x-id"].regex', 'lookaround'],
  ['route and redirect', vs([route({ redirect: { uri: '/x' } })]), 'spec.http[0].redirect', 'cannot contain both route and redirect'],
  ['redirect uri and prefixRewrite', vs([{ redirect: { uri: '/x', prefixRewrite: '/y' } }]), 'spec.http[0].redirect.prefixRewrite', 'only one of uri and prefixRewrite'],
  ['redirect and directResponse', vs([{ redirect: { uri: '/x' }, directResponse: { status: 200 } }]), 'spec.http[0].directResponse', 'cannot contain both redirect and directResponse'],
  ['no action', vs([{ match: [{ uri: { prefix: '/' } }] }]), 'spec.http[0]', 'must have one of route, redirect, directResponse or delegate'],
  ['delegate and route', vs([route({ delegate: { name: 'd' } })]), 'spec.http[0].delegate', 'cannot contain both route and delegate'],
  ['delegate and redirect', vs([{ redirect: { uri: '/x' }, delegate: { name: 'd' } }]), 'spec.http[0].delegate', 'cannot contain both redirect and delegate'],
  ['delegate without a name', vs([{ delegate: { namespace: 'ns' } }]), 'spec.http[0].delegate.name', 'delegate name is required'],
  ['delegate delegating again', net('VirtualService', { http: [{ delegate: { name: 'd' } }] }), 'spec.http[0].delegate', 'cannot delegate further'],
  ['delegate with gateways', net('VirtualService', { gateways: ['gw'], http: [route()] }), 'spec.gateways', 'must have no gateways'],
  ['delegate with tcp routes', net('VirtualService', { tcp: [{ route: [dest('db')] }] }), 'spec.tcp', 'must have no tcp routes'],
  ['invalid redirect code', vs([{ redirect: { uri: '/x', redirectCode: 200 } }]), 'spec.http[0].redirect.redirectCode', 'not a valid redirect code'],
  ['directResponse status range', vs([{ directResponse: { status: 600 } }]), 'spec.http[0].directResponse.status', 'range [200, 599]'],
  ['timeout below 1ms', vs([route({ timeout: '0.5ms' })]), 'spec.http[0].timeout', 'at least 1ms'],
  ['timeout not a duration', vs([route({ timeout: '10 seconds' })]), 'spec.http[0].timeout', 'invalid duration'],
  ['perTryTimeout invalid', vs([route({ retries: { attempts: 2, perTryTimeout: '2x' } })]), 'spec.http[0].retries.perTryTimeout', 'invalid duration'],
  ['negative attempts', vs([route({ retries: { attempts: -1 } })]), 'spec.http[0].retries.attempts', 'cannot be negative'],
  ['unknown retryOn', vs([route({ retries: { attempts: 2, retryOn: '5xx,sometimes' } })]), 'spec.http[0].retries.retryOn', '"sometimes" is not a valid retryOn policy'],
  ['fault percentage out of range', vs([route({ fault: { delay: { fixedDelay: '5s', percentage: { value: 120 } } } })]), 'spec.http[0].fault.delay.percentage.value', 'range [0, 100]'],
  ['abort status out of range', vs([route({ fault: { abort: { httpStatus: 99 } } })]), 'spec.http[0].fault.abort.httpStatus', 'invalid abort http status'],
  ['host wildcard not in first label', net('VirtualService', { hosts: ['foo.*'], http: [route()] }), 'spec.hosts[0]', 'label "*" invalid'],
  ['wildcard * on mesh gateway', net('VirtualService', { hosts: ['*'], http: [route()] }), 'spec.hosts[0]', 'not allowed for virtual services bound to the mesh gateway'],
  ['destination host *', vs([{ route: [dest('*')] }]), 'spec.http[0].route[0].destination.host', 'invalid destination host *'],
  ['destination port range', vs([{ route: [{ destination: { host: 'reviews', port: { number: 70000 } } }] }]), 'spec.http[0].route[0].destination.port.number', 'range 1..65535'],
  ['subset not DNS-1123', vs([{ route: [dest('reviews', 'V1_x')] }]), 'spec.http[0].route[0].destination.subset', 'DNS-1123'],
  ['match port range', vs([route({ match: [{ port: 70000 }] })]), 'spec.http[0].match[0].port', 'range 1..65535'],
  ['bad gateway reference', vs([route()], { gateways: ['a/b/c'] }), 'spec.gateways[0]', 'invalid gateway name'],
  ['no routes at all', net('VirtualService', { hosts: ['reviews'] }), 'spec', 'http, tcp or tls must be provided'],
  ['tcp subnet not a CIDR', net('VirtualService', { hosts: ['db'], tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/33'] }], route: [dest('db')] }] }), 'spec.tcp[0].match[0].destinationSubnets[0]', 'invalid IP address or CIDR'],
  ['sni not within hosts', net('VirtualService', { hosts: ['*.bookinfo.com'], gateways: ['gw'], tls: [{ match: [{ sniHosts: ['login.other.com'] }], route: [dest('login')] }] }), 'spec.tls[0].match[0].sniHosts[0]', 'not a compatible subset'],
  ['mirror and mirrors', vs([route({ mirror: { host: 'a' }, mirrors: [{ destination: { host: 'b' } }] })]), 'spec.http[0].mirrors', 'both mirror and mirrors'],
  ['pseudo-header operation', vs([route({ headers: { request: { set: { ':path': '/x' } } } })]), 'spec.http[0].headers.request.set[":path"]', 'header cannot have ":" prefix'],
  ['Host set on a response', vs([route({ headers: { response: { set: { host: 'x' } } } })]), 'spec.http[0].headers.response.set.host', 'cannot set Host header'],
  ['Host removed', vs([route({ headers: { request: { remove: ['Host'] } } })]), 'spec.http[0].headers.request.remove[0]', 'cannot set Host header'],
  ['empty header name', vs([route({ headers: { request: { add: { '': 'x' } } } })]), 'spec.http[0].headers.request.add[""]', 'header name cannot be empty'],
  ['header value control character', vs([route({ headers: { request: { set: { 'x-a': 'a\u0001b' } } } })]), 'spec.http[0].headers.request.set["x-a"]', 'no control characters'],
  // DestinationRule
  ['simple and consistentHash', dr({ trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN', consistentHash: { useSourceIp: true } } } }), 'spec.trafficPolicy.loadBalancer', 'only one of simple or consistentHash'],
  ['consistentHash without key', dr({ trafficPolicy: { loadBalancer: { consistentHash: { minimumRingSize: 1024 } } } }), 'spec.trafficPolicy.loadBalancer.consistentHash', 'exactly one of httpHeaderName'],
  ['duplicate subset', dr({ subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v1', labels: { version: 'v2' } }] }), 'spec.subsets[1].name', 'duplicate subset name "v1"'],
  ['MUTUAL without client cert', dr({ trafficPolicy: { tls: { mode: 'MUTUAL', privateKey: '/k.pem' } } }), 'spec.trafficPolicy.tls.clientCertificate', 'client certificate required for mutual tls'],
  ['ISTIO_MUTUAL with files', dr({ trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', caCertificates: '/ca.pem' } } }), 'spec.trafficPolicy.tls.caCertificates', 'cannot be set with TLS mode ISTIO_MUTUAL'],
  ['maxEjectionPercent range', dr({ trafficPolicy: { outlierDetection: { maxEjectionPercent: 150 } } }), 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'range [0, 100]'],
  ['connectTimeout invalid', dr({ trafficPolicy: { connectionPool: { tcp: { connectTimeout: '0s' } } } }), 'spec.trafficPolicy.connectionPool.tcp.connectTimeout', 'at least 1ms'],
  ['locality weights', dr({ trafficPolicy: { loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 60, 'b/*': 30 } }] } } } }), 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to', 'total locality weight must be 100'],
  ['portLevelSettings without port', dr({ trafficPolicy: { portLevelSettings: [{ loadBalancer: { simple: 'RANDOM' } }] } }), 'spec.trafficPolicy.portLevelSettings[0].port', 'must have a port number'],
  ['empty trafficPolicy', dr({ trafficPolicy: {} }), 'spec.trafficPolicy', 'at least one field'],
  ['exportTo star with others', dr({ exportTo: ['*', 'foo'] }), 'spec.exportTo', 'must be the only entry'],
  ['workloadSelector is matchLabels (Istio)', dr({ workloadSelector: { labels: { app: 'a' } } }), 'spec.workloadSelector.labels', 'unknown field "labels"'],
  ['workloadSelector with exportTo', dr({ workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['*'] }), 'spec.exportTo', 'can only be "."'],
  ['workloadSelector wildcard', dr({ workloadSelector: { matchLabels: { app: 'web-*' } } }), 'spec.workloadSelector.matchLabels.app', 'wildcard is not supported in selector'],
  ['workloadSelector empty key', net('Sidecar', { workloadSelector: { labels: { '': 'a' } }, egress: [{ hosts: ['./*'] }] }), 'spec.workloadSelector.labels[""]', 'empty key'],
  // Gateway
  ['gateway host namespace/host form', gw([server({ hosts: ['a/b/c.com'] })]), 'spec.servers[0].hosts[0]', 'namespace/dnsName'],
  ['gateway host bad namespace', gw([server({ hosts: ['Bad_NS/foo.com'] })]), 'spec.servers[0].hosts[0]', 'invalid namespace value'],
  ['gateway host wildcard in middle', gw([server({ hosts: ['ns/foo.*.com'] })]), 'spec.servers[0].hosts[0]', 'invalid'],
  ['gateway port range', gw([server({ port: { number: 65536, name: 'http', protocol: 'HTTP' } })]), 'spec.servers[0].port.number', 'range 1..65535'],
  ['gateway protocol', gw([server({ port: { number: 80, name: 'http', protocol: 'HTTP3' } })]), 'spec.servers[0].port.protocol', 'invalid protocol'],
  ['gateway port name', gw([server({ port: { number: 80, protocol: 'HTTP' } })]), 'spec.servers[0].port.name', 'port name must be set'],
  ['HTTPS without tls', gw([server({ port: { number: 443, name: 'https', protocol: 'HTTPS' } })]), 'spec.servers[0].tls', 'must have TLS settings'],
  ['SIMPLE without certificate', gw([https({ mode: 'SIMPLE', privateKey: '/k.pem' })]), 'spec.servers[0].tls.serverCertificate', 'SIMPLE TLS requires a server certificate'],
  ['MUTUAL without CA', gw([https({ mode: 'MUTUAL', serverCertificate: '/c.pem', privateKey: '/k.pem' })]), 'spec.servers[0].tls.caCertificates', 'requires a client CA bundle'],
  ['PASSTHROUGH with credential', gw([https({ mode: 'PASSTHROUGH', credentialName: 'x' })]), 'spec.servers[0].tls.credentialName', 'cannot be set with TLS mode PASSTHROUGH'],
  ['no servers', net('Gateway', { selector: { istio: 'ingressgateway' } }), 'spec.servers', 'at least one server'],
  ['duplicate port names', gw([server(), server({ port: { number: 81, name: 'http', protocol: 'HTTP' } })]), 'spec.servers[1].port.name', 'port names in servers must be unique'],
  // ServiceEntry / WorkloadEntry
  ['STATIC endpoint not an IP', se({ resolution: 'STATIC', endpoints: [{ address: 'db.example.com' }] }), 'spec.endpoints[0].address', 'not a valid IP address'],
  ['address not a CIDR', se({ addresses: ['10.0.0.0/40'] }), 'spec.addresses[0]', 'invalid address'],
  ['service entry host *', se({ hosts: ['*'] }), 'spec.hosts[0]', 'invalid host *'],
  ['duplicate port number', se({ ports: [{ number: 443, name: 'https', protocol: 'TLS' }, { number: 443, name: 'tls', protocol: 'TLS' }] }), 'spec.ports[1].number', 'already defined'],
  ['endpoints and workloadSelector', se({ resolution: 'STATIC', workloadSelector: { labels: { app: 'x' } }, endpoints: [{ address: '1.1.1.1' }] }), 'spec.endpoints', 'only one of workloadSelector or endpoints'],
  ['endpoint port name unknown', se({ resolution: 'DNS', endpoints: [{ address: 'a.example.com', ports: { http: 8080 } }] }), 'spec.endpoints[0].ports.http', 'not defined by the service entry'],
  ['NONE with endpoints', se({ resolution: 'NONE', endpoints: [{ address: '1.1.1.1' }] }), 'spec.endpoints', 'resolution type NONE'],
  ['port name required', se({ ports: [{ number: 443, protocol: 'TLS' }] }), 'spec.ports[0].name', 'required field is missing'],
  ['workload entry without address', net('WorkloadEntry', { labels: { app: 'vm' } }), 'spec.address', 'address is required'],
  ['workload entry port range', net('WorkloadEntry', { address: '1.2.3.4', ports: { http: 0 } }), 'spec.ports.http', 'range 1..65535'],
  // Sidecar
  ['egress host without namespace', net('Sidecar', { egress: [{ hosts: ['foo.com'] }] }), 'spec.egress[0].hosts[0]', 'namespace/dnsName'],
  ['egress without hosts', net('Sidecar', { egress: [{ hosts: [] }] }), 'spec.egress[0].hosts', 'at least one host'],
  ['catch-all egress not last', net('Sidecar', { egress: [{ hosts: ['./*'] }, { port: { number: 80, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }] }), 'spec.egress[0]', 'must be the last listener'],
  ['empty sidecar', net('Sidecar', {}), 'spec', 'empty configuration'],
  ['egressProxy with REGISTRY_ONLY', net('Sidecar', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'proxy', port: { number: 443 } } } }), 'spec.outboundTrafficPolicy.egressProxy', 'only with ALLOW_ANY'],
  // PeerAuthentication
  ['portLevelMtls without selector', sec('PeerAuthentication', { mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }), 'spec.portLevelMtls', 'portLevelMtls requires selector'],
  ['portLevelMtls port range', sec('PeerAuthentication', { selector: { matchLabels: { app: 'a' } }, portLevelMtls: { '0': { mode: 'DISABLE' } } }), 'spec.portLevelMtls["0"]', 'range 1..65535'],
  ['mtls mode enum', sec('PeerAuthentication', { mtls: { mode: 'ON' } }), 'spec.mtls.mode', 'must be one of UNSET, DISABLE, PERMISSIVE, STRICT'],
  // AuthorizationPolicy
  ['CUSTOM without provider', ap({ action: 'CUSTOM', rules: [{}] }), 'spec.provider', 'action CUSTOM requires a provider'],
  ['provider with ALLOW', ap({ action: 'ALLOW', provider: { name: 'x' }, rules: [{}] }), 'spec.provider', 'only be used with the CUSTOM action'],
  ['action enum', ap({ action: 'REJECT' }), 'spec.action', 'must be one of ALLOW, DENY, AUDIT, CUSTOM'],
  ['principal with spiffe prefix', rule({ from: [{ source: { principals: ['spiffe://cluster.local/ns/a/sa/b'] } }] }), 'spec.rules[0].from[0].source.principals[0]', 'spiffe:// prefix'],
  ['wildcard in the middle', rule({ from: [{ source: { principals: ['cluster.local/ns/*/sa/b'] } }] }), 'spec.rules[0].from[0].source.principals[0]', 'only supported as prefix, suffix'],
  ['empty source', rule({ from: [{ source: {} }] }), 'spec.rules[0].from[0].source', '`from.source` must not be empty'],
  ['bad port', rule({ to: [{ operation: { ports: ['http'] } }] }), 'spec.rules[0].to[0].operation.ports[0]', 'invalid port'],
  ['bad ipBlock', rule({ from: [{ source: { ipBlocks: ['1.2.3.4/99'] } }] }), 'spec.rules[0].from[0].source.ipBlocks[0]', 'invalid IP address or CIDR'],
  ['unknown condition key', rule({ when: [{ key: 'request.foo', values: ['x'] }] }), 'spec.rules[0].when[0].key', 'unknown attribute'],
  ['experimental condition key refused', rule({ when: [{ key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]'] }] }), 'spec.rules[0].when[0].key', 'is not supported by Aviary'],
  ['path template refused', rule({ to: [{ operation: { paths: ['/foo/{*}/bar'] } }] }), 'spec.rules[0].to[0].operation.paths[0]', 'path template'],
  ['GatewayClass target refused', ap({ targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }], rules: [{}] }), 'spec.targetRefs[0].kind', 'is not supported'],
  ['target group mismatch', ap({ targetRef: { kind: 'ServiceEntry', group: 'gateway.networking.k8s.io', name: 'x' }, rules: [{}] }), 'spec.targetRef.group', 'does not serve kind ServiceEntry'],
  ['condition without values', rule({ when: [{ key: 'source.namespace' }] }), 'spec.rules[0].when[0]', 'at least one of values or notValues'],
  ['selector and targetRefs', ap({ selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Gateway', name: 'gw' }] }), 'spec.targetRefs', 'only one of targetRefs or selector'],
  // RequestAuthentication
  ['jwt issuer and jwksUri empty', sec('RequestAuthentication', { jwtRules: [{ issuer: '' }] }), 'spec.jwtRules[0].issuer', 'issuer or jwksUri must be set'],
  ['jwksUri not a URL', sec('RequestAuthentication', { jwtRules: [{ issuer: 'i', jwksUri: 'not a url' }] }), 'spec.jwtRules[0].jwksUri', 'invalid jwksUri'],
  ['jwt timeout', sec('RequestAuthentication', { jwtRules: [{ issuer: 'i', jwksUri: 'https://i.example/jwks', timeout: 'soon' }] }), 'spec.jwtRules[0].timeout', 'invalid duration'],
  ['jwt rule with both key sources', sec('RequestAuthentication', { jwtRules: [{ issuer: 'i', jwks: '{"keys":[]}', jwksUri: 'https://i.example/jwks' }] }), 'spec.jwtRules[0].jwksUri', 'only one of jwks or jwksUri'],
  ['jwt rule without keys and an issuer that is not a URL', sec('RequestAuthentication', { jwtRules: [{ issuer: 'i' }] }), 'spec.jwtRules[0].issuer', 'OpenID Connect discovery'],
  ['spaceDelimitedClaims refused', sec('RequestAuthentication', { jwtRules: [{ issuer: 'i', jwksUri: 'https://i.example/jwks', spaceDelimitedClaims: ['scope'] }] }), 'spec.jwtRules[0].spaceDelimitedClaims', 'not supported'],
  ['empty cookie name', sec('RequestAuthentication', { jwtRules: [{ issuer: 'i', jwksUri: 'https://i.example/jwks', fromCookies: [''] }] }), 'spec.jwtRules[0].fromCookies[0]', 'must not be empty'],
  // RateLimitPolicy
  ['selector and targetRefs both', rl({ targetRefs: [{ kind: 'Gateway', name: 'gw' }] }), 'spec', 'exactly one of workloadSelector or targetRefs'],
  ['fillInterval below 50ms', bucket({ fillInterval: '10ms' }), 'spec.rules[0].tokenBucket.fillInterval', 'at least 50ms'],
  ['tokensPerFill above maxTokens', bucket({ tokensPerFill: 20 }), 'spec.rules[0].tokenBucket.tokensPerFill', 'between 1 and maxTokens'],
  ['maxTokens zero', bucket({ maxTokens: 0 }), 'spec.rules[0].tokenBucket.maxTokens', 'at least 1'],
  // Canary
  ['canary route and routeIndex', cn({ target: { virtualService: 'hello', route: 'a', routeIndex: 0 } }), 'spec.target', 'exactly one of route or routeIndex'],
  ['canary same as stable', cn({ canary: { host: 'hello', subset: 'v1' } }), 'spec.canary', 'must differ from stable'],
  ['canary virtualService and httpRoute', cn({ target: { virtualService: 'hello', httpRoute: 'hello', route: 'a' } }), 'spec.target', 'exactly one of virtualService or httpRoute'],
  ['canary without a target kind', cn({ target: { route: 'a' } }), 'spec.target', 'exactly one of virtualService or httpRoute'],
  ['canary httpRoute with subsets', cn({ target: { httpRoute: 'hello', route: 'a' } }), 'spec.stable.subset', 'backendRef names a Service'],
  ['canary wildcard host', cn({ canary: { host: '*.example.com' } }), 'spec.canary.host', 'must not be a wildcard'],
  ['canary steps not increasing', cn({ steps: [{ weight: 50 }, { weight: 20 }] }), 'spec.steps[1].weight', 'greater than the previous'],
  ['canary step weight above 100', cn({ steps: [{ weight: 120 }] }), 'spec.steps[0].weight', 'range [1, 100]'],
  ['canary steps and stepWeight', cn({ stepWeight: 10, maxWeight: 50 }), 'spec', 'exactly one of steps or stepWeight'],
  ['canary stepWeight above maxWeight', cn({ steps: undefined, stepWeight: 60, maxWeight: 50 }), 'spec.stepWeight', 'must not exceed maxWeight'],
  ['canary maxWeight missing', cn({ steps: undefined, stepWeight: 10 }), 'spec.maxWeight', 'required with stepWeight'],
  ['canary interval too short', cn({ analysis: { interval: '100ms' } }), 'spec.analysis.interval', 'at least 1000ms'],
  ['canary successRate over 100', cn({ analysis: { successRate: 101 } }), 'spec.analysis.successRate', 'percentage in [0, 100]'],
  ['canary failedChecksLimit zero', cn({ analysis: { successRate: 99, failedChecksLimit: 0 } }), 'spec.analysis.failedChecksLimit', 'at least 1'],
  ['canary latency ratio below 1', cn({ analysis: { compareToStable: { maxLatencyRatio: 0.5 } } }), 'spec.analysis.compareToStable.maxLatencyRatio', 'at least 1'],
  ['canary failure policy', cn({ failurePolicy: 'Explode' }), 'spec.failurePolicy', 'must be one of'],
  ['rate limit targetRef kind', rl({ workloadSelector: undefined, targetRefs: [{ kind: 'Deployment', name: 'x' }] }), 'spec.targetRefs[0].kind', 'must be one of'],
];

describe('invalid resources are rejected at the expected path', () => {
  it('has at least 45 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(45);
  });

  it.each(cases)('%s', (_what, resource, path, message) => {
    const { errors } = validate(JSON.parse(JSON.stringify(resource)));
    const atPath = errors.filter((e) => e.path === path);
    expect(atPath, `errors: ${JSON.stringify(errors)}`).not.toEqual([]);
    expect(atPath.map((e) => e.message).join('\n')).toContain(message);
  });
});

describe('validate', () => {
  it('reports schema errors only, without running semantic rules on malformed input', () => {
    const { errors } = validate(vs([{ route: [{ destination: { host: 'reviews' }, weight: 'x' }, { destination: { host: '*' } }] }]));
    expect(errors).toEqual([{ path: 'spec.http[0].route[0].weight', message: 'must be an integer, got string "x"' }]);
  });

  it('warns (not errors) on principals not in SPIFFE path form', () => {
    const result = validate(rule({ from: [{ source: { principals: ['sleep'] } }] }));
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([{ path: 'spec.rules[0].from[0].source.principals[0]', message: 'principal "sleep" is not of the form <trust-domain>/ns/<namespace>/sa/<service-account>' }]);
  });

  it('is deterministic', () => {
    const bad = vs([{ route: [{ ...dest('*'), weight: 10 }, { ...dest('reviews', 'V2'), weight: 10 }], timeout: 'x' }]);
    expect(validate(bad)).toEqual(validate(JSON.parse(JSON.stringify(bad))));
  });

  it('rejects non-objects', () => {
    expect(validate('hello').errors).toEqual([{ path: '', message: 'resource must be an object' }]);
    expect(validate({ apiVersion: 'networking.istio.io/v1' }).errors[0]?.path).toBe('kind');
  });
});
