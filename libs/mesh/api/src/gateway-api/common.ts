import Type, { type Static } from 'typebox';
import { Closed, Int32, opt, StringMap } from '../common';

/**
 * Building blocks of the Kubernetes Gateway API (gateway.networking.k8s.io, standard channel of
 * v1.6.0), field for field as gateway-api.sigs.k8s.io/reference/spec. Every object is closed: a field of
 * the experimental channel, or one that does not exist, is an `unknown field` error at its path.
 * Fields that are in the standard channel but not implemented are in the schema and refused by
 * @aviary/mesh-validation with their path (never silently ignored).
 */

/** apiVersions accepted for the standard-channel kinds; the first entry is the storage version. */
export const gatewayApiVersions = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'] as const;
/** GRPCRoute is v1 only in the standard channel. */
export const gatewayApiV1Only = ['gateway.networking.k8s.io/v1'] as const;
/** ReferenceGrant: v1beta1 (the storage version) and v1 in the standard channel (v1.6.0). */
export const referenceGrantVersions = ['gateway.networking.k8s.io/v1beta1', 'gateway.networking.k8s.io/v1'] as const;

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/** PortNumber: 1..65535. */
export const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 });

/** ParentReference: a Gateway (default) or, for mesh (GAMMA) routes, a Service. */
export const ParentReference = Closed({
  group: opt(Type.String()),
  kind: opt(Type.String()),
  namespace: opt(Type.String()),
  name: Type.String(),
  sectionName: opt(Type.String()),
  port: opt(PortNumber),
});
export type ParentReference = Static<typeof ParentReference>;

/** BackendObjectReference fields of a BackendRef (a Service by default). */
const backendObjectReference = {
  group: opt(Type.String()),
  kind: opt(Type.String()),
  name: Type.String(),
  namespace: opt(Type.String()),
  port: opt(PortNumber),
};

export const BackendObjectReference = Closed(backendObjectReference);
export type BackendObjectReference = Static<typeof BackendObjectReference>;

export const HTTPHeader = Closed({ name: Type.String(), value: Type.String() });
export type HTTPHeader = Static<typeof HTTPHeader>;

export const HTTPHeaderFilter = Closed({
  set: opt(Type.Array(HTTPHeader)),
  add: opt(Type.Array(HTTPHeader)),
  remove: opt(Type.Array(Type.String())),
});
export type HTTPHeaderFilter = Static<typeof HTTPHeaderFilter>;

export const Fraction = Closed({ numerator: Int32, denominator: opt(Int32) });

export const HTTPRequestMirrorFilter = Closed({
  backendRef: BackendObjectReference,
  percent: opt(Type.Integer({ minimum: 0, maximum: 100 })),
  fraction: opt(Fraction),
});
export type HTTPRequestMirrorFilter = Static<typeof HTTPRequestMirrorFilter>;

export const LocalObjectReference = Closed({ group: Type.String(), kind: Type.String(), name: Type.String() });

/** A BackendRef with its weight and (per-backend) filters. */
export function backendRef<F extends ReturnType<typeof Closed>>(filter: F) {
  return Closed({ ...backendObjectReference, weight: opt(Type.Integer({ minimum: 0, maximum: 1000000 })), filters: opt(Type.Array(filter)) });
}

export const LabelSelector = Closed({
  matchLabels: opt(StringMap),
  matchExpressions: opt(Type.Array(Closed({ key: Type.String(), operator: Type.String(), values: opt(Type.Array(Type.String())) }))),
});
export type LabelSelector = Static<typeof LabelSelector>;
