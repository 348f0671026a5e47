import { type StringMatch } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkPort, checkRegex, isDns1123Subdomain, isIstioLabel, wildcardDomainError } from './checks';

/** Istio validateDestination. */
export function checkDestination(r: Report, path: string, d: { host: string; subset?: string; port?: { number?: number } }): void {
  if (d.host === '*') r.error(key(path, 'host'), 'invalid destination host *');
  else {
    const problem = wildcardDomainError(d.host);
    if (problem !== undefined) r.error(key(path, 'host'), problem);
  }
  if (d.subset !== undefined && !isIstioLabel(d.subset)) r.error(key(path, 'subset'), `subset name ${JSON.stringify(d.subset)} is not a valid DNS-1123 label`);
  if (d.port !== undefined) checkPort(r, key(key(path, 'port'), 'number'), d.port.number);
}

/**
 * Istio validateHTTPRouteDestinations / validateRouteDestinations: weights are non-negative and
 * relative (they need not sum to 100: Envoy's weighted clusters share traffic in proportion to
 * them); a route with more than one destination needs a positive total. A single destination takes
 * all traffic whatever its weight.
 */
export function checkWeights(r: Report, path: string, routes: readonly { weight?: number }[]): void {
  let total = 0;
  routes.forEach((d, i) => {
    const w = d.weight ?? 0;
    if (w < 0) r.error(key(idx(path, i), 'weight'), `weight ${w} must not be negative`);
    total += w;
  });
  if (routes.length > 1 && total === 0) r.error(path, 'total destination weight is 0: give at least one destination a positive weight');
}

/** `mesh`, `name`, `namespace/name` or an FQDN gateway name. */
export function checkGatewayName(r: Report, path: string, gw: string): void {
  if (gw === 'mesh') return;
  const parts = gw.split('/');
  if (parts.length > 2) {
    r.error(path, `invalid gateway name ${JSON.stringify(gw)}: expected "name" or "namespace/name"`);
    return;
  }
  if (parts.length === 2 && !isIstioLabel(parts[0]!)) r.error(path, `invalid gateway namespace ${JSON.stringify(parts[0])} in ${JSON.stringify(gw)}`);
  const name = parts[parts.length - 1]!;
  if (!isDns1123Subdomain(name)) r.error(path, `invalid gateway name ${JSON.stringify(gw)}: must be a DNS-1123 name`);
}

/** True when `pattern` (possibly `*.x` or `*`) matches every name that `host` can match. */
export function hostCovers(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return host.startsWith('*') ? host.slice(1).endsWith(suffix) : host.endsWith(suffix) && host.length > suffix.length;
  }
  return pattern === host;
}

/**
 * `allowEmpty`: a match with no kind (present match); `allowEmptyPrefix`: `prefix: ""` matches
 * everything (Istio allows it for the URI only: Envoy's route prefix may be empty, its string
 * matchers' prefix may not).
 */
export function checkStringMatch(r: Report, path: string, m: StringMatch | undefined, opts: { allowEmpty?: boolean; allowEmptyPrefix?: boolean } = {}): void {
  if (m === undefined) return;
  const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
  if (set.length > 1) r.error(path, `only one of exact, prefix or regex may be set, found ${set.join(' and ')}`);
  if (set.length === 0 && opts.allowEmpty !== true) r.error(path, 'one of exact, prefix or regex must be set');
  if (m.prefix === '' && opts.allowEmptyPrefix !== true) r.error(key(path, 'prefix'), 'prefix string match should not be empty');
  checkRegex(r, key(path, 'regex'), m.regex);
}

