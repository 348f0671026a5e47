import Type, { type Static, type TProperties, type TSchema } from 'typebox';

/**
 * Building blocks shared by every kind. Contract: every `spec` object schema is closed
 * (`additionalProperties: false`), so an unknown field is a schema error at its own path.
 * Schemas carry types and enums only; ranges and cross-field rules live in @aviary/mesh-validation,
 * which reports them with Istio's messages.
 */

/** A closed object: unknown fields are rejected. All properties are optional unless listed. */
export function Closed<P extends TProperties>(properties: P, options: { description?: string } = {}) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

const opt = Type.Optional;
export { opt };

/** Istio duration string (Go/protobuf style): `1.5s`, `100ms`, `1h30m`. */
export const Duration = Type.String({ description: 'Duration such as "1.5s", "100ms" or "1m30s".' });
export const StringList = Type.Array(Type.String());
export const StringMap = Type.Record(Type.String(), Type.String());
export const UInt32 = Type.Integer({ minimum: 0, maximum: 4294967295 });
export const Int32 = Type.Integer({ minimum: -2147483648, maximum: 2147483647 });

/** StringMatch: exactly one of exact, prefix, regex (RE2 syntax). */
export const StringMatch = Closed({
  exact: opt(Type.String()),
  prefix: opt(Type.String()),
  regex: opt(Type.String({ description: 'RE2 regular expression.' })),
});
export type StringMatch = Static<typeof StringMatch>;

/** networking.istio.io WorkloadSelector: `labels`. */
export const WorkloadSelector = Closed({ labels: opt(StringMap) });
export type WorkloadSelector = Static<typeof WorkloadSelector>;

/** istio.type.v1beta1.WorkloadSelector: `matchLabels`. */
export const MatchLabelsSelector = Closed({ matchLabels: opt(StringMap) });
export type MatchLabelsSelector = Static<typeof MatchLabelsSelector>;

/** istio.type.v1beta1.PolicyTargetReference. */
export const PolicyTargetReference = Closed({
  group: opt(Type.String()),
  kind: Type.String(),
  name: Type.String(),
  namespace: opt(Type.String()),
});
export type PolicyTargetReference = Static<typeof PolicyTargetReference>;

export const PortSelector = Closed({ number: opt(UInt32) });
export type PortSelector = Static<typeof PortSelector>;

/** Percent: a double in [0, 100]. */
export const Percent = Closed({ value: opt(Type.Number()) });
export type Percent = Static<typeof Percent>;

/** Kubernetes ObjectMeta, the fields a client may send or read back. */
export const ObjectMeta = Closed({
  name: Type.String(),
  generateName: opt(Type.String()),
  namespace: opt(Type.String()),
  labels: opt(StringMap),
  annotations: opt(StringMap),
  resourceVersion: opt(Type.String()),
  generation: opt(Type.Integer()),
  uid: opt(Type.String()),
  creationTimestamp: opt(Type.Union([Type.String(), Type.Null()])),
  deletionTimestamp: opt(Type.String()),
  deletionGracePeriodSeconds: opt(Type.Integer()),
  finalizers: opt(StringList),
  ownerReferences: opt(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
  managedFields: opt(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
});
export type ObjectMeta = Static<typeof ObjectMeta>;

/** `status` is written by the control plane and is free-form (istio.meta.v1alpha1.IstioStatus). */
export const Status = Type.Record(Type.String(), Type.Unknown(), { 'x-kubernetes-preserve-unknown-fields': true });

/** Builds a resource schema: apiVersion from the accepted list, a fixed kind, metadata, spec, status. */
export function Resource<K extends string, V extends readonly string[], S extends TSchema>(
  kind: K,
  apiVersions: V,
  spec: S,
  description: string,
) {
  return Type.Object(
    {
      apiVersion: Type.Enum(apiVersions as unknown as V[number][]),
      kind: Type.Literal(kind),
      metadata: ObjectMeta,
      spec: spec,
      status: opt(Status),
    },
    { additionalProperties: false, description },
  );
}
