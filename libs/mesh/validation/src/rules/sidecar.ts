import { type Sidecar } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkPort, checkWorkloadSelector, isIP, isIstioLabel, wildcardDomainError } from './checks';
import { checkConnectionPool } from './destination-rule';
import { checkServerTls, isProtocol } from './gateway';

/** Istio validateSidecar. */
export function validateSidecar(sc: Sidecar, r: Report): void {
  const spec = sc.spec;
  if (spec.workloadSelector !== undefined) checkWorkloadSelector(r, 'spec.workloadSelector.labels', spec.workloadSelector.labels);
  if ((spec.egress ?? []).length === 0 && (spec.ingress ?? []).length === 0 && spec.outboundTrafficPolicy === undefined && spec.inboundConnectionPool === undefined) {
    r.error('spec', 'sidecar: empty configuration provided');
  }
  const ingressPorts = new Set<number>();
  (spec.ingress ?? []).forEach((ing, i) => {
    const p = idx('spec.ingress', i);
    if (ing.port.number === undefined) r.error(key(key(p, 'port'), 'number'), 'sidecar: ingress port number is required');
    else {
      checkPort(r, key(key(p, 'port'), 'number'), ing.port.number);
      if (ingressPorts.has(ing.port.number)) r.error(key(key(p, 'port'), 'number'), 'sidecar: ports on IP bound listeners must be unique');
      ingressPorts.add(ing.port.number);
    }
    if (ing.port.protocol !== undefined && !isProtocol(ing.port.protocol)) r.error(key(key(p, 'port'), 'protocol'), `invalid protocol ${JSON.stringify(ing.port.protocol)}`);
    if (ing.bind !== undefined && !isIP(ing.bind)) r.error(key(p, 'bind'), `sidecar: bind ${JSON.stringify(ing.bind)} must be an IP address`);
    if (ing.defaultEndpoint !== undefined && !validDefaultEndpoint(ing.defaultEndpoint)) {
      r.error(key(p, 'defaultEndpoint'), 'sidecar: defaultEndpoint must be of the form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port> or unix://<path>');
    }
    if (ing.tls !== undefined) checkServerTls(r, key(p, 'tls'), ing.tls, 'HTTPS');
    checkConnectionPool(r, key(p, 'connectionPool'), ing.connectionPool);
  });
  const egress = spec.egress ?? [];
  let catchAll = -1;
  egress.forEach((eg, i) => {
    const p = idx('spec.egress', i);
    if (eg.port === undefined || eg.port.number === undefined) {
      if (catchAll >= 0) r.error(p, 'sidecar: the egress listener with empty port must be the only one without a port');
      catchAll = i;
    } else {
      checkPort(r, key(key(p, 'port'), 'number'), eg.port.number);
      if (eg.port.protocol !== undefined && !isProtocol(eg.port.protocol)) r.error(key(key(p, 'port'), 'protocol'), `invalid protocol ${JSON.stringify(eg.port.protocol)}`);
    }
    if (eg.bind !== undefined && !isIP(eg.bind) && !eg.bind.startsWith('unix://')) r.error(key(p, 'bind'), `sidecar: bind ${JSON.stringify(eg.bind)} must be an IP address or unix:// path`);
    if (eg.captureMode === 'NONE' && eg.bind === undefined && eg.port?.number !== undefined) {
      r.error(key(p, 'bind'), 'sidecar: an egress listener with captureMode NONE and no bind is not supported by Aviary yet: set bind');
    }
    if (eg.hosts.length === 0) r.error(key(p, 'hosts'), 'sidecar: egress listener must contain at least one host');
    eg.hosts.forEach((h, j) => {
      const hp = idx(key(p, 'hosts'), j);
      const parts = h.split('/');
      if (parts.length !== 2) {
        r.error(hp, `sidecar: host ${JSON.stringify(h)} must be of form namespace/dnsName`);
        return;
      }
      const [ns, name] = parts as [string, string];
      if (ns !== '*' && ns !== '.' && ns !== '~' && !isIstioLabel(ns)) r.error(hp, `sidecar: invalid namespace ${JSON.stringify(ns)} in host ${JSON.stringify(h)}`);
      const problem = wildcardDomainError(name);
      if (problem !== undefined) r.error(hp, `sidecar: ${problem}`);
    });
  });
  if (catchAll >= 0 && catchAll !== egress.length - 1) r.error(idx('spec.egress', catchAll), 'sidecar: the egress listener with empty port must be the last listener');
  const otp = spec.outboundTrafficPolicy;
  if (otp?.egressProxy !== undefined) {
    const ep = 'spec.outboundTrafficPolicy.egressProxy';
    if (otp.mode !== 'ALLOW_ANY') r.error(ep, 'sidecar: egressProxy must be set only with ALLOW_ANY outbound traffic policy mode');
    if (otp.egressProxy.host === '' || otp.egressProxy.host.includes('*')) r.error(key(ep, 'host'), 'sidecar: egressProxy host must be a non-wildcard hostname');
    if (otp.egressProxy.port?.number === undefined) r.error(key(ep, 'port'), 'sidecar: egressProxy port is required');
    else checkPort(r, key(key(ep, 'port'), 'number'), otp.egressProxy.port.number);
  }
  checkConnectionPool(r, 'spec.inboundConnectionPool', spec.inboundConnectionPool);
}

function validDefaultEndpoint(ep: string): boolean {
  if (ep.startsWith('unix://')) return ep.length > 'unix://'.length;
  const m = /^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]|)?:(\d+)$/.exec(ep);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}
