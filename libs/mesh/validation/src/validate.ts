import { type MeshKind, type MeshResource } from '@aviary/mesh-api';
import { Report, type ValidationResult } from './finding';
import { validateCanary } from './rules/canary';
import { validateDestinationRule } from './rules/destination-rule';
import { validateGateway } from './rules/gateway';
import { validateGatewayClass, validateGRPCRoute, validateHTTPRoute, validateKubernetesGateway, validateReferenceGrant } from './rules/gateway-api';
import { validateTCPRoute, validateTLSRoute } from './rules/l4-route';
import { validateMetadata } from './rules/metadata';
import { validateRateLimitPolicy } from './rules/rate-limit';
import { validateAuthorizationPolicy, validatePeerAuthentication, validateRequestAuthentication } from './rules/security';
import { validateServiceEntry, validateWorkloadEntry } from './rules/service-entry';
import { validateSidecar } from './rules/sidecar';
import { refuseUnsupported } from './rules/unsupported';
import { validateVirtualService } from './rules/virtual-service';
import { checkSchema } from './schema-check';

type Rules = { [K in MeshKind]: (resource: Extract<MeshResource, { kind: K }>, report: Report) => void };

const rules: Rules = {
  VirtualService: validateVirtualService,
  DestinationRule: validateDestinationRule,
  Gateway: validateGateway,
  ServiceEntry: validateServiceEntry,
  WorkloadEntry: validateWorkloadEntry,
  Sidecar: validateSidecar,
  PeerAuthentication: validatePeerAuthentication,
  AuthorizationPolicy: validateAuthorizationPolicy,
  RequestAuthentication: validateRequestAuthentication,
  RateLimitPolicy: validateRateLimitPolicy,
  Canary: validateCanary,
  GatewayClass: validateGatewayClass,
  // Validation sees manifests: the Gateway API Gateway with its `kind: Gateway`.
  KubernetesGateway: (g, report) => validateKubernetesGateway({ ...g, kind: 'Gateway' }, report),
  HTTPRoute: validateHTTPRoute,
  GRPCRoute: validateGRPCRoute,
  TCPRoute: validateTCPRoute,
  TLSRoute: validateTLSRoute,
  ReferenceGrant: validateReferenceGrant,
};

/**
 * Validates one resource as Istio would: first the schema (known kind and apiVersion, no unknown
 * fields, right types), then — only when the schema holds — Istio's semantic rules. Pure and
 * deterministic: findings come in a stable order.
 */
export function validate(resource: unknown): ValidationResult {
  const report = new Report();
  const info = checkSchema(resource, report);
  if (info !== undefined) {
    const r = resource as MeshResource;
    validateMetadata(r.metadata, report, info.namespaced);
    (rules[info.kind as MeshKind] as (res: MeshResource, rep: Report) => void)(r, report);
    refuseUnsupported(r, report);
  }
  return report.result();
}

/** Narrowing helper: true when `validate` finds no errors. */
export function isValidResource(resource: unknown): resource is MeshResource {
  return validate(resource).errors.length === 0;
}
