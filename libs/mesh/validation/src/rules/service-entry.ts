import { type ServiceEntry, type WorkloadEntry, type WorkloadEntrySpec } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkExportTo, checkLabels, checkPort, checkWorkloadSelector, isDns1123Label, isDnsName, isIP, isIstioLabel, isIPOrCIDR, wildcardDomainError } from './checks';
import { isProtocol } from './gateway';

/** Istio validateServiceEntry. */
export function validateServiceEntry(se: ServiceEntry, r: Report): void {
  const spec = se.spec;
  const resolution = spec.resolution ?? 'NONE';
  if (spec.hosts.length === 0) r.error('spec.hosts', 'service entry must have at least one host');
  spec.hosts.forEach((h, i) => {
    const p = idx('spec.hosts', i);
    if (h === '*') r.error(p, 'invalid host *');
    else {
      const problem = wildcardDomainError(h);
      if (problem !== undefined) r.error(p, problem);
      else if (h.startsWith('*') && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && (spec.endpoints ?? []).length === 0) {
        r.error(p, `wildcard host ${JSON.stringify(h)} is not allowed with resolution ${resolution} and no endpoints`);
      }
    }
  });
  (spec.addresses ?? []).forEach((a, i) => {
    if (!isIPOrCIDR(a)) r.error(idx('spec.addresses', i), `invalid address ${JSON.stringify(a)}: must be an IP address or CIDR block`);
    else if (a.includes('/') && resolution !== 'NONE' && resolution !== 'STATIC') r.error(idx('spec.addresses', i), `CIDR addresses are allowed only for resolution NONE or STATIC`);
  });
  const numbers = new Set<number>();
  const names = new Set<string>();
  (spec.ports ?? []).forEach((port, i) => {
    const p = idx('spec.ports', i);
    checkPort(r, key(p, 'number'), port.number);
    checkPort(r, key(p, 'targetPort'), port.targetPort, 'target port');
    if (numbers.has(port.number)) r.error(key(p, 'number'), `service entry port ${port.number} already defined`);
    numbers.add(port.number);
    if (!isIstioLabel(port.name)) r.error(key(p, 'name'), `invalid port name ${JSON.stringify(port.name)}: must be a DNS-1123 label`);
    if (names.has(port.name)) r.error(key(p, 'name'), `port name ${JSON.stringify(port.name)} already defined`);
    names.add(port.name);
    if (port.protocol !== undefined && !isProtocol(port.protocol)) r.error(key(p, 'protocol'), `invalid protocol ${JSON.stringify(port.protocol)}`);
  });
  const endpoints = spec.endpoints ?? [];
  if (spec.workloadSelector !== undefined) {
    checkWorkloadSelector(r, 'spec.workloadSelector.labels', spec.workloadSelector.labels);
    if (endpoints.length > 0) r.error('spec.endpoints', 'only one of workloadSelector or endpoints is allowed in a service entry');
  }
  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) r.error('spec.endpoints', 'no endpoints should be provided for resolution type NONE');
      break;
    // STATIC with neither endpoints nor a workloadSelector is valid, as in Istio: a cluster
    // without endpoints.
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length > 1) r.error('spec.endpoints', 'there must only be 0 or 1 endpoint for resolution type DNS_ROUND_ROBIN');
      break;
    default:
      break;
  }
  endpoints.forEach((ep, i) => {
    const p = idx('spec.endpoints', i);
    checkWorkloadEntrySpec(r, p, ep, resolution === 'STATIC' ? 'ip' : 'any');
    for (const name of Object.keys(ep.ports ?? {})) {
      if (!names.has(name)) r.error(key(key(p, 'ports'), name), `endpoint port ${JSON.stringify(name)} is not defined by the service entry`);
    }
  });
  checkExportTo(r, 'spec.exportTo', spec.exportTo, { allowNone: true });
  (spec.subjectAltNames ?? []).forEach((san, i) => {
    if (san === '') r.error(idx('spec.subjectAltNames', i), 'subjectAltNames must not be empty');
  });
}

/** Istio validateWorkloadEntry. */
export function validateWorkloadEntry(we: WorkloadEntry, r: Report): void {
  const spec = we.spec;
  if ((spec.address ?? '') === '' && (spec.network ?? '') === '') r.error('spec.address', 'address is required unless network is set');
  checkWorkloadEntrySpec(r, 'spec', spec, 'any');
}

/** Shared by WorkloadEntry.spec and ServiceEntry.spec.endpoints[i]. */
function checkWorkloadEntrySpec(r: Report, p: string, ep: WorkloadEntrySpec, address: 'ip' | 'any'): void {
  const a = ep.address;
  if (a !== undefined && a !== '') {
    if (a.startsWith('unix://')) {
      if (Object.keys(ep.ports ?? {}).length > 0) r.error(key(p, 'ports'), 'unix endpoints must not have ports');
      const problem = unixAddressError(a.slice('unix://'.length));
      if (problem !== undefined) r.error(key(p, 'address'), problem);
    } else if (a.includes('/')) r.error(key(p, 'address'), `address ${JSON.stringify(a)} cannot be a CIDR block`);
    else if (address === 'ip' && !isIP(a)) r.error(key(p, 'address'), `endpoint address ${JSON.stringify(a)} is not a valid IP address (resolution STATIC)`);
    else if (!isIP(a) && !isDnsName(a)) r.error(key(p, 'address'), `address ${JSON.stringify(a)} must be an IP address, a hostname or a unix:// path`);
  }
  for (const [name, port] of Object.entries(ep.ports ?? {})) {
    if (!isIstioLabel(name)) r.error(key(key(p, 'ports'), name), `invalid port name ${JSON.stringify(name)}: must be a DNS-1123 label`);
    checkPort(r, key(key(p, 'ports'), name), port);
  }
  checkLabels(r, key(p, 'labels'), ep.labels);
  if (ep.serviceAccount !== undefined && !isDns1123Label(ep.serviceAccount) && !/^[a-z0-9.-]+$/.test(ep.serviceAccount)) {
    r.error(key(p, 'serviceAccount'), `invalid service account name ${JSON.stringify(ep.serviceAccount)}`);
  }
  if (ep.locality !== undefined && (ep.locality.split('/').length > 3 || ep.locality.startsWith('/'))) {
    r.error(key(p, 'locality'), `locality ${JSON.stringify(ep.locality)} must be region/zone/subzone`);
  }
}

/**
 * Istio ValidateUnixAddress: an abstract socket (`@name`) or an absolute path to a file, with
 * Unix separators whatever the OS pilot runs on.
 */
function unixAddressError(path: string): string | undefined {
  if (path === '') return 'unix address must not be empty';
  if (path.startsWith('@')) return undefined;
  if (!path.startsWith('/') || path.endsWith('/')) return `unix address ${JSON.stringify(path)} is not an absolute path to a file`;
  return undefined;
}
