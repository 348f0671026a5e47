import type { KubernetesTCPRoute, KubernetesTLSRoute, L4RouteRule } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkBackendRef, checkParents, checkSectionName, NOT_YET } from './gateway-api';

/**
 * Rules of TCPRoute and TLSRoute (gateway.networking.k8s.io v1.6.0): the upstream CRDs' limits
 * per served version (v1: exactly one rule, TLSRoute hostnames required; v1alpha2: up to 16
 * rules), plus Aviary's refusals, each at its path.
 */

const MESH_L4 = `a Service parent (mesh, GAMMA) ${NOT_YET} for TCPRoute and TLSRoute: attach the route to a Gateway listener, or route the Service's port with a VirtualService tcp/tls route`;

function checkRules(r: Report, apiVersion: string, rules: readonly L4RouteRule[]): void {
  const v1 = apiVersion.endsWith('/v1') || apiVersion.endsWith('/v1alpha3');
  if (rules.length === 0) r.error('spec.rules', 'at least one rule is required');
  if (v1 && rules.length > 1) r.error('spec.rules', `at most 1 rule is allowed in ${apiVersion}`);
  else if (rules.length > 16) r.error('spec.rules', 'at most 16 rules are allowed');
  // A connection carries nothing that could choose between rules: v1 allows one, and Aviary routes by the first only if it is the only one.
  else if (rules.length > 1) r.error(idx('spec.rules', 1), `more than one rule ${NOT_YET}: rules have no matches, so only one can receive connections; put every backend in one rule with weights`);
  const names = new Set<string>();
  rules.forEach((rule, i) => {
    const p = idx('spec.rules', i);
    checkSectionName(r, key(p, 'name'), rule.name);
    if (rule.name !== undefined) {
      if (names.has(rule.name)) r.error(key(p, 'name'), `rule name ${JSON.stringify(rule.name)} must be unique within the route`);
      names.add(rule.name);
    }
    if (rule.backendRefs.length === 0) r.error(key(p, 'backendRefs'), 'at least one backendRef is required');
    if (rule.backendRefs.length > 16) r.error(key(p, 'backendRefs'), 'at most 16 backendRefs are allowed');
    rule.backendRefs.forEach((b, j) => checkBackendRef(r, idx(key(p, 'backendRefs'), j), b));
  });
}

function checkCommon(r: Report, spec: { useDefaultGateways?: string }): void {
  if (spec.useDefaultGateways !== undefined) r.error('spec.useDefaultGateways', `spec.useDefaultGateways ${NOT_YET}: name the Gateway in parentRefs`);
}

export function validateTCPRoute(route: KubernetesTCPRoute, r: Report): void {
  checkParents(r, route.spec, MESH_L4);
  checkRules(r, route.apiVersion, route.spec.rules);
  checkCommon(r, route.spec);
}

export function validateTLSRoute(route: KubernetesTLSRoute, r: Report): void {
  const spec = route.spec;
  checkParents(r, spec, MESH_L4);
  const hostnamesRequired = !route.apiVersion.endsWith('/v1alpha2');
  if (hostnamesRequired && (spec.hostnames ?? []).length === 0) r.error('spec.hostnames', `at least one hostname is required in ${route.apiVersion}: TLS connections are routed by SNI`);
  if ((spec.hostnames ?? []).length > 1024) r.error('spec.hostnames', 'at most 1024 hostnames are allowed');
  checkRules(r, route.apiVersion, spec.rules);
  checkCommon(r, spec);
}
