import type { GatewayClass, GRPCRoute, KubernetesGatewayManifest, KubernetesHTTPRoute, LabelSelector, ReferenceGrant } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkDuration, checkRegex, isDns1123Label, isDns1123Subdomain, isHeaderName } from './checks';

/**
 * Rules of the Gateway API kinds (gateway.networking.k8s.io, standard channel): the CEL and
 * pattern rules of the upstream CRDs, plus Aviary's refusals of the standard-channel fields it
 * does not implement (each named at its path, never silently ignored). docs/gateway-api.md lists
 * the same refusals.
 */

export const NOT_YET = 'is not supported by Aviary yet';
const httpMethodNames = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

/** Gateway API Hostname: a DNS subdomain, optionally with one leading `*.` label; no IPs, no port. */
export function hostnameError(h: string): string | undefined {
  const name = h.startsWith('*.') ? h.slice(2) : h;
  if (h === '') return 'hostname must not be empty';
  if (h.length > 253) return 'hostname must be at most 253 characters';
  if (!isDns1123Subdomain(name)) return `invalid hostname ${JSON.stringify(h)}: a lowercase DNS name, optionally prefixed by "*."`;
  if (/^[0-9.]+$/.test(name)) return `hostname ${JSON.stringify(h)} must not be an IP address`;
  return undefined;
}

export function checkName(r: Report, path: string, name: string | undefined, what = 'name'): void {
  if (name !== undefined && !isDns1123Subdomain(name)) r.error(path, `invalid ${what} ${JSON.stringify(name)}: must be a lowercase RFC 1123 subdomain`);
}
export function checkNamespace(r: Report, path: string, ns: string | undefined): void {
  if (ns !== undefined && !isDns1123Label(ns)) r.error(path, `invalid namespace ${JSON.stringify(ns)}: must be a DNS-1123 label`);
}
export function checkSectionName(r: Report, path: string, name: string | undefined): void {
  if (name !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) r.error(path, `invalid section name ${JSON.stringify(name)}: a DNS-1123 label`);
}

export function validateGatewayClass(gc: GatewayClass, r: Report): void {
  const c = gc.spec.controllerName;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/.test(c)) {
    r.error('spec.controllerName', `invalid controllerName ${JSON.stringify(c)}: a domain-prefixed path such as aviary.dev/gateway-controller`);
  }
  if (gc.metadata.namespace !== undefined) r.error('metadata.namespace', 'GatewayClass is cluster-scoped: metadata.namespace must not be set');
  if (gc.spec.parametersRef !== undefined) r.error('spec.parametersRef', `spec.parametersRef ${NOT_YET}: Aviary's GatewayClasses take no parameters`);
}

const gatewayProtocols = new Set(['HTTP', 'HTTPS', 'TLS', 'TCP']);

export function validateKubernetesGateway(g: KubernetesGatewayManifest, r: Report): void {
  const spec = g.spec;
  checkName(r, 'spec.gatewayClassName', spec.gatewayClassName, 'gatewayClassName');
  if (spec.listeners.length === 0) r.error('spec.listeners', 'at least one listener is required');
  if (spec.listeners.length > 64) r.error('spec.listeners', 'at most 64 listeners are allowed');
  const names = new Map<string, number>();
  const bindings = new Map<string, number>();
  spec.listeners.forEach((l, i) => {
    const p = idx('spec.listeners', i);
    checkSectionName(r, key(p, 'name'), l.name);
    const earlier = names.get(l.name);
    if (earlier !== undefined) r.error(key(p, 'name'), `listener name ${JSON.stringify(l.name)} is already used by spec.listeners[${earlier}]`);
    else names.set(l.name, i);
    if (l.hostname !== undefined) {
      const e = hostnameError(l.hostname);
      if (e) r.error(key(p, 'hostname'), e);
    }
    // The CRD's rule: port, protocol and hostname together are unique (a protocol clash on one port is a Conflicted status).
    const binding = `${l.port}/${l.protocol}/${l.hostname ?? ''}`;
    const other = bindings.get(binding);
    if (other !== undefined) r.error(key(p, 'hostname'), `port ${l.port}, protocol ${l.protocol} and hostname ${JSON.stringify(l.hostname ?? '')} are already used by spec.listeners[${other}]`);
    else bindings.set(binding, i);
    if (!gatewayProtocols.has(l.protocol)) {
      r.error(key(p, 'protocol'), `protocol ${JSON.stringify(l.protocol)} ${NOT_YET}: Aviary's Gateways accept HTTP, HTTPS, TLS and TCP listeners (UDP routes are not implemented)`);
    }
    if ((l.protocol === 'HTTP' || l.protocol === 'TCP' || l.protocol === 'UDP') && l.tls !== undefined) r.error(key(p, 'tls'), `tls must not be set for protocol ${l.protocol}`);
    if ((l.protocol === 'TCP' || l.protocol === 'UDP') && l.hostname !== undefined) r.error(key(p, 'hostname'), `hostname must not be set for protocol ${l.protocol}: connections carry no host name`);
    if (l.protocol === 'HTTPS' || l.protocol === 'TLS') {
      if (l.tls === undefined) r.error(key(p, 'tls'), `tls is required for protocol ${l.protocol}`);
      else {
        const t = key(p, 'tls');
        const mode = l.tls.mode ?? 'Terminate';
        if (l.protocol === 'HTTPS' && mode === 'Passthrough') r.error(key(t, 'mode'), 'tls.mode must be Terminate for protocol HTTPS (use protocol TLS to pass TLS through)');
        if (mode === 'Passthrough') {
          // The router does not terminate: a certificate would never be used, so it is refused rather than ignored.
          if ((l.tls.certificateRefs ?? []).length > 0) r.error(key(t, 'certificateRefs'), 'certificateRefs must not be set when tls.mode is Passthrough: the backend terminates TLS');
        } else {
          if ((l.tls.certificateRefs ?? []).length === 0) r.error(key(t, 'certificateRefs'), 'certificateRefs must name a Secret when tls.mode is Terminate');
          if ((l.tls.certificateRefs ?? []).length > 1) r.error(key(t, 'certificateRefs'), `more than one certificateRef ${NOT_YET}`);
          (l.tls.certificateRefs ?? []).forEach((c, j) => {
            const cp = idx(key(t, 'certificateRefs'), j);
            // Another kind or group is the listener's ResolvedRefs=False InvalidCertificateRef (the model), not a refusal: the spec reports it in status.
            checkName(r, key(cp, 'name'), c.name);
            checkNamespace(r, key(cp, 'namespace'), c.namespace);
          });
        }
        if (l.tls.options !== undefined && Object.keys(l.tls.options).length > 0) r.error(key(t, 'options'), `tls.options ${NOT_YET}`);
      }
    }
    const ar = l.allowedRoutes;
    if (ar !== undefined) {
      const ap = key(p, 'allowedRoutes');
      const np = key(ap, 'namespaces');
      if (ar.namespaces?.from === 'Selector' && ar.namespaces.selector === undefined) r.error(key(np, 'selector'), 'selector is required when from is Selector');
      if (ar.namespaces?.selector !== undefined && ar.namespaces.from !== 'Selector') r.error(key(np, 'selector'), 'selector is only used with from: Selector');
      if (ar.namespaces?.selector !== undefined) checkLabelSelector(r, key(np, 'selector'), ar.namespaces.selector);
      // Route kinds other than HTTPRoute/GRPCRoute are valid: the listener reports ResolvedRefs=False
      // InvalidRouteKinds and lists only the kinds it serves (the model), as the spec asks.
    }
  });
  if (spec.addresses !== undefined) checkAddresses(r, spec.addresses);
  if (spec.infrastructure !== undefined) checkInfrastructure(r, spec.infrastructure);
  if (spec.allowedListeners !== undefined) r.error('spec.allowedListeners', `spec.allowedListeners ${NOT_YET}: ListenerSets are not implemented`);
  if (spec.tls !== undefined) r.error('spec.tls', `spec.tls ${NOT_YET}: client certificate validation and backend client certificates are not configured`);
}

/** At most this many `spec.addresses` entries (the CRD's maxItems). */
const MAX_ADDRESSES = 16;

/**
 * `spec.addresses`: an entry without a value asks for an address the implementation assigns
 * (GatewayAddressEmpty), which is what Aviary does for every Gateway (the deployed Service's
 * ClusterIP in `status.addresses`), so only `IPAddress` entries without a value are valid; a
 * static address (a value) is refused: the Gateway's proxies are the pods labelled
 * gateway.networking.k8s.io/gateway-name, not an address Aviary could claim.
 */
function checkAddresses(r: Report, addresses: readonly { readonly type?: string; readonly value?: string }[]): void {
  if (addresses.length > MAX_ADDRESSES) r.error('spec.addresses', `at most ${MAX_ADDRESSES} addresses (${addresses.length} given)`);
  addresses.slice(0, MAX_ADDRESSES).forEach((a, i) => {
    const p = idx('spec.addresses', i);
    if (a.value !== undefined && a.value !== '') {
      r.error(key(p, 'value'), `a static address ${NOT_YET}: leave value empty and Aviary assigns the deployed Service's address (docs/gateway-api.md)`);
    }
    const type = a.type ?? 'IPAddress';
    if (type !== 'IPAddress') r.error(key(p, 'type'), `address type ${JSON.stringify(type)} ${NOT_YET}: Aviary assigns IPAddress addresses only`);
  });
}

/** At most this many labels and annotations in `spec.infrastructure` (the CRD's maxProperties). */
const INFRASTRUCTURE_MAX_ENTRIES = 8;

/**
 * `spec.infrastructure` (the upstream CRD's rules): at most 8 labels with label keys and values,
 * at most 8 annotations with qualified keys and values of up to 4,096 characters, and a
 * parametersRef name (docs/gateway-api.md, "Automated deployment").
 */
function checkInfrastructure(r: Report, infra: NonNullable<KubernetesGatewayManifest['spec']['infrastructure']>): void {
  const p = 'spec.infrastructure';
  const labels = Object.entries(infra.labels ?? {});
  if (labels.length > INFRASTRUCTURE_MAX_ENTRIES) r.error(key(p, 'labels'), `at most ${INFRASTRUCTURE_MAX_ENTRIES} labels (${labels.length} given)`);
  for (const [k, v] of labels) {
    if (!isLabelKey(k)) r.error(key(key(p, 'labels'), k), `${JSON.stringify(k)} is not a valid label key`);
    else if (!isLabelValue(v)) r.error(key(key(p, 'labels'), k), `${JSON.stringify(v)} is not a valid label value: at most 63 alphanumerics, "-", "_" or ".", starting and ending with an alphanumeric`);
  }
  const annotations = Object.entries(infra.annotations ?? {});
  if (annotations.length > INFRASTRUCTURE_MAX_ENTRIES) r.error(key(p, 'annotations'), `at most ${INFRASTRUCTURE_MAX_ENTRIES} annotations (${annotations.length} given)`);
  for (const [k, v] of annotations) {
    if (!isLabelKey(k)) r.error(key(key(p, 'annotations'), k), `${JSON.stringify(k)} is not a valid annotation key`);
    else if (v.length > 4096) r.error(key(key(p, 'annotations'), k), `annotation values are at most 4096 characters (${v.length} given)`);
  }
  const ref = infra.parametersRef;
  if (ref !== undefined) {
    const rp = key(p, 'parametersRef');
    // Another kind is the Gateway's Accepted=False InvalidParameters (the model), as the spec reports it.
    checkName(r, key(rp, 'name'), ref.name);
  }
}

/** A label value: empty, or up to 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric. */
function isLabelValue(v: string): boolean {
  return v.length <= 63 && /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v);
}

/** A Kubernetes LabelSelector as the API server validates one (metav1 validation). */
function checkLabelSelector(r: Report, path: string, selector: LabelSelector): void {
  for (const k of Object.keys(selector.matchLabels ?? {})) if (!isLabelKey(k)) r.error(key(key(path, 'matchLabels'), k), `${JSON.stringify(k)} is not a valid label key`);
  (selector.matchExpressions ?? []).forEach((e, i) => {
    const p = idx(key(path, 'matchExpressions'), i);
    if (!isLabelKey(e.key)) r.error(key(p, 'key'), `${JSON.stringify(e.key)} is not a valid label key`);
    const values = e.values ?? [];
    if (e.operator === 'In' || e.operator === 'NotIn') {
      if (values.length === 0) r.error(key(p, 'values'), `values must not be empty for operator ${e.operator}`);
    } else if (e.operator === 'Exists' || e.operator === 'DoesNotExist') {
      if (values.length > 0) r.error(key(p, 'values'), `values must be empty for operator ${e.operator}`);
    } else r.error(key(p, 'operator'), `operator ${JSON.stringify(e.operator)} is not one of In, NotIn, Exists, DoesNotExist`);
  });
}

/** A label key: an optional DNS subdomain prefix and `/`, then a name of 1-63 alphanumerics, `-`, `_`, `.`. */
function isLabelKey(k: string): boolean {
  const slash = k.lastIndexOf('/');
  const name = k.slice(slash + 1);
  if (slash >= 0 && !isDns1123Subdomain(k.slice(0, slash))) return false;
  return /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(name);
}

interface RouteLike {
  readonly parentRefs?: readonly { group?: string; kind?: string; namespace?: string; name: string; sectionName?: string; port?: number }[];
  readonly hostnames?: readonly string[];
}

/** parentRefs and hostnames of a route; `meshParents: false` refuses Service parents (routes Aviary serves on Gateways only). */
export function checkParents(r: Report, spec: RouteLike, meshParents: string | true = true): void {
  if ((spec.parentRefs ?? []).length > 32) r.error('spec.parentRefs', 'at most 32 parentRefs are allowed');
  (spec.parentRefs ?? []).forEach((ref, i) => {
    const p = idx('spec.parentRefs', i);
    const group = ref.group ?? 'gateway.networking.k8s.io';
    const kind = ref.kind ?? 'Gateway';
    const gateway = group === 'gateway.networking.k8s.io' && kind === 'Gateway';
    const service = group === '' && kind === 'Service';
    if (!gateway && !service) r.error(key(p, 'kind'), `parentRef ${group}/${kind} ${NOT_YET}: a Gateway or (mesh routes) a core Service`);
    checkName(r, key(p, 'name'), ref.name);
    checkNamespace(r, key(p, 'namespace'), ref.namespace);
    checkSectionName(r, key(p, 'sectionName'), ref.sectionName);
    if (service && meshParents !== true) r.error(key(p, 'kind'), meshParents);
    else if (service && ref.sectionName !== undefined) r.error(key(p, 'sectionName'), `sectionName of a Service parent ${NOT_YET}: use port`);
  });
  (spec.hostnames ?? []).forEach((h, i) => {
    const e = hostnameError(h);
    if (e) r.error(idx('spec.hostnames', i), e);
  });
}

function checkHeaderFilter(r: Report, path: string, f: { set?: { name: string; value: string }[]; add?: { name: string; value: string }[]; remove?: string[] } | undefined): void {
  if (f === undefined) return;
  const seen = new Set<string>();
  for (const op of ['set', 'add'] as const) {
    (f[op] ?? []).forEach((h, i) => {
      if (!isHeaderName(h.name)) r.error(key(idx(key(path, op), i), 'name'), `invalid header name ${JSON.stringify(h.name)}`);
      const lower = `${op}:${h.name.toLowerCase()}`;
      if (seen.has(lower)) r.error(key(idx(key(path, op), i), 'name'), `header ${JSON.stringify(h.name)} appears twice in ${op}`);
      seen.add(lower);
    });
  }
  (f.remove ?? []).forEach((h, i) => {
    if (!isHeaderName(h)) r.error(idx(key(path, 'remove'), i), `invalid header name ${JSON.stringify(h)}`);
  });
}

export function checkBackendRef(r: Report, path: string, b: { group?: string; kind?: string; name: string; namespace?: string; port?: number }): void {
  // A backend of another kind is valid: the route stays Accepted and reports ResolvedRefs=False
  // InvalidKind (the model), its share of the traffic answered with an error, as the spec asks.
  if ((b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service' && b.port === undefined) r.error(key(path, 'port'), 'port is required when the backend is a Service');
  checkName(r, key(path, 'name'), b.name);
  checkNamespace(r, key(path, 'namespace'), b.namespace);
}

/** The CRD's CORSOrigin: `*`, or http(s)://host[:port] whose host may be `*` or start with `*.`. */
const CORS_ORIGIN = /^https?:\/\/((\*\.)?([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+|\*)(:[0-9]{1,5})?$/;

type FilterLike = {
  type: string;
  requestHeaderModifier?: Parameters<typeof checkHeaderFilter>[2];
  responseHeaderModifier?: Parameters<typeof checkHeaderFilter>[2];
  requestMirror?: { backendRef: { group?: string; kind?: string; name: string; namespace?: string; port?: number }; percent?: number; fraction?: { numerator: number; denominator?: number } };
  requestRedirect?: unknown;
  urlRewrite?: unknown;
  extensionRef?: unknown;
  cors?: { allowOrigins?: string[]; allowMethods?: string[]; allowHeaders?: string[]; exposeHeaders?: string[]; allowCredentials?: boolean; maxAge?: number };
};

const filterField: Readonly<Record<string, keyof FilterLike>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  ExtensionRef: 'extensionRef',
  CORS: 'cors',
};

/** Common filter rules; returns the filter's type when it is well-formed. */
function checkFilter(r: Report, path: string, f: FilterLike): void {
  const field = filterField[f.type]!;
  for (const other of Object.values(filterField)) {
    if (other !== field && f[other] !== undefined) r.error(key(path, other), `${other} must not be set for filter type ${f.type}`);
  }
  if (f[field] === undefined) {
    r.error(key(path, field), `${field} is required for filter type ${f.type}`);
    return;
  }
  if (f.type === 'ExtensionRef') r.error(key(path, 'extensionRef'), `filter type ExtensionRef ${NOT_YET}`);
  checkHeaderFilter(r, key(path, 'requestHeaderModifier'), f.requestHeaderModifier);
  checkHeaderFilter(r, key(path, 'responseHeaderModifier'), f.responseHeaderModifier);
  const c = f.cors;
  if (c !== undefined) {
    const cp = key(path, 'cors');
    (c.allowOrigins ?? []).forEach((o, i) => {
      if (o !== '*' && !CORS_ORIGIN.test(o)) r.error(idx(key(cp, 'allowOrigins'), i), `invalid origin ${JSON.stringify(o)}: "*" or <scheme>://<host>[:<port>] with scheme http or https (the host may be "*" or start with "*.")`);
    });
    (c.allowMethods ?? []).forEach((m, i) => {
      if (m !== '*' && !(httpMethodNames as readonly string[]).includes(m)) r.error(idx(key(cp, 'allowMethods'), i), `invalid method ${JSON.stringify(m)}: an RFC 9110 method or "*"`);
    });
    for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
      (c[field] ?? []).forEach((h, i) => {
        if (h !== '*' && !isHeaderName(h)) r.error(idx(key(cp, field), i), `invalid header name ${JSON.stringify(h)}`);
      });
    }
    // The CRD's limits. A wildcard with allowCredentials is valid: the proxy then answers with the
    // request's Origin, method and headers, never `*` (Envoy's CORS filter echoes them).
    for (const [field, max] of [['allowOrigins', 64], ['allowMethods', 9], ['allowHeaders', 64], ['exposeHeaders', 64]] as const) {
      const list = c[field] ?? [];
      if (list.length > max) r.error(key(cp, field), `at most ${max} ${field} are allowed`);
      if (field !== 'exposeHeaders' && list.includes('*') && list.length > 1) r.error(key(cp, field), `${field} cannot contain "*" alongside other values`);
      const seen = new Set<string>();
      list.forEach((v, i) => {
        const k = field === 'allowOrigins' || field === 'allowMethods' ? v : v.toLowerCase();
        if (seen.has(k)) r.error(idx(key(cp, field), i), `${JSON.stringify(v)} is listed twice`);
        seen.add(k);
      });
    }
  }
  const m = f.requestMirror;
  if (m !== undefined) {
    const mp = key(path, 'requestMirror');
    checkBackendRef(r, key(mp, 'backendRef'), m.backendRef);
    if (m.percent !== undefined && m.fraction !== undefined) r.error(mp, 'only one of percent and fraction may be set');
    if (m.fraction !== undefined) {
      const d = m.fraction.denominator ?? 100;
      if (d < 1) r.error(key(key(mp, 'fraction'), 'denominator'), 'denominator must be at least 1');
      if (m.fraction.numerator < 0 || m.fraction.numerator > d) r.error(key(key(mp, 'fraction'), 'numerator'), 'numerator must be in [0, denominator]');
    }
  }
}

function checkFilters(r: Report, path: string, filters: readonly FilterLike[] | undefined, hasPathMatch: { prefixOnly: boolean }): void {
  const counts = new Map<string, number>();
  (filters ?? []).forEach((f, i) => {
    const p = idx(path, i);
    checkFilter(r, p, f);
    counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
    if (f.type !== 'RequestMirror' && f.type !== 'ExtensionRef' && counts.get(f.type)! > 1) r.error(key(p, 'type'), `filter ${f.type} may appear at most once`);
    const rewritePath = (f.requestRedirect as { path?: { type: string } } | undefined)?.path ?? (f.urlRewrite as { path?: { type: string } } | undefined)?.path;
    if (rewritePath?.type === 'ReplacePrefixMatch' && !hasPathMatch.prefixOnly) {
      r.error(key(key(p, f.type === 'URLRewrite' ? 'urlRewrite' : 'requestRedirect'), 'path'), 'ReplacePrefixMatch needs every match of the rule to have a PathPrefix path match');
    }
  });
  if ((counts.get('RequestRedirect') ?? 0) > 0 && (counts.get('URLRewrite') ?? 0) > 0) r.error(path, 'RequestRedirect and URLRewrite cannot be used together');
}

/** A backendRef's filters: header modifiers (the destination's own header operations); the other types are not supported there yet. */
function checkBackendFilters(r: Report, path: string, filters: readonly FilterLike[] | undefined): void {
  checkFilters(r, path, filters, { prefixOnly: true });
  (filters ?? []).forEach((f, i) => {
    if (f.type !== 'RequestHeaderModifier' && f.type !== 'ResponseHeaderModifier') {
      r.error(key(idx(path, i), 'type'), `a ${f.type} filter on a backendRef ${NOT_YET} (only RequestHeaderModifier and ResponseHeaderModifier are): put it on the rule`);
    }
  });
}

/** The CRD's enum for RequestRedirect `statusCode` (301 and 302 core, 303, 307 and 308 extended), Istio's `redirectCode` set too. */
const redirectStatusCodes: readonly number[] = [301, 302, 303, 307, 308];

function checkPathModifier(r: Report, path: string, m: { type: string; replaceFullPath?: string; replacePrefixMatch?: string } | undefined): void {
  if (m === undefined) return;
  const value = m.type === 'ReplaceFullPath' ? m.replaceFullPath : m.replacePrefixMatch;
  const field = m.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const other = m.type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
  if (value === undefined) r.error(key(path, field), `${field} is required for type ${m.type}`);
  else if (!value.startsWith('/')) r.error(key(path, field), `${field} must start with "/"`);
  if ((m as Record<string, unknown>)[other] !== undefined) r.error(key(path, other), `${other} must not be set for type ${m.type}`);
}

export function validateHTTPRoute(route: KubernetesHTTPRoute, r: Report): void {
  const spec = route.spec;
  checkParents(r, spec);
  if ((spec.rules ?? []).length > 16) r.error('spec.rules', 'at most 16 rules are allowed');
  (spec.rules ?? []).forEach((rule, i) => {
    const p = idx('spec.rules', i);
    checkSectionName(r, key(p, 'name'), rule.name);
    if ((rule.matches ?? []).length > 64) r.error(key(p, 'matches'), 'at most 64 matches are allowed');
    // No matches means one PathPrefix "/" match.
    const prefixOnly = (rule.matches ?? []).every((m) => (m.path?.type ?? 'PathPrefix') === 'PathPrefix');
    (rule.matches ?? []).forEach((m, j) => {
      const mp = idx(key(p, 'matches'), j);
      const type = m.path?.type ?? 'PathPrefix';
      if (m.path !== undefined) {
        const value = m.path.value ?? '/';
        if (type !== 'RegularExpression' && !value.startsWith('/')) r.error(key(key(mp, 'path'), 'value'), 'path must start with "/"');
        if (type !== 'RegularExpression' && (/\/\/|\/\.\.?(\/|$)|[?#]/.test(value) || value.includes('%2f') || value.includes('%2F'))) {
          r.error(key(key(mp, 'path'), 'value'), `path ${JSON.stringify(value)} must not contain "//", "/./", "/../", "%2f", "?" or "#"`);
        }
        if (type === 'RegularExpression') checkRegex(r, key(key(mp, 'path'), 'value'), value);
      }
      const names = new Set<string>();
      (m.headers ?? []).forEach((h, k) => {
        const hp = idx(key(mp, 'headers'), k);
        if (!isHeaderName(h.name)) r.error(key(hp, 'name'), `invalid header name ${JSON.stringify(h.name)}`);
        if (names.has(h.name.toLowerCase())) r.error(key(hp, 'name'), `header ${JSON.stringify(h.name)} is matched twice`);
        names.add(h.name.toLowerCase());
        if (h.type === 'RegularExpression') checkRegex(r, key(hp, 'value'), h.value);
      });
      const params = new Set<string>();
      (m.queryParams ?? []).forEach((q, k) => {
        const qp = idx(key(mp, 'queryParams'), k);
        if (q.name === '' || /[\s=&]/.test(q.name)) r.error(key(qp, 'name'), `invalid query parameter name ${JSON.stringify(q.name)}`);
        if (params.has(q.name)) r.error(key(qp, 'name'), `query parameter ${JSON.stringify(q.name)} is matched twice`);
        params.add(q.name);
        if (q.type === 'RegularExpression') checkRegex(r, key(qp, 'value'), q.value);
      });
    });
    checkFilters(r, key(p, 'filters'), rule.filters, { prefixOnly });
    (rule.filters ?? []).forEach((f, j) => {
      const fp = idx(key(p, 'filters'), j);
      const rd = f.requestRedirect;
      if (rd !== undefined) {
        const rp = key(fp, 'requestRedirect');
        if (rd.statusCode !== undefined && !redirectStatusCodes.includes(rd.statusCode)) r.error(key(rp, 'statusCode'), `${rd.statusCode} is not a valid redirect statusCode, must be 301, 302, 303, 307 or 308`);
        if (rd.hostname !== undefined) {
          const e = hostnameError(rd.hostname);
          if (e || rd.hostname.startsWith('*')) r.error(key(rp, 'hostname'), e ?? 'hostname must not be a wildcard');
        }
        checkPathModifier(r, key(rp, 'path'), rd.path);
      }
      const rw = f.urlRewrite;
      if (rw !== undefined) {
        const rp = key(fp, 'urlRewrite');
        if (rw.hostname !== undefined) {
          const e = hostnameError(rw.hostname);
          if (e || rw.hostname.startsWith('*')) r.error(key(rp, 'hostname'), e ?? 'hostname must not be a wildcard');
        }
        checkPathModifier(r, key(rp, 'path'), rw.path);
      }
    });
    (rule.backendRefs ?? []).forEach((b, j) => {
      const bp = idx(key(p, 'backendRefs'), j);
      checkBackendRef(r, bp, b);
      checkBackendFilters(r, key(bp, 'filters'), b.filters);
    });
    if ((rule.backendRefs ?? []).length > 0 && (rule.filters ?? []).some((f) => f.type === 'RequestRedirect')) {
      r.error(key(p, 'backendRefs'), 'a rule with a RequestRedirect filter must not have backendRefs');
    }
    const t = rule.timeouts;
    if (t !== undefined) {
      const tp = key(p, 'timeouts');
      const request = checkDuration(r, key(tp, 'request'), t.request, { allowZero: true });
      const backend = checkDuration(r, key(tp, 'backendRequest'), t.backendRequest, { allowZero: true });
      // The CRD's CEL rule: a backend request cannot outlast the whole request ("0s" request: no limit).
      if (request !== undefined && request !== 0 && backend !== undefined && backend > request) {
        r.error(key(tp, 'backendRequest'), `backendRequest timeout (${t.backendRequest}) cannot be longer than request timeout (${t.request})`);
      }
    }
  });
}

export function validateGRPCRoute(route: GRPCRoute, r: Report): void {
  const spec = route.spec;
  checkParents(r, spec);
  (spec.rules ?? []).forEach((rule, i) => {
    const p = idx('spec.rules', i);
    checkSectionName(r, key(p, 'name'), rule.name);
    (rule.matches ?? []).forEach((m, j) => {
      const mp = idx(key(p, 'matches'), j);
      const method = m.method;
      if (method !== undefined) {
        if (method.service === undefined && method.method === undefined) r.error(key(mp, 'method'), 'one or both of service and method must be set');
        if ((method.type ?? 'Exact') === 'Exact') {
          if (method.service !== undefined && !/^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/.test(method.service)) r.error(key(key(mp, 'method'), 'service'), `invalid gRPC service name ${JSON.stringify(method.service)}`);
          if (method.method !== undefined && !/^[A-Za-z_][A-Za-z_0-9]*$/.test(method.method)) r.error(key(key(mp, 'method'), 'method'), `invalid gRPC method name ${JSON.stringify(method.method)}`);
        } else {
          checkRegex(r, key(key(mp, 'method'), 'service'), method.service);
          checkRegex(r, key(key(mp, 'method'), 'method'), method.method);
        }
      }
      (m.headers ?? []).forEach((h, k) => {
        const hp = idx(key(mp, 'headers'), k);
        if (!isHeaderName(h.name)) r.error(key(hp, 'name'), `invalid header name ${JSON.stringify(h.name)}`);
        if (h.type === 'RegularExpression') checkRegex(r, key(hp, 'value'), h.value);
      });
    });
    checkFilters(r, key(p, 'filters'), rule.filters, { prefixOnly: false });
    (rule.backendRefs ?? []).forEach((b, j) => {
      const bp = idx(key(p, 'backendRefs'), j);
      checkBackendRef(r, bp, b);
      checkBackendFilters(r, key(bp, 'filters'), b.filters);
    });
  });
}

export function validateReferenceGrant(g: ReferenceGrant, r: Report): void {
  if (g.spec.from.length === 0) r.error('spec.from', 'at least one from entry is required');
  if (g.spec.to.length === 0) r.error('spec.to', 'at least one to entry is required');
  g.spec.from.forEach((f, i) => checkNamespace(r, key(idx('spec.from', i), 'namespace'), f.namespace));
  g.spec.to.forEach((t, i) => checkName(r, key(idx('spec.to', i), 'name'), t.name));
}
