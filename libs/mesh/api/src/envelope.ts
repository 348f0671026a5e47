import { DEFAULT_NAMESPACE, isMeshKind, kindFor, kinds, type MeshKind, type MeshResource } from './kinds';

/**
 * The one envelope of a stored mesh resource, shared by the config stores (NATS KV and
 * Kubernetes), the model, validation and analysis. `metadata.namespace` is always set here (a
 * request without one was given the default namespace before it was stored); `resourceVersion`,
 * `generation`, `creationTimestamp` and `uid` are set by the store and opaque to everyone else.
 */
export interface StoredMetadata {
  readonly name: string;
  readonly namespace: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly creationTimestamp?: string;
  readonly uid?: string;
}

export interface StoredObject<K extends string = string, S = unknown> {
  readonly apiVersion: string;
  readonly kind: K;
  readonly metadata: StoredMetadata;
  readonly spec: S;
  /** Written by the control plane (istio.meta.v1alpha1.IstioStatus); free-form. */
  readonly status?: Readonly<Record<string, unknown>>;
}

/** The identity of a stored resource across its versions. */
export interface ResourceRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export function refOf(object: Pick<StoredObject, 'kind' | 'metadata'>): ResourceRef {
  return { kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name };
}

/** `Kind/namespace/name`. */
export function refKey(ref: ResourceRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** The spec type of each mesh kind. */
export type SpecOf<K extends MeshKind> = Extract<MeshResource, { kind: K }>['spec'];

/** A stored object of a mesh kind, its spec typed by its kind. */
export type MeshObject = { [K in MeshKind]: StoredObject<K, SpecOf<K>> }[MeshKind];

/**
 * Narrows a stored object to its kind's type. Only the kind is checked here: the spec's type is
 * the stores' contract (every write is validated by @aviary/mesh-validation before it is
 * stored, and the Kubernetes API server checks the CRD schema). Undefined for kinds that are
 * not mesh kinds.
 */
export function meshObject(object: StoredObject): MeshObject | undefined {
  return isMeshKind(object.kind) ? (object as MeshObject) : undefined;
}

/**
 * A resource as a user wrote it (namespace optional) in the stored envelope: the namespace
 * defaulted, a null creationTimestamp dropped, every other field kept.
 */
export function storedFrom(resource: MeshResource, namespace: string = DEFAULT_NAMESPACE): StoredObject {
  const { creationTimestamp, ...metadata } = resource.metadata;
  return {
    apiVersion: resource.apiVersion,
    kind: resource.kind,
    metadata: { ...metadata, namespace: metadata.namespace ?? namespace, ...(typeof creationTimestamp === 'string' ? { creationTimestamp } : {}) },
    spec: resource.spec,
    ...(resource.status === undefined ? {} : { status: resource.status }),
  };
}

/**
 * A validated manifest (its `kind` as written: `Gateway` of gateway.networking.k8s.io) as Aviary
 * stores it (its `kind` Aviary's name: `KubernetesGateway`). Unchanged for every other kind.
 */
export function withStoredKind<T extends { apiVersion: string; kind: string }>(object: T): T {
  const info = kindFor(object.apiVersion, object.kind);
  return info === undefined || info.kind === object.kind ? object : { ...object, kind: info.kind };
}

/** A stored object as a manifest (the `kind` Kubernetes and users write). */
export function withApiKind<T extends { kind: string }>(object: T): T {
  const info = isMeshKind(object.kind) ? kinds[object.kind] : undefined;
  return info === undefined || info.apiKind === object.kind ? object : { ...object, kind: info.apiKind };
}
