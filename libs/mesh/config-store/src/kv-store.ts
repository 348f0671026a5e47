import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import { AviaryError } from '@aviary/errors';
import type { Bus } from '@aviary/events';
import { sameContent } from './compare';
import type { ResourceRef, StoredObject } from '@aviary/mesh-api';
import { resourceVersionConflict, type ApplyOptions, type ApplyResult, type ChangeEvent, type ConfigStore, type ListFilter, type Watch } from './store';

export interface KvConfigStoreOptions {
  /** JetStream KV bucket name. */
  readonly bucket?: string;
  /** Versions kept per resource (NATS allows at most 64). */
  readonly history?: number;
  /** Largest stored object in bytes. */
  readonly maxObjectBytes?: number;
  /** Clock for creationTimestamp; injectable for tests. */
  readonly now?: () => Date;
}

const KEY_TOKEN = /^[A-Za-z0-9_=-]+$/;
const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** The key token of the empty namespace of cluster-scoped kinds (never a namespace name: `_` is not in DNS labels). */
const CLUSTER_TOKEN = '_';

/** KV key `<Kind>.<namespace>.<name>`; names may contain dots, kind and namespace may not. */
export function kvKey(ref: ResourceRef): string {
  if (ref.namespace === '') return kvKey({ ...ref, namespace: CLUSTER_TOKEN });
  if (!KEY_TOKEN.test(ref.kind)) throw new AviaryError('INVALID_ARGUMENT', 'INVALID_KIND', `kind ${JSON.stringify(ref.kind)} is not a valid kind`);
  if (!KEY_TOKEN.test(ref.namespace)) throw new AviaryError('INVALID_ARGUMENT', 'INVALID_NAMESPACE', `metadata.namespace ${JSON.stringify(ref.namespace)} is not a valid namespace`);
  if (!NAME.test(ref.name)) throw new AviaryError('INVALID_ARGUMENT', 'INVALID_NAME', `metadata.name ${JSON.stringify(ref.name)} is not a valid name`);
  return `${ref.kind}.${ref.namespace}.${ref.name}`;
}

export function refFromKey(key: string): ResourceRef {
  const [kind = '', namespace = '', ...rest] = key.split('.');
  return { kind, namespace: namespace === CLUSTER_TOKEN ? '' : namespace, name: rest.join('.') };
}

function decode(entry: KvEntry): StoredObject {
  const object = entry.json<StoredObject>();
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(entry.revision) } };
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
}

/**
 * The embedded config store: one JetStream KV bucket, a key per resource, the KV revision as
 * resourceVersion (so updates are compare-and-set) and per-key history. Change events are
 * published by the `announcingChanges` decorator, as for every store.
 */
export class KvConfigStore implements ConfigStore {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly opts: Required<KvConfigStoreOptions>,
  ) {}

  static async open(bus: Bus, options: KvConfigStoreOptions = {}): Promise<KvConfigStore> {
    const opts = { bucket: 'aviary_config', history: 16, maxObjectBytes: 1024 * 1024, now: () => new Date(), ...options };
    // Reads go to the stream's leader (allow_direct: false): a direct get may be answered by a
    // replica that has not applied the latest acknowledged write, so an apply right after another
    // one would compare against stale content ("unchanged", or a spurious conflict).
    const kv = await new Kvm(bus.nc).create(opts.bucket, { history: opts.history, maxValueSize: opts.maxObjectBytes, replicas: bus.replicas, allow_direct: false });
    return new KvConfigStore(kv, await jetstreamManager(bus.nc), opts);
  }

  /**
   * Reads leave no state on the server: the keys come from the stream's subject list (one
   * STREAM.INFO request with a subject filter, paged by the client) and each value from a
   * get answered by the stream's leader. `kv.keys()` would create a consumer per call that lingers after the read.
   */
  async list(filter: ListFilter = {}): Promise<StoredObject[]> {
    const prefix = `$KV.${this.opts.bucket}.`;
    const info = await this.jsm.streams.info(`KV_${this.opts.bucket}`, { subjects_filter: `${prefix}${filter.kind ?? '*'}.${filter.namespace === '' ? CLUSTER_TOKEN : (filter.namespace ?? '*')}.>` });
    const keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
    keys.sort();
    const out: StoredObject[] = [];
    for (const key of keys) {
      const entry = await this.kv.get(key);
      if (entry !== null && entry.operation === 'PUT') out.push(decode(entry));
    }
    return out;
  }

  async get(ref: ResourceRef): Promise<StoredObject | undefined> {
    const entry = await this.kv.get(kvKey(ref));
    return entry === null || entry.operation !== 'PUT' ? undefined : decode(entry);
  }

  async apply(object: StoredObject, options: ApplyOptions = {}): Promise<ApplyResult> {
    const ref = { kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name };
    const key = kvKey(ref);
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

    const { resourceVersion: _rv, generation: _g, creationTimestamp: _c, ...userMeta } = object.metadata;
    const stored: StoredObject = {
      apiVersion: object.apiVersion,
      kind: object.kind,
      metadata: {
        ...userMeta,
        generation: (current?.metadata.generation ?? 0) + 1,
        creationTimestamp: current?.metadata.creationTimestamp ?? this.opts.now().toISOString(),
      },
      spec: object.spec,
      // The status belongs to the controller that writes it (updateStatus), as with Kubernetes' status subresource.
      ...(current?.status === undefined ? {} : { status: current.status }),
    };
    const bytes = Buffer.from(JSON.stringify(stored));
    if (bytes.byteLength > this.opts.maxObjectBytes) {
      throw new AviaryError('PAYLOAD_TOO_LARGE', 'OBJECT_TOO_LARGE', `${ref.kind} ${ref.namespace}/${ref.name} is ${bytes.byteLength} bytes; the limit is ${this.opts.maxObjectBytes}`);
    }
    let revision: number;
    try {
      revision = current === undefined ? await this.createKey(key, bytes) : await this.kv.update(key, bytes, Number(current.metadata.resourceVersion));
    } catch (err) {
      if (isWrongLastSequence(err)) {
        const now = await this.get(ref);
        throw resourceVersionConflict(ref, expected ?? current?.metadata.resourceVersion ?? '0', now?.metadata.resourceVersion);
      }
      throw err;
    }
    const op = current === undefined ? 'created' : 'updated';
    return { op, object: { ...stored, metadata: { ...stored.metadata, resourceVersion: String(revision) } } };
  }

  async updateStatus(ref: ResourceRef, status: Readonly<Record<string, unknown>>, resourceVersion: string): Promise<StoredObject> {
    const key = kvKey(ref);
    const current = await this.get(ref);
    if (current === undefined) throw new AviaryError('NOT_FOUND', 'RESOURCE_NOT_FOUND', `${ref.kind} ${ref.namespace}/${ref.name} not found`);
    if (current.metadata.resourceVersion !== resourceVersion) throw resourceVersionConflict(ref, resourceVersion, current.metadata.resourceVersion);
    const { resourceVersion: _rv, ...metadata } = current.metadata;
    const stored: StoredObject = { ...current, metadata, status };
    const bytes = Buffer.from(JSON.stringify(stored));
    if (bytes.byteLength > this.opts.maxObjectBytes) {
      throw new AviaryError('PAYLOAD_TOO_LARGE', 'OBJECT_TOO_LARGE', `${ref.kind} ${ref.namespace}/${ref.name} with its status is ${bytes.byteLength} bytes; the limit is ${this.opts.maxObjectBytes}`);
    }
    let revision: number;
    try {
      revision = await this.kv.update(key, bytes, Number(resourceVersion));
    } catch (err) {
      if (isWrongLastSequence(err)) throw resourceVersionConflict(ref, resourceVersion, (await this.get(ref))?.metadata.resourceVersion);
      throw err;
    }
    return { ...stored, metadata: { ...metadata, resourceVersion: String(revision) } };
  }

  /** Create that also succeeds over a delete marker (a key that existed and was deleted). */
  private async createKey(key: string, bytes: Uint8Array): Promise<number> {
    const last = await this.kv.get(key);
    if (last === null) return this.kv.create(key, bytes);
    if (last.operation === 'PUT') throw new Error('wrong last sequence: key exists');
    return this.kv.update(key, bytes, last.revision);
  }

  async delete(ref: ResourceRef, resourceVersion?: string): Promise<boolean> {
    const key = kvKey(ref);
    const current = await this.get(ref);
    if (current === undefined) {
      if (resourceVersion !== undefined && resourceVersion !== '') throw resourceVersionConflict(ref, resourceVersion, undefined);
      return false;
    }
    const revision = Number(current.metadata.resourceVersion);
    if (resourceVersion !== undefined && resourceVersion !== '' && resourceVersion !== current.metadata.resourceVersion) {
      throw resourceVersionConflict(ref, resourceVersion, current.metadata.resourceVersion);
    }
    try {
      await this.kv.delete(key, { previousSeq: revision });
    } catch (err) {
      if (isWrongLastSequence(err)) throw resourceVersionConflict(ref, String(revision), (await this.get(ref))?.metadata.resourceVersion);
      throw err;
    }
    return true;
  }

  async history(ref: ResourceRef): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    const iter = await this.kv.history({ key: kvKey(ref) });
    for await (const entry of iter) if (entry.operation === 'PUT') out.push(decode(entry));
    return out;
  }

  async watch(listener: (event: ChangeEvent) => void): Promise<Watch> {
    const status = await this.kv.status();
    const lastAtStart = status.streamInfo.state.last_seq;
    let markInitialized: () => void = () => {};
    const initialized = new Promise<void>((resolve) => (markInitialized = resolve));
    if (lastAtStart === 0) markInitialized();
    const iter = await this.kv.watch({ key: '>', include: KvWatchInclude.LastValue });
    const seen = new Set<string>();
    const done = (async () => {
      for await (const entry of iter) {
        const ref = refFromKey(entry.key);
        if (entry.operation === 'PUT') {
          const object = decode(entry);
          listener({ op: seen.has(entry.key) ? 'updated' : 'created', ref, revision: entry.revision, object });
          seen.add(entry.key);
        } else if (seen.delete(entry.key)) {
          listener({ op: 'deleted', ref, revision: entry.revision });
        }
        if (entry.revision >= lastAtStart) markInitialized();
      }
    })();
    return {
      initialized,
      stop: async () => {
        iter.stop();
        await done.catch(() => undefined);
      },
    };
  }
}
