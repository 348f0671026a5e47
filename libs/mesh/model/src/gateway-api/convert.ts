import type {
  GatewaySpec,
  GatewayClassSpec,
  GRPCRouteSpec,
  HTTPRouteSpec,
  KubernetesGatewaySpec,
  LabelSelector,
  Listener,
  ReferenceGrantSpec,
  Server,
  TCPRouteSpec,
  TLSRouteSpec,
  VirtualServiceSpec,
} from '@aviary/mesh-api';
import { validate } from '@aviary/mesh-validation';
import type { ConfigEntry, GatewayEntry, VirtualServiceEntry } from '../types';
import { compareStrings, deepFreeze, hostMatches, keyOf } from '../util';
import { byPrecedence, grpcRuleRoutes, httpRuleRoutes, type OrderedRoute, type ResolvedBackend, type RuleContext } from './rules';
import { isL4RouteKind, l4Server, l4VirtualService, listenerRouteKinds, type AttachedL4Route } from './l4';
import { condition, type ComputedStatus, type Condition } from './status';

/**
 * The Gateway API front end of the routing model: GatewayClasses, Gateways, HTTPRoutes,
 * GRPCRoutes, TCPRoutes, TLSRoutes and ReferenceGrants become Istio Gateways and VirtualServices (as Istio's own
 * controller does), which the translators turn into xDS like any other; plus the status each
 * object should carry. Pure and deterministic.
 *
 * - Classes: a GatewayClass whose controllerName is Aviary's (or Istio's, so Istio's samples
 *   work unchanged) is accepted. The classes `aviary` and `istio` exist implicitly, as istiod's
 *   built-in class does, until a GatewayClass object of that name is applied.
 * - Proxies: every listener becomes one Istio Gateway server, selected by the label
 *   `gateway.networking.k8s.io/gateway-name: <Gateway name>` (the label Istio puts on the
 *   proxies of a Gateway), or, when pilot is given `gatewayApiSelector` (the local launcher
 *   gives its ingress's `istio=ingressgateway`), by those labels for every Gateway.
 * - Routes: one VirtualService per (listener, hostname) for Gateway parents, one per Service
 *   host for mesh (GAMMA) parents, with the routes of every attached HTTPRoute/GRPCRoute in the
 *   Gateway API's precedence order.
 */

export const AVIARY_CONTROLLER = 'aviary.dev/gateway-controller';
/** Istio's controller name, served too: Istio's Gateway API samples name class `istio`. */
export const ISTIO_CONTROLLER = 'istio.io/gateway-controller';
export const controllerNames: readonly string[] = [AVIARY_CONTROLLER, ISTIO_CONTROLLER];
export const builtinClasses: Readonly<Record<string, string>> = { aviary: AVIARY_CONTROLLER, istio: ISTIO_CONTROLLER };
/** The proxy label a Gateway selects. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const GROUP = 'gateway.networking.k8s.io';

export interface GatewayApiInput {
  readonly classes: readonly ConfigEntry<GatewayClassSpec>[];
  readonly gateways: readonly ConfigEntry<KubernetesGatewaySpec>[];
  readonly httpRoutes: readonly ConfigEntry<HTTPRouteSpec>[];
  readonly grpcRoutes: readonly ConfigEntry<GRPCRouteSpec>[];
  /** TCPRoutes and TLSRoutes (l4.ts); absent: none. */
  readonly tcpRoutes?: readonly ConfigEntry<TCPRouteSpec>[];
  readonly tlsRoutes?: readonly ConfigEntry<TLSRouteSpec>[];
  readonly grants: readonly ConfigEntry<ReferenceGrantSpec>[];
  /** Whether a Service host (`name.ns.svc.<suffix>`) exists in the registry, and its ports. */
  readonly servicePorts: (host: string) => readonly number[] | undefined;
  readonly domainSuffix: string;
  /** Labels of the proxies serving every Gateway (MeshOptions.gatewayApiSelector); empty: by gateway name. */
  readonly proxySelector?: Readonly<Record<string, string>>;
  /**
   * The labels of a namespace, for `allowedRoutes.namespaces.from: Selector` (pilot watches
   * Namespaces in Kubernetes mode). Undefined or absent: the namespace has no labels (local mode
   * has no Namespace objects, so only a selector that matches an empty label set admits a route).
   */
  readonly namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined;
  /**
   * Why Secret `namespace/name` cannot serve a listener's certificate (absent, not a TLS
   * credential, broken), undefined when it can. Absent: pilot reads no Secrets, so certificate
   * references are checked only against ReferenceGrants.
   */
  readonly certificateProblem?: (namespace: string, name: string) => string | undefined;
}

export interface GatewayApiOutput {
  readonly gateways: readonly GatewayEntry[];
  readonly virtualServices: readonly VirtualServiceEntry[];
  /** The status every Gateway API object of Aviary's classes should have, sorted by ref. */
  readonly statuses: readonly ComputedStatus[];
  /** The accepted Gateways of Aviary's classes and their ports: what automated deployment runs proxies for. */
  readonly deployments: readonly GatewayDeployment[];
}

/** A Gateway the proxies of automated deployment serve (pilot's deployer in Kubernetes mode). */
export interface GatewayDeployment {
  readonly namespace: string;
  readonly name: string;
  readonly className: string;
  /** One per distinct listener port: the Service port, and the port the proxy binds it at (`bindPorts`). */
  readonly ports: readonly { readonly name: string; readonly port: number; readonly targetPort: number; readonly protocol: string }[];
  /** The Gateway's `spec.infrastructure`: labels and annotations for every deployed object, and the ConfigMap of overlays. */
  readonly infrastructure?: KubernetesGatewaySpec['infrastructure'];
}

type Entry = ConfigEntry<unknown> & { readonly generation?: number };
const gen = (e: Entry) => e.generation ?? 0;

function manifestErrors(apiKind: string, e: ConfigEntry<unknown>, namespaced = true): string[] {
  // TCPRoute/TLSRoute: checked by v1alpha2's (laxer) limits, whichever version the object was written in; the store
  // validated it by its own version when it was applied, and a missing TLSRoute hostname is reported at attachment.
  const apiVersion = apiKind === 'ReferenceGrant' ? `${GROUP}/v1beta1` : isL4RouteKind(apiKind) ? `${GROUP}/v1alpha2` : `${GROUP}/v1`;
  const metadata = namespaced ? { name: e.name, namespace: e.namespace } : { name: e.name };
  return validate({ apiVersion, kind: apiKind, metadata, spec: e.spec }).errors.map((f) => `${f.path}: ${f.message}`);
}

interface BoundListener {
  readonly gateway: ConfigEntry<KubernetesGatewaySpec>;
  readonly listener: Listener;
  /** The Istio Gateway generated for this listener (`namespace/name`). */
  readonly istioGateway: string;
  attached: number;
  /** False for a listener whose references do not resolve: routes attach, nothing is served. */
  readonly programmed: boolean;
}

function istioGatewayName(gateway: string, listener: string): string {
  return `${gateway}-${listener}-istio-autogenerated-k8s-gateway`;
}

/** Listener hostname ∩ route hostnames (Gateway API rules); undefined when they do not intersect. */
function effectiveHosts(listenerHost: string | undefined, routeHosts: readonly string[] | undefined): string[] | undefined {
  const l = listenerHost ?? '*';
  if (routeHosts === undefined || routeHosts.length === 0) return [l];
  const out = new Set<string>();
  for (const h of routeHosts) {
    if (hostMatches(l, h)) out.add(h);
    else if (hostMatches(h, l)) out.add(l);
  }
  return out.size === 0 ? undefined : [...out].sort(compareStrings);
}

/**
 * Listener isolation (GEP-1713 / GatewayHTTPListenerIsolation): a request goes only to routes of the
 * most specific listener on its port whose hostname matches it, so a route's host is dropped from a
 * listener when another listener of the same Gateway and port, with a more specific hostname,
 * covers all of that host (`*.example.com` and `abc.foo.example.com` on a route of the listener
 * without hostname, when listeners `*.example.com` and `abc.foo.example.com` exist). A host only
 * partly covered stays: Envoy's virtual host choice (longest match first) already gives the more
 * specific listener's hosts to its own routes.
 */
function isolatedHosts(b: BoundListener, hosts: readonly string[], listeners: readonly BoundListener[]): string[] {
  const own = b.listener.hostname ?? '*';
  const narrower = listeners
    .filter((o) => o !== b && o.gateway === b.gateway && o.listener.port === b.listener.port)
    .map((o) => o.listener.hostname)
    .filter((h): h is string => h !== undefined && h !== own && hostMatches(own, h));
  return hosts.filter((h) => !narrower.some((n) => hostMatches(n, h)));
}

function granted(grants: readonly ConfigEntry<ReferenceGrantSpec>[], from: { kind: string; namespace: string }, to: { group: string; kind: string; namespace: string; name: string }): boolean {
  return grants.some(
    (g) =>
      g.namespace === to.namespace &&
      g.spec.from.some((f) => f.group === GROUP && f.kind === from.kind && f.namespace === from.namespace) &&
      g.spec.to.some((t) => t.group === to.group && t.kind === to.kind && (t.name === undefined || t.name === to.name)),
  );
}

type RouteKind = 'HTTPRoute' | 'GRPCRoute' | 'TCPRoute' | 'TLSRoute';
interface AnyRoute {
  readonly kind: RouteKind;
  readonly entry: ConfigEntry<HTTPRouteSpec | GRPCRouteSpec | TCPRouteSpec | TLSRouteSpec>;
}

function routeHostnames(r: AnyRoute): readonly string[] | undefined {
  return 'hostnames' in r.entry.spec ? r.entry.spec.hostnames : undefined;
}

export function convertGatewayApi(input: GatewayApiInput): GatewayApiOutput {
  const statuses: ComputedStatus[] = [];
  const istioGateways: GatewayEntry[] = [];
  const deployments: GatewayDeployment[] = [];
  const virtualServices: VirtualServiceEntry[] = [];

  // Classes: explicit objects, then the built-ins not overridden.
  const ourClasses = new Set<string>();
  for (const c of input.classes) {
    if (!controllerNames.includes(c.spec.controllerName)) continue;
    const errors = manifestErrors('GatewayClass', c, false);
    if (errors.length === 0) ourClasses.add(c.name);
    const accepted = errors.length === 0 ? condition('Accepted', true, 'Accepted', 'Handled by Aviary', gen(c)) : condition('Accepted', false, 'InvalidParameters', errors.join('; '), gen(c));
    statuses.push({ ref: { kind: 'GatewayClass', namespace: c.namespace, name: c.name }, status: { conditions: [accepted] } });
  }
  for (const [name] of Object.entries(builtinClasses)) if (!input.classes.some((c) => c.name === name)) ourClasses.add(name);

  // Gateways and their listeners.
  const listeners: BoundListener[] = [];
  const gatewayStatus = new Map<string, { entry: ConfigEntry<KubernetesGatewaySpec>; accepted: Condition; listenerConds: Map<string, Condition[]> }>();
  for (const g of input.gateways) {
    if (!ourClasses.has(g.spec.gatewayClassName)) continue;
    const listenerConds = new Map<string, Condition[]>();
    const key = `${g.namespace}/${g.name}`;
    // A listener of a protocol Aviary does not serve is not accepted (UnsupportedProtocol); the
    // Gateway is, with its other listeners (reason ListenersNotValid), as the spec asks.
    const unsupported = g.spec.listeners.filter((l) => !SERVED_PROTOCOLS.includes(l.protocol));
    for (const l of unsupported) {
      const why = `protocol ${l.protocol} is not supported by Aviary (HTTP, HTTPS, TLS, TCP)`;
      listenerConds.set(l.name, [condition('Accepted', false, 'UnsupportedProtocol', why, gen(g)), condition('Programmed', false, 'Invalid', why, gen(g))]);
    }
    const served = unsupported.length === 0 ? g : { ...g, spec: { ...g.spec, listeners: g.spec.listeners.filter((l) => SERVED_PROTOCOLS.includes(l.protocol)) } };
    if (served.spec.listeners.length === 0) {
      gatewayStatus.set(key, { entry: g, accepted: condition('Accepted', false, 'ListenersNotValid', 'No listener has a protocol Aviary serves (HTTP, HTTPS, TLS, TCP)', gen(g)), listenerConds });
      continue;
    }
    const errors = manifestErrors('Gateway', served);
    if (errors.length > 0) {
      gatewayStatus.set(key, { entry: g, accepted: condition('Accepted', false, 'Invalid', errors.join('; '), gen(g)), listenerConds: new Map() });
      continue;
    }
    // Automated deployment reads parameters from a ConfigMap only; another kind is not accepted
    // (InvalidParameters, as the spec asks). A missing or malformed ConfigMap is found by the deployer.
    const params = g.spec.infrastructure?.parametersRef;
    if (params !== undefined && (params.group !== '' || params.kind !== 'ConfigMap')) {
      const why = `spec.infrastructure.parametersRef: ${params.group === '' ? 'core' : params.group}/${params.kind} is not supported: only a ConfigMap (group "") of the Gateway's namespace`;
      gatewayStatus.set(key, { entry: g, accepted: condition('Accepted', false, 'InvalidParameters', why, gen(g)), listenerConds: new Map() });
      continue;
    }
    const binds = bindPorts(served.spec.listeners.map((l) => l.port));
    for (const l of served.spec.listeners) {
      const refs = certificateProblem(g, l, input) ?? routeKindsProblem(l);
      // Listeners of one port must agree on the protocol (HTTP and HTTPS cannot share a port).
      const clash = g.spec.listeners.find((o) => o.port === l.port && o.protocol !== l.protocol);
      const conflict = clash === undefined ? undefined : `port ${l.port} is also used by listener ${clash.name} with protocol ${clash.protocol}`;
      listenerConds.set(l.name, [
        conflict === undefined ? condition('Accepted', true, 'Accepted', 'Listener accepted', gen(g)) : condition('Accepted', false, 'ProtocolConflict', conflict, gen(g)),
        conflict === undefined ? condition('Conflicted', false, 'NoConflicts', 'No conflicts', gen(g)) : condition('Conflicted', true, 'ProtocolConflict', conflict, gen(g)),
        refs === undefined ? condition('ResolvedRefs', true, 'ResolvedRefs', 'References resolved', gen(g)) : condition('ResolvedRefs', false, refs.reason, refs.message, gen(g)),
        refs === undefined && conflict === undefined ? condition('Programmed', true, 'Programmed', 'Listener programmed', gen(g)) : condition('Programmed', false, 'Invalid', refs?.message ?? conflict!, gen(g)),
      ]);
      if (conflict !== undefined) continue;
      const name = istioGatewayName(g.name, l.name);
      // A listener with unresolved references still takes routes (attachedRoutes counts them, as the
      // spec asks) but is not programmed: no server, so its routes reach no proxy.
      listeners.push({ gateway: g, listener: l, istioGateway: `${g.namespace}/${name}`, attached: 0, programmed: refs === undefined });
      if (refs !== undefined) continue;
      istioGateways.push(
        deepFreeze({
          kind: 'Gateway',
          namespace: g.namespace,
          name,
          key: keyOf('Gateway', g.namespace, name),
          spec: { selector: selectorOf(g, input.proxySelector), servers: [serverOf(g, l, binds)] } satisfies GatewaySpec,
        }),
      );
    }
    const accepted = unsupported.length === 0 ? condition('Accepted', true, 'Accepted', 'Gateway accepted by Aviary', gen(g)) : condition('Accepted', true, 'ListenersNotValid', `Listeners not accepted: ${unsupported.map((l) => l.name).join(', ')}`, gen(g));
    gatewayStatus.set(key, { entry: g, accepted, listenerConds });
    const ports = new Map<number, GatewayDeployment['ports'][number]>();
    for (const l of served.spec.listeners) if (!ports.has(l.port)) ports.set(l.port, { name: `${l.protocol.toLowerCase()}-${l.port}`, port: l.port, targetPort: binds.get(l.port)!, protocol: l.protocol });
    deployments.push({
      namespace: g.namespace,
      name: g.name,
      className: g.spec.gatewayClassName,
      ports: [...ports.values()].sort((a, b) => a.port - b.port),
      ...(g.spec.infrastructure !== undefined && { infrastructure: g.spec.infrastructure }),
    });
  }

  // Routes.
  const routes: AnyRoute[] = [
    ...input.httpRoutes.map((entry) => ({ kind: 'HTTPRoute' as const, entry })),
    ...input.grpcRoutes.map((entry) => ({ kind: 'GRPCRoute' as const, entry })),
    ...(input.tcpRoutes ?? []).map((entry) => ({ kind: 'TCPRoute' as const, entry })),
    ...(input.tlsRoutes ?? []).map((entry) => ({ kind: 'TLSRoute' as const, entry })),
  ];
  /** Connection-level routes per generated VirtualService: key `gatewayNs/istioGateway|host` (l4.ts). */
  const l4Buckets = new Map<string, { namespace: string; gateway: string; host: string; sni: boolean; routes: AttachedL4Route[] }>();
  /** Routes per generated VirtualService: key `gatewayNs/istioGateway|host` or `mesh|routeNs|host`. */
  const buckets = new Map<string, RouteBucket>();
  for (const r of routes) {
    const spec = r.entry.spec;
    const parents = spec.parentRefs ?? [];
    const parentStatuses: Record<string, unknown>[] = [];
    const errors = manifestErrors(r.kind, r.entry);
    const resolvedForGateways = errors.length === 0 ? resolveBackends(r, input, false) : undefined;
    // Mesh routes need no ReferenceGrant for a backend in another namespace (GEP-1294): they only
    // augment Services their clients can already reach.
    const resolvedForMesh = errors.length === 0 && parents.some((p) => (p.group ?? GROUP) === '' && p.kind === 'Service') ? resolveBackends(r, input, true) : undefined;
    for (const parent of parents) {
      const group = parent.group ?? GROUP;
      const kind = parent.kind ?? 'Gateway';
      const ns = parent.namespace ?? r.entry.namespace;
      const parentRef = { group, kind, namespace: ns, name: parent.name, ...(parent.sectionName !== undefined && { sectionName: parent.sectionName }), ...(parent.port !== undefined && { port: parent.port }) };
      const conds: Condition[] = [];
      const g = gen(r.entry);
      const meshParent = group === '' && kind === 'Service';
      const resolved = meshParent ? resolvedForMesh : resolvedForGateways;
      if (meshParent) {
        // Mesh (GAMMA): the route is the Service's routing for sidecars.
        const host = `${parent.name}.${ns}.svc.${input.domainSuffix}`;
        const ports = input.servicePorts(host);
        if (ports === undefined) conds.push(condition('Accepted', false, 'NoMatchingParent', `Service ${ns}/${parent.name} not found`, g));
        else if (parent.port !== undefined && !ports.includes(parent.port)) conds.push(condition('Accepted', false, 'NoMatchingParent', `Service ${ns}/${parent.name} has no port ${parent.port}`, g));
        else if (errors.length > 0) conds.push(condition('Accepted', false, 'UnsupportedValue', errors.join('; '), g));
        else {
          conds.push(condition('Accepted', true, 'Accepted', 'Route accepted', g));
          // A route in the Service's namespace is its producer route, for every client; one in another
          // namespace is a consumer route, for the clients of the route's namespace only (GAMMA): a
          // VirtualService exported to its own namespace, which a proxy there prefers for the host.
          // A parent port limits the route to that port of the Service (the match's port).
          const consumer = r.entry.namespace !== ns;
          addRoutes(buckets, `mesh|${r.entry.namespace}|${host}`, { namespace: r.entry.namespace, host, ...(consumer && { exportTo: ['.'] }) }, r, resolved!, parent.port === undefined ? {} : { port: parent.port });
        }
      } else {
        const gw = gatewayStatus.get(`${ns}/${parent.name}`);
        if (gw === undefined) continue; // another controller's Gateway (or none): not ours to report
        // sectionName and port both narrow the listeners (Gateway API ParentReference).
        const candidates = listeners.filter((b) => b.gateway === gw.entry && (parent.sectionName === undefined || b.listener.name === parent.sectionName) && (parent.port === undefined || b.listener.port === parent.port));
        if (errors.length > 0) conds.push(condition('Accepted', false, 'UnsupportedValue', errors.join('; '), g));
        else if (candidates.length === 0) {
          const which = [parent.sectionName !== undefined && `named ${parent.sectionName}`, parent.port !== undefined && `on port ${parent.port}`].filter((w) => w !== false).join(' ');
          conds.push(condition('Accepted', false, 'NoMatchingParent', which === '' ? 'The Gateway has no usable listener' : `No usable listener ${which}`, g));
        }
        else {
          const allowed = candidates.filter((b) => allowsRoute(b, r, input.namespaceLabels));
          // A TLS passthrough route is matched by SNI: a host of `*` (no hostname on route or listener) matches nothing.
          const sniOnly = r.kind === 'TLSRoute';
          const hosted = allowed
            .map((b) => ({ b, hosts: effectiveHosts(b.listener.hostname, routeHostnames(r))?.filter((h) => !sniOnly || h !== '*') }))
            .filter((x) => x.hosts !== undefined && x.hosts.length > 0);
          if (allowed.length === 0) conds.push(condition('Accepted', false, 'NotAllowedByListeners', 'No listener allows this route (allowedRoutes)', g));
          else if (hosted.length === 0) conds.push(condition('Accepted', false, 'NoMatchingListenerHostname', sniOnly ? 'No listener hostname matches the route hostnames (a TLSRoute needs a hostname, its own or its listener\'s, to match by SNI)' : 'No listener hostname matches the route hostnames', g));
          else {
            conds.push(condition('Accepted', true, 'Accepted', 'Route accepted', g));
            for (const { b, hosts } of hosted) {
              b.attached++;
              if (!b.programmed) continue;
              if (isL4RouteKind(r.kind)) for (const host of hosts!) addL4Route(l4Buckets, b, host, r, resolved!);
              else for (const host of isolatedHosts(b, hosts!, listeners)) addRoutes(buckets, `${b.istioGateway}|${host}`, { namespace: b.gateway.namespace, gateway: b.istioGateway, host }, r, resolved!, { listener: { port: b.listener.port, protocol: b.listener.protocol } });
            }
          }
        }
      }
      if (resolved !== undefined) conds.push(resolved.problem === undefined ? condition('ResolvedRefs', true, 'ResolvedRefs', 'References resolved', g) : condition('ResolvedRefs', false, resolved.problem.reason, resolved.problem.message, g));
      parentStatuses.push({ parentRef, controllerName: AVIARY_CONTROLLER, conditions: conds });
    }
    if (parentStatuses.length > 0) statuses.push({ ref: { kind: r.kind, namespace: r.entry.namespace, name: r.entry.name }, status: { parents: parentStatuses } });
  }

  // Gateway status, with the attached route counts.
  for (const { entry, accepted, listenerConds } of gatewayStatus.values()) {
    const ok = accepted.status === 'True';
    const listenerStatus = entry.spec.listeners.map((l) => ({
      name: l.name,
      supportedKinds: supportedKinds(l),
      attachedRoutes: listeners.find((b) => b.gateway === entry && b.listener.name === l.name)?.attached ?? 0,
      conditions: listenerConds.get(l.name) ?? [],
    }));
    // Programmed over the accepted listeners: one of an unsupported protocol does not hold the others back.
    const servedListeners = listenerStatus.filter((l) => SERVED_PROTOCOLS.includes(entry.spec.listeners.find((x) => x.name === l.name)!.protocol));
    const programmed = ok && servedListeners.every((l) => l.conditions.every((c) => c.status === (c.type === 'Conflicted' ? 'False' : 'True')));
    statuses.push({
      ref: { kind: 'KubernetesGateway', namespace: entry.namespace, name: entry.name },
      status: {
        conditions: [accepted, ok ? condition('Programmed', programmed, programmed ? 'Programmed' : 'Invalid', programmed ? 'Gateway programmed on its proxies' : 'A listener is not programmed', gen(entry)) : condition('Programmed', false, 'Invalid', 'The Gateway is not accepted', gen(entry))],
        ...(ok || listenerConds.size > 0 ? { listeners: listenerStatus } : {}),
      },
    });
  }

  for (const [bucketKey, b] of [...buckets].sort(([a], [c]) => compareStrings(a, c))) {
    const name = `${bucketKey.startsWith('mesh|') ? 'mesh' : b.gateway!.split('/')[1]}-${slug(b.host)}`;
    const http = b.routes.sort(byPrecedence).map((o) => o.route);
    const spec: VirtualServiceSpec = { hosts: [b.host], ...(b.gateway !== undefined && { gateways: [b.gateway] }), ...(b.exportTo !== undefined && { exportTo: b.exportTo }), http };
    virtualServices.push(deepFreeze({ kind: 'VirtualService', namespace: b.namespace, name, key: keyOf('VirtualService', b.namespace, name), spec }));
  }

  for (const b of [...l4Buckets].sort(([a], [c]) => compareStrings(a, c)).map(([, bucket]) => bucket)) {
    const name = `${b.gateway.split('/')[1]}-${b.sni ? slug(b.host) : 'tcp'}`;
    virtualServices.push(deepFreeze({ kind: 'VirtualService', namespace: b.namespace, name, key: keyOf('VirtualService', b.namespace, name), spec: l4VirtualService(b.gateway, b.host, b.sni, b.routes) }));
  }

  statuses.sort((a, b) => compareStrings(keyOf(a.ref.kind, a.ref.namespace, a.ref.name), keyOf(b.ref.kind, b.ref.namespace, b.ref.name)));
  return { gateways: istioGateways, virtualServices, statuses, deployments };
}

function selectorOf(g: ConfigEntry<KubernetesGatewaySpec>, shared: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return shared !== undefined && Object.keys(shared).length > 0 ? { ...shared } : { [GATEWAY_NAME_LABEL]: g.name };
}

function slug(host: string): string {
  return host.replace(/^\*/, 'wildcard').replace(/[^a-z0-9.-]/g, '-');
}

/** The ports the proxy itself listens on (admin, outbound, inbound, agent, readiness, stats): never a listener's bind port. */
const PROXY_OWN_PORTS: ReadonlySet<number> = new Set([15000, 15001, 15006, 15020, 15021, 15090]);

/**
 * The port the proxy binds for each listener port of one Gateway: a port of 1024 or more as
 * itself; one below 1024 at +8000 (80 → 8080, 443 → 8443, as Istio's ingress gateway: the proxy
 * runs without privileges), or, when that is another listener's port (80 and 8080 on one
 * Gateway) or already taken, the next free one in steps of 1000 (80 → 9080). Deterministic in
 * the set of ports, so the Service's targetPorts and the servers' targetPorts agree.
 */
export function bindPorts(ports: readonly number[]): ReadonlyMap<number, number> {
  const distinct = [...new Set(ports)].sort((a, b) => a - b);
  const taken = new Set<number>([...PROXY_OWN_PORTS, ...distinct.filter((p) => p >= 1024)]);
  const out = new Map<number, number>();
  for (const port of distinct) {
    if (port >= 1024) {
      out.set(port, port);
      continue;
    }
    let bind = port + 8000;
    // At most 64 listeners: a free port is found long before 65535.
    while (taken.has(bind)) bind += 1000;
    taken.add(bind);
    out.set(port, bind);
  }
  return out;
}

function serverOf(g: ConfigEntry<KubernetesGatewaySpec>, l: Listener, binds: ReadonlyMap<number, number>): Server {
  const bind = binds.get(l.port) ?? l.port;
  const base: Server = { port: { number: l.port, name: l.name, protocol: l.protocol, ...(bind !== l.port && { targetPort: bind }) }, hosts: [l.hostname ?? '*'], name: l.name };
  const ref = l.tls?.certificateRefs?.[0];
  const ns = ref?.namespace ?? g.namespace;
  // The Secret goes to the proxy through SDS (`kubernetes://<name>`), the same path as an Istio Gateway's credentialName.
  const credentialName = ref === undefined ? undefined : ns === g.namespace ? ref.name : `${ns}/${ref.name}`;
  if (l.protocol === 'TCP' || l.protocol === 'TLS') return l4Server(base, l, credentialName);
  if (l.protocol !== 'HTTPS') return base;
  return { ...base, tls: { mode: 'SIMPLE', credentialName: credentialName! } };
}

/** A listener's certificateRefs: permitted (ReferenceGrant across namespaces), then usable (InvalidCertificateRef). */
function certificateProblem(g: ConfigEntry<KubernetesGatewaySpec>, l: Listener, input: GatewayApiInput): { reason: string; message: string } | undefined {
  for (const ref of l.tls?.certificateRefs ?? []) {
    if ((ref.group ?? '') !== '' || (ref.kind ?? 'Secret') !== 'Secret') {
      return { reason: 'InvalidCertificateRef', message: `certificateRef ${ref.group ?? ''}/${ref.kind ?? ''} ${ref.name} is not supported: only core Secrets` };
    }
    const ns = ref.namespace ?? g.namespace;
    if (ns !== g.namespace && !granted(input.grants, { kind: 'Gateway', namespace: g.namespace }, { group: '', kind: 'Secret', namespace: ns, name: ref.name })) {
      return { reason: 'RefNotPermitted', message: `Secret ${ns}/${ref.name} is in another namespace and no ReferenceGrant allows it` };
    }
    const unusable = input.certificateProblem?.(ns, ref.name);
    if (unusable !== undefined) return { reason: 'InvalidCertificateRef', message: unusable };
  }
  return undefined;
}

/** A listener's allowedRoutes.kinds naming kinds Aviary does not serve (InvalidRouteKinds). */
function routeKindsProblem(l: Listener): { reason: string; message: string } | undefined {
  const served = listenerRouteKinds(l);
  const invalid = (l.allowedRoutes?.kinds ?? []).filter((k) => (k.group ?? GROUP) !== GROUP || !served.includes(k.kind));
  if (invalid.length === 0) return undefined;
  return { reason: 'InvalidRouteKinds', message: `route kinds not served by Aviary on a ${l.protocol} listener (${served.join(', ')}): ${invalid.map((k) => `${k.group ?? GROUP}/${k.kind}`).join(', ')}` };
}

/** The listener protocols Aviary serves. */
const SERVED_PROTOCOLS: readonly string[] = ['HTTP', 'HTTPS', 'TLS', 'TCP'];

function supportedKinds(l: Listener): { group: string; kind: string }[] {
  if (!SERVED_PROTOCOLS.includes(l.protocol)) return [];
  const served = listenerRouteKinds(l);
  const kinds = l.allowedRoutes?.kinds?.filter((k) => (k.group ?? GROUP) === GROUP).map((k) => k.kind) ?? served;
  return kinds.filter((k) => served.includes(k)).map((kind) => ({ group: GROUP, kind }));
}

function allowsRoute(b: BoundListener, r: AnyRoute, namespaceLabels: GatewayApiInput['namespaceLabels']): boolean {
  if (!supportedKinds(b.listener).some((k) => k.kind === r.kind)) return false;
  const namespaces = b.listener.allowedRoutes?.namespaces;
  const from = namespaces?.from ?? 'Same';
  if (from === 'Selector') return namespaces?.selector !== undefined && selects(namespaces.selector, namespaceLabels?.(r.entry.namespace) ?? {});
  return from === 'All' || (from === 'Same' && r.entry.namespace === b.gateway.namespace);
}

/** A Kubernetes label selector (matchLabels AND every matchExpression) against a label set; empty selects all. */
export function selects(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (selector.matchExpressions ?? []).every((e) => {
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        return value !== undefined && (e.values ?? []).includes(value);
      case 'NotIn':
        return value === undefined || !(e.values ?? []).includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
      default:
        return false; // refused by validation; a selector never matches by an unknown operator
    }
  });
}

type BackendLike = { group?: string; kind?: string; name: string; namespace?: string; port?: number; weight?: number; filters?: readonly unknown[] };

interface Resolution {
  readonly rules: readonly { backends: ResolvedBackend[]; invalidWeight: number; mirrors: NonNullable<RuleContext['mirrors']> }[];
  readonly problem?: { reason: string; message: string };
}

/** Resolves every backendRef (and mirror) of a route to a Service host and port; `mesh`: for a Service parent (no ReferenceGrant needed). */
function resolveBackends(r: AnyRoute, input: GatewayApiInput, mesh: boolean): Resolution {
  let problem: { reason: string; message: string } | undefined;
  const resolve = (b: BackendLike): { host: string; port: number } | undefined => {
    const ns = b.namespace ?? r.entry.namespace;
    if ((b.group ?? '') !== '' || (b.kind ?? 'Service') !== 'Service') {
      problem ??= { reason: 'InvalidKind', message: `backendRef ${b.group ?? ''}/${b.kind ?? ''} ${b.name} is not a Service` };
      return undefined;
    }
    if (!mesh && ns !== r.entry.namespace && !granted(input.grants, { kind: r.kind, namespace: r.entry.namespace }, { group: '', kind: 'Service', namespace: ns, name: b.name })) {
      problem ??= { reason: 'RefNotPermitted', message: `Service ${ns}/${b.name} is in another namespace and no ReferenceGrant allows it` };
      return undefined;
    }
    const host = `${b.name}.${ns}.svc.${input.domainSuffix}`;
    const ports = input.servicePorts(host);
    if (ports === undefined || b.port === undefined || !ports.includes(b.port)) {
      problem ??= { reason: 'BackendNotFound', message: ports === undefined ? `Service ${ns}/${b.name} not found` : `Service ${ns}/${b.name} has no port ${b.port}` };
      return undefined;
    }
    return { host, port: b.port };
  };
  const rules = ((r.entry.spec.rules ?? []) as readonly { backendRefs?: readonly BackendLike[]; filters?: readonly { type: string; requestMirror?: { backendRef: BackendLike; percent?: number; fraction?: { numerator: number; denominator?: number } } }[] }[]).map((rule) => {
    const backends: ResolvedBackend[] = [];
    let invalidWeight = 0;
    for (const b of rule.backendRefs ?? []) {
      const target = resolve(b);
      const weight = b.weight ?? 1;
      if (target === undefined) invalidWeight += weight;
      else backends.push({ ...target, weight, ...(b.filters !== undefined && b.filters.length > 0 && { filters: b.filters }) });
    }
    // Every RequestMirror filter mirrors on its own; one whose backend does not resolve is left out (and reported).
    const mirrors = (rule.filters ?? []).flatMap((f) => {
      const m = f.type === 'RequestMirror' ? f.requestMirror : undefined;
      const target = m === undefined ? undefined : resolve(m.backendRef);
      if (m === undefined || target === undefined) return [];
      const percent = m.fraction !== undefined ? (m.fraction.numerator / (m.fraction.denominator ?? 100)) * 100 : (m.percent ?? 100);
      return [{ ...target, percent }];
    });
    return { backends, invalidWeight, mirrors };
  });
  return { rules, ...(problem && { problem }) };
}

/** The routes of one generated VirtualService (the namespace it is written in, its gateway or none for the mesh). */
interface RouteBucket { namespace: string; gateway?: string; host: string; exportTo?: string[]; routes: OrderedRoute[] }

function addRoutes(
  buckets: Map<string, RouteBucket>,
  key: string,
  at: Omit<RouteBucket, 'routes'>,
  r: AnyRoute,
  resolved: Resolution,
  /** `port`: a mesh parent's port, which limits the routes to that Service port; `listener`: the Gateway listener served. */
  scope: { readonly port?: number; readonly listener?: RuleContext['listener'] },
): void {
  const { port, listener } = scope;
  let bucket = buckets.get(key);
  if (bucket === undefined) buckets.set(key, (bucket = { ...at, routes: [] }));
  const routeKey = `${r.entry.namespace}/${r.entry.name}`;
  (r.entry.spec.rules ?? []).forEach((rule, ruleIndex) => {
    const res = resolved.rules[ruleIndex]!;
    const ctx: RuleContext = { routeKey: `${r.kind === 'GRPCRoute' ? 'grpc' : 'http'}:${routeKey}`, createdAt: r.entry.creationTimestamp ?? '', ruleIndex, backends: res.backends, invalidWeight: res.invalidWeight, ...(res.mirrors.length > 0 && { mirrors: res.mirrors }), ...(listener && { listener }) };
    const routes = r.kind === 'HTTPRoute' ? httpRuleRoutes(rule as never, ctx) : grpcRuleRoutes(rule as never, ctx);
    for (const o of routes) bucket.routes.push(port === undefined ? o : { ...o, route: { ...o.route, match: (o.route.match ?? [{}]).map((m) => ({ ...m, port })) } });
  });
}

function addL4Route(
  buckets: Map<string, { namespace: string; gateway: string; host: string; sni: boolean; routes: AttachedL4Route[] }>,
  b: BoundListener,
  host: string,
  r: AnyRoute,
  resolved: Resolution,
): void {
  // TLS passthrough routes by SNI (a bucket per hostname); TCP and terminated TLS have one route per listener.
  const sni = r.kind === 'TLSRoute';
  const key = sni ? `${b.istioGateway}|${host}` : b.istioGateway;
  let bucket = buckets.get(key);
  if (bucket === undefined) buckets.set(key, (bucket = { namespace: b.gateway.namespace, gateway: b.istioGateway, host: sni ? host : (b.listener.hostname ?? '*'), sni, routes: [] }));
  const rule = resolved.rules[0];
  if (rule === undefined) return;
  bucket.routes.push({ kind: r.kind as AttachedL4Route['kind'], routeKey: `${r.entry.namespace}/${r.entry.name}`, createdAt: r.entry.creationTimestamp ?? '', backends: rule.backends, invalidWeight: rule.invalidWeight });
}
