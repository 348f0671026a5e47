import { type HTTPRoute } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkDuration, checkHeaderOps, checkLabels, checkPercentage, checkPort, checkRegex, isHeaderName, isIstioLabel } from './checks';
import { checkDestination, checkGatewayName, checkStringMatch, checkWeights } from './routes';

const redirectCodes = new Set([301, 302, 303, 307, 308]);
const httpMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const retryOnPolicies = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

/** Istio validateHTTPRoute. */
export function checkHttpRoute(r: Report, p: string, h: HTTPRoute, delegateVs: boolean): void {
  const has = { route: (h.route ?? []).length > 0, redirect: h.redirect !== undefined, directResponse: h.directResponse !== undefined, delegate: h.delegate !== undefined };
  const actions = (Object.keys(has) as (keyof typeof has)[]).filter((k) => has[k]);
  if (actions.length === 0) r.error(p, 'HTTP route must have one of route, redirect, directResponse or delegate');
  if (actions.length > 1) r.error(key(p, actions[1]!), `HTTP route cannot contain both ${actions[0]} and ${actions[1]}`);
  if (has.redirect && h.rewrite !== undefined) r.error(key(p, 'rewrite'), 'HTTP route cannot contain both rewrite and redirect');
  if ((has.redirect || has.directResponse) && h.fault !== undefined) r.error(key(p, 'fault'), 'HTTP route cannot contain fault together with redirect or directResponse');
  if (has.delegate && delegateVs) r.error(key(p, 'delegate'), 'a delegate virtual service cannot delegate further');
  if (h.delegate !== undefined && (h.delegate.name ?? '') === '') r.error(key(key(p, 'delegate'), 'name'), 'delegate name is required');
  if (h.mirror !== undefined && h.mirrors !== undefined) r.error(key(p, 'mirrors'), 'HTTP route cannot contain both mirror and mirrors');

  (h.match ?? []).forEach((m, i) => {
    const mp = idx(key(p, 'match'), i);
    checkStringMatch(r, key(mp, 'uri'), m.uri, { allowEmptyPrefix: true });
    checkStringMatch(r, key(mp, 'scheme'), m.scheme);
    checkStringMatch(r, key(mp, 'method'), m.method);
    checkStringMatch(r, key(mp, 'authority'), m.authority);
    for (const field of ['headers', 'withoutHeaders', 'queryParams'] as const) {
      for (const [name, sm] of Object.entries(m[field] ?? {})) {
        const hp = key(key(mp, field), name);
        if (name === '') r.error(hp, `${field} key cannot be empty`);
        else if (field !== 'queryParams' && name.startsWith('@request.auth.claims')) r.error(hp, `JWT claim based routing (${name}) is not supported by Aviary yet`);
        else if (field !== 'queryParams' && !isHeaderName(name.replace(/^:/, ''))) r.error(hp, `invalid header name ${JSON.stringify(name)}`);
        checkStringMatch(r, hp, sm, { allowEmpty: true });
      }
    }
    if (m.port !== 0) checkPort(r, key(mp, 'port'), m.port); // 0 is proto3's unset value
    checkLabels(r, key(mp, 'sourceLabels'), m.sourceLabels);
    if (m.sourceNamespace !== undefined && m.sourceNamespace !== '' && !isIstioLabel(m.sourceNamespace)) r.error(key(mp, 'sourceNamespace'), `sourceNamespace match ${JSON.stringify(m.sourceNamespace)} is invalid`);
    (m.gateways ?? []).forEach((gw, k) => checkGatewayName(r, idx(key(mp, 'gateways'), k), gw));
  });

  const routes = h.route ?? [];
  routes.forEach((d, i) => {
    checkDestination(r, key(idx(key(p, 'route'), i), 'destination'), d.destination);
    if (d.headers !== undefined) {
      checkHeaderOps(r, key(key(idx(key(p, 'route'), i), 'headers'), 'request'), d.headers.request, 'request');
      checkHeaderOps(r, key(key(idx(key(p, 'route'), i), 'headers'), 'response'), d.headers.response, 'response');
    }
  });
  if (routes.length > 0) checkWeights(r, key(p, 'route'), routes);

  if (h.redirect !== undefined) {
    const rd = h.redirect;
    const rp = key(p, 'redirect');
    if (rd.uri === undefined && rd.prefixRewrite === undefined && rd.authority === undefined && rd.scheme === undefined && rd.port === undefined && rd.derivePort === undefined) {
      r.error(rp, 'redirect must specify URI, authority, scheme or port');
    }
    if (rd.uri !== undefined && rd.prefixRewrite !== undefined) r.error(key(rp, 'prefixRewrite'), 'redirect may set only one of uri and prefixRewrite');
    if (rd.redirectCode !== undefined && !redirectCodes.has(rd.redirectCode)) r.error(key(rp, 'redirectCode'), `${rd.redirectCode} is not a valid redirect code, must be 301, 302, 303, 307 or 308`);
    if (rd.port !== undefined && rd.derivePort !== undefined) r.error(key(rp, 'derivePort'), 'redirect may set only one of port and derivePort');
    checkPort(r, key(rp, 'port'), rd.port);
  }
  if (h.directResponse !== undefined) {
    const dr = h.directResponse;
    const dp = key(p, 'directResponse');
    if (dr.status < 200 || dr.status > 599) r.error(key(dp, 'status'), `directResponse.status must be in the range [200, 599] (got ${dr.status})`);
    if (dr.body !== undefined) {
      const n = (dr.body.string !== undefined ? 1 : 0) + (dr.body.bytes !== undefined ? 1 : 0);
      if (n !== 1) r.error(key(dp, 'body'), 'directResponse.body must set exactly one of string or bytes');
      if (dr.body.bytes !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(dr.body.bytes)) r.error(key(key(dp, 'body'), 'bytes'), 'bytes must be base64-encoded');
    }
  }
  if (h.rewrite !== undefined) {
    const rw = h.rewrite;
    const wp = key(p, 'rewrite');
    if (rw.uri !== undefined && rw.uriRegexRewrite !== undefined) r.error(key(wp, 'uriRegexRewrite'), 'rewrite may only contain one of uri or uriRegexRewrite');
    if (rw.uriRegexRewrite !== undefined) {
      if ((rw.uriRegexRewrite.match ?? '') === '') r.error(key(key(wp, 'uriRegexRewrite'), 'match'), 'uriRegexRewrite.match is required');
      checkRegex(r, key(key(wp, 'uriRegexRewrite'), 'match'), rw.uriRegexRewrite.match);
    }
  }
  checkDuration(r, key(p, 'timeout'), h.timeout); // Istio: at least 1ms (0s is refused, unset means none)
  if (h.retries !== undefined) {
    const rp = key(p, 'retries');
    if ((h.retries.attempts ?? 0) < 0) r.error(key(rp, 'attempts'), 'attempts cannot be negative');
    checkDuration(r, key(rp, 'perTryTimeout'), h.retries.perTryTimeout);
    checkDuration(r, key(rp, 'backoff'), h.retries.backoff);
    if (h.retries.retryOn !== undefined) {
      for (const policy of h.retries.retryOn.split(',').map((s) => s.trim())) {
        const status = /^\d{3}$/.test(policy) ? Number(policy) : undefined;
        if (!retryOnPolicies.has(policy) && (status === undefined || status < 100 || status > 599)) {
          r.error(key(rp, 'retryOn'), `${JSON.stringify(policy)} is not a valid retryOn policy`);
        }
      }
    }
  }
  if (h.fault !== undefined) {
    const fp = key(p, 'fault');
    if (h.fault.delay === undefined && h.fault.abort === undefined) r.error(fp, 'fault must have at least delay or abort');
    const delay = h.fault.delay;
    if (delay !== undefined) {
      const dp = key(fp, 'delay');
      // exponentialDelay is refused by ./unsupported.
      if (delay.fixedDelay === undefined && delay.exponentialDelay === undefined) r.error(key(dp, 'fixedDelay'), 'delay must specify fixedDelay');
      checkDuration(r, key(dp, 'fixedDelay'), delay.fixedDelay);
      checkPercentage(r, key(dp, 'percentage'), delay.percentage);
      if (delay.percent !== undefined && (delay.percent < 0 || delay.percent > 100)) r.error(key(dp, 'percent'), `percent ${delay.percent} must be in range [0, 100]`);
    }
    const abort = h.fault.abort;
    if (abort !== undefined) {
      const ap = key(fp, 'abort');
      const kinds = (['httpStatus', 'grpcStatus', 'http2Error'] as const).filter((k) => abort[k] !== undefined);
      if (kinds.length !== 1) r.error(ap, 'abort must specify exactly one of httpStatus, grpcStatus or http2Error');
      if (abort.httpStatus !== undefined && (abort.httpStatus < 200 || abort.httpStatus > 599)) r.error(key(ap, 'httpStatus'), `invalid abort http status ${abort.httpStatus}: must be in the range [200, 599]`);
      checkPercentage(r, key(ap, 'percentage'), abort.percentage);
    }
  }
  if (h.mirror !== undefined) checkDestination(r, key(p, 'mirror'), h.mirror);
  (h.mirrors ?? []).forEach((m, i) => {
    checkDestination(r, key(idx(key(p, 'mirrors'), i), 'destination'), m.destination);
    checkPercentage(r, key(idx(key(p, 'mirrors'), i), 'percentage'), m.percentage);
  });
  checkPercentage(r, key(p, 'mirrorPercentage'), h.mirrorPercentage);
  if (h.mirrorPercent !== undefined && h.mirrorPercent > 100) r.error(key(p, 'mirrorPercent'), `mirrorPercent ${h.mirrorPercent} must be in range [0, 100]`);
  if (h.corsPolicy !== undefined) {
    const cp = key(p, 'corsPolicy');
    (h.corsPolicy.allowOrigins ?? []).forEach((o, i) => checkStringMatch(r, idx(key(cp, 'allowOrigins'), i), o));
    (h.corsPolicy.allowMethods ?? []).forEach((m, i) => {
      if (!httpMethods.has(m)) r.error(idx(key(cp, 'allowMethods'), i), `${JSON.stringify(m)} is not a valid HTTP method`);
    });
    for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
      (h.corsPolicy[field] ?? []).forEach((name, i) => {
        if (name !== '*' && !isHeaderName(name)) r.error(idx(key(cp, field), i), `invalid header name ${JSON.stringify(name)}`);
      });
    }
    const age = checkDuration(r, key(cp, 'maxAge'), h.corsPolicy.maxAge); // Istio: at least 1ms
    if (age !== undefined && age % 1000 !== 0) r.error(key(cp, 'maxAge'), 'maxAge duration is accurate only to seconds precision');
  }
  if (h.headers !== undefined) {
    checkHeaderOps(r, key(key(p, 'headers'), 'request'), h.headers.request, 'request');
    checkHeaderOps(r, key(key(p, 'headers'), 'response'), h.headers.response, 'response');
  }
}
