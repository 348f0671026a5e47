import { type HTTPRoute, type VirtualService } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkExportTo, checkLabels, checkPort, isIP, isIPOrCIDR, wildcardDomainError } from './checks';
import { checkDestination, checkGatewayName, checkWeights, hostCovers } from './routes';
import { checkHttpRoute } from './http-route';

/** Istio validateVirtualService. */
export function validateVirtualService(vs: VirtualService, r: Report): void {
  const spec = vs.spec;
  const hosts = spec.hosts ?? [];
  const gateways = spec.gateways ?? [];
  const delegate = hosts.length === 0;
  if (delegate) {
    if (gateways.length > 0) r.error('spec.gateways', 'delegate virtual service (no hosts) must have no gateways specified');
    if ((spec.tls ?? []).length > 0) r.error('spec.tls', 'delegate virtual service (no hosts) must have no tls routes');
    if ((spec.tcp ?? []).length > 0) r.error('spec.tcp', 'delegate virtual service (no hosts) must have no tcp routes');
  }
  const meshBound = gateways.length === 0 || gateways.includes('mesh');
  hosts.forEach((host, i) => {
    const p = idx('spec.hosts', i);
    if (host === '*' && meshBound) r.error(p, 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
    else {
      const problem = wildcardDomainError(host);
      if (problem !== undefined && !isIP(host)) r.error(p, problem);
    }
  });
  const seenHosts = new Set<string>();
  hosts.forEach((h, i) => {
    if (seenHosts.has(h)) r.error(idx('spec.hosts', i), `duplicate host ${JSON.stringify(h)}`);
    seenHosts.add(h);
  });
  gateways.forEach((gw, i) => checkGatewayName(r, idx('spec.gateways', i), gw));
  if ((spec.http ?? []).length === 0 && (spec.tls ?? []).length === 0 && (spec.tcp ?? []).length === 0) {
    r.error('spec', 'http, tcp or tls must be provided in virtual service');
  }
  checkExportTo(r, 'spec.exportTo', spec.exportTo);
  const names = new Set<string>();
  (spec.http ?? []).forEach((route: HTTPRoute, i) => {
    const p = idx('spec.http', i);
    if (route.name !== undefined) {
      // Istio allows it (route names label stats); a Canary naming the route takes the first.
      if (names.has(route.name)) r.warn(key(p, 'name'), `duplicate route name ${JSON.stringify(route.name)}`);
      names.add(route.name);
    }
    checkHttpRoute(r, p, route, delegate);
  });
  (spec.tls ?? []).forEach((route, i) => {
    const p = idx('spec.tls', i);
    if (route.match.length === 0) r.error(key(p, 'match'), 'TLS route must have at least one match condition');
    route.match.forEach((m, j) => {
      const mp = idx(key(p, 'match'), j);
      if (m.sniHosts.length === 0) r.error(key(mp, 'sniHosts'), 'TLS match must have at least one SNI host');
      m.sniHosts.forEach((sni, k) => {
        const sp = idx(key(mp, 'sniHosts'), k);
        const problem = wildcardDomainError(sni);
        if (problem !== undefined) r.error(sp, problem);
        else if (!delegate && !hosts.some((h) => hostCovers(h, sni) || hostCovers(sni, h))) {
          r.error(sp, `SNI host ${JSON.stringify(sni)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
        }
      });
      checkSubnets(r, key(mp, 'destinationSubnets'), m.destinationSubnets);
      if (m.port !== 0) checkPort(r, key(mp, 'port'), m.port); // 0 is proto3's unset value
      checkLabels(r, key(mp, 'sourceLabels'), m.sourceLabels);
      (m.gateways ?? []).forEach((gw, k) => checkGatewayName(r, idx(key(mp, 'gateways'), k), gw));
    });
    checkL4Routes(r, p, route.route);
  });
  (spec.tcp ?? []).forEach((route, i) => {
    const p = idx('spec.tcp', i);
    (route.match ?? []).forEach((m, j) => {
      const mp = idx(key(p, 'match'), j);
      checkSubnets(r, key(mp, 'destinationSubnets'), m.destinationSubnets);
      if (m.sourceSubnet !== undefined && !isIPOrCIDR(m.sourceSubnet)) r.error(key(mp, 'sourceSubnet'), `invalid IP address or CIDR ${JSON.stringify(m.sourceSubnet)}`);
      if (m.port !== 0) checkPort(r, key(mp, 'port'), m.port); // 0 is proto3's unset value
      checkLabels(r, key(mp, 'sourceLabels'), m.sourceLabels);
      (m.gateways ?? []).forEach((gw, k) => checkGatewayName(r, idx(key(mp, 'gateways'), k), gw));
    });
    checkL4Routes(r, p, route.route);
  });
}

function checkL4Routes(r: Report, p: string, routes: { destination: { host: string; subset?: string; port?: { number?: number } }; weight?: number }[] | undefined): void {
  const rp = key(p, 'route');
  if ((routes ?? []).length === 0) {
    r.error(rp, 'route is required');
    return;
  }
  routes!.forEach((d, i) => checkDestination(r, key(idx(rp, i), 'destination'), d.destination));
  checkWeights(r, rp, routes!);
}

function checkSubnets(r: Report, path: string, subnets: string[] | undefined): void {
  (subnets ?? []).forEach((s, i) => {
    if (!isIPOrCIDR(s)) r.error(idx(path, i), `invalid IP address or CIDR ${JSON.stringify(s)}`);
  });
}
