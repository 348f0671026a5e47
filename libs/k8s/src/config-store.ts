import { CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { resourceVersionConflict, sameContent, type ApplyOptions, type ApplyResult, type ChangeEvent, type ConfigStore, type ListFilter, type Watch } from '@aviary/config-store';
import { AviaryError } from '@aviary/errors';
import { CLUSTER_SCOPE, isMeshKind, kinds, type KindInfo, type ResourceRef, type StoredMetadata, type StoredObject } from '@aviary/mesh-api';
import type { Logger } from '@aviary/observability';
import { ResilientInformer } from './informer';
import { messageOf, statusOf } from './kube-config';

export interface KubernetesConfigStoreOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Kinds to serve and watch; default every kind of @aviary/mesh-api. */
  readonly kinds?: readonly string[];
  /** Periodic relist of every kind (0: off). */
  readonly resyncMs?: number;
  /** Informer restart backoff after a list/watch error. */
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
  /** `fieldManager` of writes. */
  readonly fieldManager?: string;
}

/** A mesh CRD object as the API server returns it. */
export interface CustomObject extends KubernetesObject {
  readonly spec?: unknown;
}

/** The resourceVersion as a number for ChangeEvent.revision (etcd revisions are numeric; opaque otherwise → 0). */
export function revisionOf(resourceVersion: string | undefined): number {
  const n = Number(resourceVersion);
  return Number.isSafeInteger(n) ? n : 0;
}

/** A CRD object → a StoredObject (user metadata plus the server's identity/version fields). */
export function toStored(o: CustomObject, kind: string): StoredObject {
  const m = o.metadata ?? {};
  const namespaced = isMeshKind(kind) ? kinds[kind].namespaced : true;
  const metadata: StoredMetadata = {
    name: m.name ?? '',
    namespace: namespaced ? (m.namespace ?? 'default') : CLUSTER_SCOPE,
    ...(m.labels === undefined ? {} : { labels: { ...m.labels } }),
    ...(m.annotations === undefined ? {} : { annotations: { ...m.annotations } }),
    ...(m.resourceVersion === undefined ? {} : { resourceVersion: m.resourceVersion }),
    ...(m.generation === undefined ? {} : { generation: m.generation }),
    ...(m.creationTimestamp === undefined ? {} : { creationTimestamp: new Date(m.creationTimestamp).toISOString() }),
    ...(m.uid === undefined ? {} : { uid: m.uid }),
  };
  const status = (o as { status?: unknown }).status;
  const hasStatus = status !== null && typeof status === 'object' && !Array.isArray(status);
  return { apiVersion: o.apiVersion ?? '', kind, metadata, spec: o.spec ?? {}, ...(hasStatus ? { status: status as Record<string, unknown> } : {}) };
}

/** Maps a failed API call to an AviaryError (the API server's message kept; 422 → INVALID_ARGUMENT with its causes). */
function apiError(err: unknown, what: string): AviaryError {
  const status = statusOf(err);
  const message = `${what}: ${messageOf(err)}`;
  switch (status) {
    case 400:
    case 422:
      return new AviaryError('INVALID_ARGUMENT', 'KUBERNETES_REJECTED', message);
    case 401:
      return new AviaryError('UNAUTHENTICATED', 'KUBERNETES_UNAUTHENTICATED', message);
    case 403:
      return new AviaryError('PERMISSION_DENIED', 'KUBERNETES_FORBIDDEN', message);
    case 404:
      return new AviaryError('NOT_FOUND', 'KUBERNETES_NOT_FOUND', message);
    case 413:
      return new AviaryError('PAYLOAD_TOO_LARGE', 'OBJECT_TOO_LARGE', message);
    case 429:
      return new AviaryError('RESOURCE_EXHAUSTED', 'KUBERNETES_THROTTLED', message);
    default:
      return new AviaryError('UNAVAILABLE', 'KUBERNETES_UNAVAILABLE', message, undefined, { cause: err });
  }
}

/**
 * The config store on the Kubernetes API: every mesh kind is a CRD (group/plural from
 * @aviary/mesh-api `kinds`). resourceVersion is the API server's, so `apply` with a stale one
 * fails with CONFLICT (the server's 409). Reads go to the API server at the kind's storage
 * version; writes use the object's own apiVersion (the API server stores CRDs without
 * conversion, so a read returns the storage version's apiVersion).
 *
 * `history()` returns only the current object: Kubernetes keeps no earlier versions.
 *
 * `watch()` runs one informer per kind (resync by periodic relist; list/watch errors restart the
 * informer with backoff) and is initialized once every kind has been listed.
 */
export class KubernetesConfigStore implements ConfigStore {
  private readonly api: CustomObjectsApi;
  private readonly kindInfos: readonly KindInfo[];

  constructor(private readonly opts: KubernetesConfigStoreOptions) {
    this.api = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.kindInfos = (opts.kinds ?? Object.keys(kinds)).map((k) => this.kindInfo(k));
  }

  private kindInfo(kind: string): KindInfo {
    if (!isMeshKind(kind)) throw new AviaryError('INVALID_ARGUMENT', 'INVALID_KIND', `kind ${JSON.stringify(kind)} is not a mesh kind`);
    return kinds[kind];
  }

  private served(kind: string): KindInfo {
    const info = this.kindInfo(kind);
    if (!this.kindInfos.includes(info)) throw new AviaryError('INVALID_ARGUMENT', 'INVALID_KIND', `kind ${kind} is not served by this store`);
    return info;
  }

  private versionFor(info: KindInfo, apiVersion: string): string {
    const [group, version] = apiVersion.split('/');
    if (group !== info.group || version === undefined || !info.versions.includes(version)) {
      throw new AviaryError('INVALID_ARGUMENT', 'INVALID_API_VERSION', `apiVersion ${JSON.stringify(apiVersion)} is not served for ${info.kind} (want ${info.group}/${info.versions.join('|')})`);
    }
    return version;
  }

  async list(filter: ListFilter = {}): Promise<StoredObject[]> {
    const infos = filter.kind === undefined ? this.kindInfos : [this.served(filter.kind)];
    const out: StoredObject[] = [];
    for (const info of infos) {
      const version = info.versions[0]!;
      let list: KubernetesListObject<CustomObject>;
      try {
        list = (filter.namespace === undefined || !info.namespaced
          ? await this.api.listCustomObjectForAllNamespaces({ group: info.group, version, resourcePlural: info.plural })
          : await this.api.listNamespacedCustomObject({ group: info.group, version, namespace: filter.namespace, plural: info.plural })) as KubernetesListObject<CustomObject>;
      } catch (err) {
        if (statusOf(err) === 404 && filter.kind === undefined) continue; // CRD not installed
        throw apiError(err, `list ${info.plural}.${info.group}`);
      }
      for (const item of list.items) out.push(toStored(item, info.kind));
    }
    return out.sort((a, b) => `${a.kind}/${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.namespace}/${b.metadata.name}`));
  }

  async get(ref: ResourceRef): Promise<StoredObject | undefined> {
    const info = this.served(ref.kind);
    try {
      const where = { group: info.group, version: info.versions[0]!, plural: info.plural, name: ref.name };
      const o = (info.namespaced ? await this.api.getNamespacedCustomObject({ ...where, namespace: ref.namespace }) : await this.api.getClusterCustomObject(where)) as CustomObject;
      return toStored(o, info.kind);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw apiError(err, `get ${info.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  async apply(object: StoredObject, options: ApplyOptions = {}): Promise<ApplyResult> {
    const info = this.served(object.kind);
    const version = this.versionFor(info, object.apiVersion);
    const ref = { kind: info.kind, namespace: object.metadata.namespace, name: object.metadata.name };
    const expected = object.metadata.resourceVersion;
    let current: StoredObject | undefined;
    if (options.current !== undefined) current = options.current ?? undefined; // read and checked by the caller
    else {
      current = await this.get(ref);
      if (expected !== undefined && expected !== '' && expected !== current?.metadata.resourceVersion) {
        throw resourceVersionConflict(ref, expected, current?.metadata.resourceVersion);
      }
      if (current !== undefined && sameContent(current, object)) return { op: 'unchanged', object: current };
    }
    const { labels, annotations } = object.metadata;
    const body = {
      apiVersion: object.apiVersion,
      kind: info.apiKind,
      metadata: {
        name: ref.name,
        ...(info.namespaced ? { namespace: ref.namespace } : {}),
        ...(labels === undefined ? {} : { labels }),
        ...(annotations === undefined ? {} : { annotations }),
        ...(current === undefined ? {} : { resourceVersion: current.metadata.resourceVersion }),
      },
      spec: object.spec,
    };
    const common = { group: info.group, version, plural: info.plural, body, fieldManager: this.opts.fieldManager ?? 'aviary-pilot' };
    const namespaced = { ...common, namespace: ref.namespace };
    try {
      let o: CustomObject;
      if (current === undefined) o = (info.namespaced ? await this.api.createNamespacedCustomObject(namespaced) : await this.api.createClusterCustomObject(common)) as CustomObject;
      else o = (info.namespaced ? await this.api.replaceNamespacedCustomObject({ ...namespaced, name: ref.name }) : await this.api.replaceClusterCustomObject({ ...common, name: ref.name })) as CustomObject;
      return { op: current === undefined ? 'created' : 'updated', object: toStored(o, info.kind) };
    } catch (err) {
      if (statusOf(err) === 409) {
        const now = await this.get(ref);
        throw resourceVersionConflict(ref, expected ?? current?.metadata.resourceVersion ?? '0', now?.metadata.resourceVersion, messageOf(err));
      }
      throw apiError(err, `${current === undefined ? 'create' : 'update'} ${info.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  /** PUT on the status subresource (every Aviary CRD has one), compare-and-set on resourceVersion. */
  async updateStatus(ref: ResourceRef, status: Readonly<Record<string, unknown>>, resourceVersion: string): Promise<StoredObject> {
    const info = this.served(ref.kind);
    const version = info.versions[0]!;
    const current = await this.get(ref);
    if (current === undefined) throw new AviaryError('NOT_FOUND', 'RESOURCE_NOT_FOUND', `${ref.kind} ${ref.namespace}/${ref.name} not found`);
    const body = {
      apiVersion: `${info.group}/${version}`,
      kind: info.apiKind,
      metadata: { name: ref.name, ...(info.namespaced ? { namespace: ref.namespace } : {}), resourceVersion },
      spec: current.spec,
      status,
    };
    try {
      const where = { group: info.group, version, plural: info.plural, name: ref.name, body, fieldManager: this.opts.fieldManager ?? 'aviary-pilot' };
      const o = (info.namespaced
        ? await this.api.replaceNamespacedCustomObjectStatus({ ...where, namespace: ref.namespace })
        : await this.api.replaceClusterCustomObjectStatus(where)) as CustomObject;
      return toStored(o, info.kind);
    } catch (err) {
      if (statusOf(err) === 409) throw resourceVersionConflict(ref, resourceVersion, (await this.get(ref))?.metadata.resourceVersion, messageOf(err));
      throw apiError(err, `update status of ${info.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  async delete(ref: ResourceRef, resourceVersion?: string): Promise<boolean> {
    const info = this.served(ref.kind);
    const precondition = resourceVersion !== undefined && resourceVersion !== '';
    try {
      const where = { group: info.group, version: info.versions[0]!, plural: info.plural, name: ref.name, ...(precondition ? { body: { preconditions: { resourceVersion } } } : {}) };
      if (info.namespaced) await this.api.deleteNamespacedCustomObject({ ...where, namespace: ref.namespace });
      else await this.api.deleteClusterCustomObject(where);
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) {
        if (precondition) throw resourceVersionConflict(ref, resourceVersion, undefined);
        return false;
      }
      if (status === 409) throw resourceVersionConflict(ref, resourceVersion ?? '', (await this.get(ref))?.metadata.resourceVersion, messageOf(err));
      throw apiError(err, `delete ${info.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  /** Kubernetes keeps no history: the current object only (empty when it does not exist). */
  async history(ref: ResourceRef): Promise<StoredObject[]> {
    const current = await this.get(ref);
    return current === undefined ? [] : [current];
  }

  async watch(listener: (event: ChangeEvent) => void): Promise<Watch> {
    const informers = this.kindInfos.map((info) => {
      const version = info.versions[0]!;
      return new ResilientInformer<CustomObject>(
        this.opts.kubeConfig,
        {
          name: `${info.plural}.${info.group}`,
          path: `/apis/${info.group}/${version}/${info.plural}`,
          list: async () => (await this.api.listCustomObjectForAllNamespaces({ group: info.group, version, resourcePlural: info.plural })) as KubernetesListObject<CustomObject>,
          resyncMs: this.opts.resyncMs ?? 300_000,
          ...(this.opts.backoff === undefined ? {} : { backoff: this.opts.backoff }),
          logger: this.opts.logger,
          missingIsEmpty: true,
        },
        (e) => {
          const object = toStored(e.object, info.kind);
          const ref = { kind: info.kind, namespace: object.metadata.namespace, name: object.metadata.name };
          const revision = revisionOf(object.metadata.resourceVersion);
          if (e.type === 'deleted') listener({ op: 'deleted', ref, revision });
          else listener({ op: e.type === 'added' ? 'created' : 'updated', ref, revision, object });
        },
      );
    });
    for (const i of informers) i.start();
    return {
      initialized: Promise.all(informers.map((i) => i.synced)).then(() => undefined),
      stop: async () => {
        await Promise.all(informers.map((i) => i.stop()));
      },
    };
  }
}
