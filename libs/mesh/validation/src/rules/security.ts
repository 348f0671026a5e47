import { type AuthorizationPolicy, type PeerAuthentication, type PolicyTargetReference, type RequestAuthentication } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkDuration, checkWorkloadSelector, isHeaderName, isIPOrCIDR } from './checks';

/** Istio ValidatePeerAuthentication. */
export function validatePeerAuthentication(pa: PeerAuthentication, r: Report): void {
  const spec = pa.spec;
  const labels = spec.selector?.matchLabels ?? {};
  checkWorkloadSelector(r, 'spec.selector.matchLabels', spec.selector?.matchLabels);
  const ports = Object.keys(spec.portLevelMtls ?? {});
  if (ports.length > 0 && Object.keys(labels).length === 0) r.error('spec.portLevelMtls', 'portLevelMtls requires selector');
  for (const port of ports) {
    const n = /^\d+$/.test(port) ? Number(port) : NaN;
    if (!(n >= 1 && n <= 65535)) r.error(key('spec.portLevelMtls', port), `port ${JSON.stringify(port)} must be in range 1..65535`);
  }
}

/** API groups a targetRef kind may name (unset means the kind's own group). */
const targetGroups: Readonly<Record<string, readonly string[]>> = {
  Gateway: ['gateway.networking.k8s.io', 'networking.istio.io'],
  Service: ['', 'core'],
  ServiceEntry: ['networking.istio.io'],
};

function checkSelectorAndTargets(r: Report, spec: { selector?: { matchLabels?: Record<string, string> }; targetRef?: PolicyTargetReference; targetRefs?: PolicyTargetReference[] }): void {
  checkWorkloadSelector(r, 'spec.selector.matchLabels', spec.selector?.matchLabels);
  if (spec.targetRef !== undefined && spec.targetRefs !== undefined) r.error('spec.targetRefs', 'only one of targetRef or targetRefs can be set');
  if (spec.selector !== undefined && (spec.targetRef !== undefined || spec.targetRefs !== undefined)) {
    r.error(spec.targetRef !== undefined ? 'spec.targetRef' : 'spec.targetRefs', 'only one of targetRefs or selector can be set');
  }
  const refs = spec.targetRefs ?? (spec.targetRef !== undefined ? [spec.targetRef] : []);
  refs.forEach((ref, i) => {
    const p = spec.targetRefs !== undefined ? idx('spec.targetRefs', i) : 'spec.targetRef';
    if (ref.name === '') r.error(key(p, 'name'), 'targetRef name is required');
    if (ref.namespace !== undefined) r.error(key(p, 'namespace'), 'cross namespace referencing is not currently supported');
    // GatewayClass targets (Istio: waypoint classes) are not implemented: refused, never ignored.
    const allowed = ['Gateway', 'Service', 'ServiceEntry'];
    if (!allowed.includes(ref.kind)) r.error(key(p, 'kind'), `targetRef kind ${JSON.stringify(ref.kind)} is not supported, use one of ${allowed.join(', ')}`);
    const groups = targetGroups[ref.kind];
    if (groups !== undefined && ref.group !== undefined && !groups.includes(ref.group)) {
      r.error(key(p, 'group'), `targetRef group ${JSON.stringify(ref.group)} does not serve kind ${ref.kind}; use ${groups.map((g) => JSON.stringify(g)).join(' or ')}`);
    }
  });
}

const conditionKeys = [
  /^request\.headers\[[^\]]+\]$/,
  /^source\.ip$/,
  /^remote\.ip$/,
  /^source\.namespace$/,
  /^source\.principal$/,
  /^source\.serviceAccount$/,
  /^request\.auth\.principal$/,
  /^request\.auth\.audiences$/,
  /^request\.auth\.presenter$/,
  /^request\.auth\.claims(\[[^\]]+\])+$/,
  /^destination\.ip$/,
  /^destination\.port$/,
  /^connection\.sni$/,
];

/** Istio attributes that exist but Aviary does not translate: refused with a clear message. */
const unsupportedConditionKeys = [/^experimental\.envoy\.filters\./];

/** Wildcards are only supported as the prefix, the suffix or the whole value. */
function checkWildcard(r: Report, p: string, v: string): void {
  if (v === '') r.error(p, 'value must not be empty');
  else if (v.length > 1 && v.slice(1, -1).includes('*')) r.error(p, `${JSON.stringify(v)}: wildcard "*" is only supported as prefix, suffix or the whole value`);
}

/** Istio CheckServiceAccount: at most 16 values, each `serviceAccount` or `namespace/serviceAccount`, no wildcard. */
function checkServiceAccounts(r: Report, path: string, values: string[] | undefined): void {
  if (values === undefined) return;
  if (values.length > 16) r.error(path, 'may not have more than 16 values');
  values.forEach((v, i) => {
    const p = idx(path, i);
    const [ns, sa, extra] = v.split('/');
    if (v.includes('*')) r.error(p, `wildcard not allowed in a service account, found ${JSON.stringify(v)}`);
    else if (v.length > 320) r.error(p, 'a service account cannot exceed 320 characters');
    else if (extra !== undefined || ns === '' || sa === '') r.error(p, `expected format 'serviceAccount' or 'namespace/serviceAccount', found ${JSON.stringify(v)}`);
  });
}

/** Istio ValidateAuthorizationPolicy. */
export function validateAuthorizationPolicy(ap: AuthorizationPolicy, r: Report): void {
  const spec = ap.spec;
  const action = spec.action ?? 'ALLOW';
  checkSelectorAndTargets(r, spec);
  if (action === 'CUSTOM') {
    if (spec.provider === undefined || (spec.provider.name ?? '') === '') r.error('spec.provider', 'action CUSTOM requires a provider with a name');
    if ((spec.rules ?? []).length === 0) r.error('spec.rules', 'CUSTOM action without rules is meaningless as it will never be triggered, add an empty rule {} to trigger it for every request');
  } else if (spec.provider !== undefined) r.error('spec.provider', 'provider can only be used with the CUSTOM action');
  (spec.rules ?? []).forEach((rule, i) => {
    const p = idx('spec.rules', i);
    if (rule.from !== undefined && rule.from.length === 0) r.error(key(p, 'from'), '`from` must not be empty');
    (rule.from ?? []).forEach((f, j) => {
      const fp = key(idx(key(p, 'from'), j), 'source');
      const src = f.source;
      if (src === undefined || Object.values(src).every((v) => v.length === 0)) {
        r.error(fp, '`from.source` must not be empty');
        return;
      }
      for (const field of ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains'] as const) {
        (src[field] ?? []).forEach((v, k) => {
          const vp = idx(key(fp, field), k);
          checkWildcard(r, vp, v);
          if ((field === 'principals' || field === 'notPrincipals') && v.startsWith('spiffe://')) r.error(vp, `principal ${JSON.stringify(v)} must not have the spiffe:// prefix`);
          else if ((field === 'principals' || field === 'notPrincipals') && !v.includes('*') && !/^[^/]+\/ns\/[^/]+\/sa\/[^/]+$/.test(v)) {
            r.warn(vp, `principal ${JSON.stringify(v)} is not of the form <trust-domain>/ns/<namespace>/sa/<service-account>`);
          }
        });
      }
      const identities = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'] as const;
      if ((src.serviceAccounts ?? []).length + (src.notServiceAccounts ?? []).length > 0 && identities.some((f) => (src[f] ?? []).length > 0)) {
        r.error(key(fp, src.serviceAccounts !== undefined ? 'serviceAccounts' : 'notServiceAccounts'), 'serviceAccounts cannot be set together with namespaces or principals');
      }
      for (const field of ['serviceAccounts', 'notServiceAccounts'] as const) checkServiceAccounts(r, key(fp, field), src[field]);
      for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) {
        (src[field] ?? []).forEach((v, k) => {
          if (!isIPOrCIDR(v)) r.error(idx(key(fp, field), k), `invalid IP address or CIDR ${JSON.stringify(v)}`);
        });
      }
    });
    if (rule.to !== undefined && rule.to.length === 0) r.error(key(p, 'to'), '`to` must not be empty');
    (rule.to ?? []).forEach((t, j) => {
      const tp = key(idx(key(p, 'to'), j), 'operation');
      const op = t.operation;
      if (op === undefined || Object.values(op).every((v) => v.length === 0)) {
        r.error(tp, '`to.operation` must not be empty');
        return;
      }
      for (const field of ['ports', 'notPorts'] as const) {
        (op[field] ?? []).forEach((v, k) => {
          const n = /^\d+$/.test(v) ? Number(v) : NaN;
          if (!(n >= 0 && n <= 65535)) r.error(idx(key(tp, field), k), `invalid port ${JSON.stringify(v)}`);
        });
      }
      for (const field of ['hosts', 'notHosts', 'methods', 'notMethods'] as const) (op[field] ?? []).forEach((v, k) => checkWildcard(r, idx(key(tp, field), k), v));
      for (const field of ['paths', 'notPaths'] as const) {
        (op[field] ?? []).forEach((v, k) => {
          const vp = idx(key(tp, field), k);
          if (v.includes('{')) r.error(vp, `path template ${JSON.stringify(v)} is not supported by Aviary; use exact, prefix (*) or suffix matches`);
          else checkWildcard(r, vp, v);
        });
      }
    });
    (rule.when ?? []).forEach((c, j) => {
      const cp = idx(key(p, 'when'), j);
      if (unsupportedConditionKeys.some((re) => re.test(c.key))) r.error(key(cp, 'key'), `attribute ${JSON.stringify(c.key)} is not supported by Aviary`);
      else if (!conditionKeys.some((re) => re.test(c.key))) r.error(key(cp, 'key'), `unknown attribute ${JSON.stringify(c.key)}`);
      if ((c.values ?? []).length === 0 && (c.notValues ?? []).length === 0) r.error(cp, `at least one of values or notValues must be set for key ${JSON.stringify(c.key)}`);
      if (c.key === 'source.ip' || c.key === 'remote.ip' || c.key === 'destination.ip') {
        [...(c.values ?? []), ...(c.notValues ?? [])].forEach((v) => {
          if (!isIPOrCIDR(v)) r.error(cp, `invalid IP address or CIDR ${JSON.stringify(v)} for ${c.key}`);
        });
      }
    });
  });
}

/** Istio ValidateRequestAuthentication. */
export function validateRequestAuthentication(ra: RequestAuthentication, r: Report): void {
  const spec = ra.spec;
  checkSelectorAndTargets(r, spec);
  const issuers = new Set<string>();
  (spec.jwtRules ?? []).forEach((rule, i) => {
    const p = idx('spec.jwtRules', i);
    if (rule.issuer === '' && (rule.jwksUri ?? '') === '') r.error(key(p, 'issuer'), 'issuer or jwksUri must be set');
    if (issuers.has(rule.issuer)) r.warn(key(p, 'issuer'), `duplicate issuer ${JSON.stringify(rule.issuer)}`);
    issuers.add(rule.issuer);
    (rule.audiences ?? []).forEach((a, k) => {
      if (a === '') r.error(idx(key(p, 'audiences'), k), 'audience must not be empty');
    });
    if (rule.jwksUri !== undefined) {
      let ok = false;
      try {
        const u = new URL(rule.jwksUri);
        ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        ok = false;
      }
      if (!ok) r.error(key(p, 'jwksUri'), `invalid jwksUri ${JSON.stringify(rule.jwksUri)}: must be an http(s) URL`);
    }
    if (rule.jwks !== undefined) {
      try {
        JSON.parse(rule.jwks);
      } catch {
        r.error(key(p, 'jwks'), 'jwks must be a JSON Web Key Set');
      }
    }
    (rule.fromHeaders ?? []).forEach((h, k) => {
      if (!isHeaderName(h.name)) r.error(key(idx(key(p, 'fromHeaders'), k), 'name'), `invalid header name ${JSON.stringify(h.name)}`);
    });
    (rule.fromParams ?? []).forEach((v, k) => {
      if (v === '') r.error(idx(key(p, 'fromParams'), k), 'parameter name must not be empty');
    });
    (rule.outputClaimToHeaders ?? []).forEach((c, k) => {
      const cp = idx(key(p, 'outputClaimToHeaders'), k);
      if (!isHeaderName(c.header)) r.error(key(cp, 'header'), `invalid header name ${JSON.stringify(c.header)}`);
      if (c.claim === '') r.error(key(cp, 'claim'), 'claim must not be empty');
    });
    if (rule.outputPayloadToHeader !== undefined && !isHeaderName(rule.outputPayloadToHeader)) {
      r.error(key(p, 'outputPayloadToHeader'), `invalid header name ${JSON.stringify(rule.outputPayloadToHeader)}`);
    }
    checkDuration(r, key(p, 'timeout'), rule.timeout);
    if (rule.jwks === undefined && rule.jwksUri === undefined && !/^https?:\/\/[^/\s]+/.test(rule.issuer)) {
      r.error(key(p, 'issuer'), 'without jwks or jwksUri the issuer must be an http(s) URL, whose OpenID Connect discovery document gives the keys');
    } else if (rule.jwks !== undefined && rule.jwksUri !== undefined) r.error(key(p, 'jwksUri'), 'only one of jwks or jwksUri can be set');
    (rule.fromCookies ?? []).forEach((v, k) => {
      if (v === '') r.error(idx(key(p, 'fromCookies'), k), 'cookie name must not be empty');
    });
  });
}
