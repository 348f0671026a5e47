import { AviaryError } from '@aviary/errors';
import type { ResourceRef, StoredObject } from '@aviary/mesh-api';

export type ChangeOp = 'created' | 'updated' | 'deleted';

export interface ChangeEvent {
  readonly op: ChangeOp;
  readonly ref: ResourceRef;
  readonly revision: number;
  /** The stored object after the change; absent for `deleted`. */
  readonly object?: StoredObject;
}

export interface ApplyResult {
  readonly op: 'created' | 'updated' | 'unchanged';
  readonly object: StoredObject;
}

export interface ApplyOptions {
  /**
   * The object as the caller has just read it (`null`: it does not exist), with its
   * resourceVersion and content already checked. The store then does not read or check it again;
   * the write is still compare-and-set on that resourceVersion, so a change made in between
   * fails with CONFLICT.
   */
  readonly current?: StoredObject | null;
}

export interface Watch {
  /** Resolves once the watcher has seen every object that existed when it started. */
  readonly initialized: Promise<void>;
  stop(): Promise<void>;
}

export interface ListFilter {
  readonly kind?: string;
  readonly namespace?: string;
}

/**
 * The config store port. Pilot's REST API, the model builder and the analyzers depend on this
 * interface only; the embedded implementation keeps resources in NATS JetStream KV and a
 * Kubernetes implementation keeps them as CRDs. Objects are @aviary/mesh-api's `StoredObject`
 * envelope. `resourceVersion` is opaque to callers (a KV revision here, the API server's
 * resourceVersion there).
 */
export interface ConfigStore {
  list(filter?: ListFilter): Promise<StoredObject[]>;
  get(ref: ResourceRef): Promise<StoredObject | undefined>;
  /**
   * Creates or updates. When `object.metadata.resourceVersion` is set it must equal the stored
   * one, or the call fails with kind CONFLICT (code RESOURCE_VERSION_CONFLICT) and the current
   * version in `details.currentResourceVersion`.
   */
  apply(object: StoredObject, options?: ApplyOptions): Promise<ApplyResult>;
  /**
   * Replaces the object's `status` only (Kubernetes' status subresource): compare-and-set on
   * `resourceVersion` (CONFLICT when stale, NOT_FOUND when the object is gone); spec, labels and
   * generation are left as they are. `apply` in turn keeps the stored status.
   */
  updateStatus(ref: ResourceRef, status: Readonly<Record<string, unknown>>, resourceVersion: string): Promise<StoredObject>;
  /** Deletes; with `resourceVersion`, only if it is still current. False when absent. */
  delete(ref: ResourceRef, resourceVersion?: string): Promise<boolean>;
  /** Earlier versions of one object, oldest first (bounded by the store's history depth). */
  history(ref: ResourceRef): Promise<StoredObject[]>;
  /** Every object that exists now (as `created`), then every change, in order. */
  watch(listener: (event: ChangeEvent) => void): Promise<Watch>;
}

/**
 * The error every ConfigStore implementation raises for a stale or vanished resourceVersion:
 * kind CONFLICT, code RESOURCE_VERSION_CONFLICT, the current version in details.
 */
export function resourceVersionConflict(ref: ResourceRef, expected: string, current: string | undefined, reason?: string): AviaryError {
  const what = `${ref.kind} ${ref.namespace}/${ref.name}`;
  return new AviaryError(
    'CONFLICT',
    'RESOURCE_VERSION_CONFLICT',
    current === undefined
      ? `${what}: metadata.resourceVersion ${expected} is stale: the object no longer exists`
      : `${what}: metadata.resourceVersion ${expected} is stale: the current one is ${current}${reason === undefined ? '' : ` (${reason})`}`,
    { currentResourceVersion: current ?? null },
  );
}

/**
 * `store` with another `watch`, every other call passed through: how a decorator that only
 * observes or extends the watch (announcing changes, extra change sources, a kept copy) wraps a
 * store.
 */
export function withWatch(store: ConfigStore, watch: ConfigStore['watch']): ConfigStore {
  return {
    list: (filter) => store.list(filter),
    get: (ref) => store.get(ref),
    apply: (object, options) => store.apply(object, options),
    updateStatus: (ref, status, resourceVersion) => store.updateStatus(ref, status, resourceVersion),
    delete: (ref, resourceVersion) => store.delete(ref, resourceVersion),
    history: (ref) => store.history(ref),
    watch,
  };
}
