import { refKey, refOf, type ResourceRef, type StoredObject } from '@aviary/mesh-api';
import { withWatch, type ChangeEvent, type ConfigStore, type ListFilter } from './store';

/** The reads a periodic reconciler makes of the store. */
export type ObjectReads = Pick<ConfigStore, 'list' | 'get'>;

const revisionOf = (object: StoredObject): number => {
  const n = Number(object.metadata.resourceVersion);
  return Number.isSafeInteger(n) ? n : 0;
};

/**
 * The current objects of some kinds, kept from a store's watch, for a reader that would otherwise
 * ask the store every tick (pilot's canary controller reconciles once a second: on Kubernetes each
 * read was a request to the API server). `watching(store)` returns the store with a watch that also
 * feeds this copy, so the watch pilot's Discovery already runs serves it: no second informer or KV
 * watcher.
 *
 * Reads answer from memory once that watch has seen every existing object, and go to the store
 * before that or after the watch stops. A reader that writes calls `wrote` with what the store
 * returned, so its next read never sees the version before its own write (the watch reports the
 * write a little later). An object is replaced only by a higher revision (both stores' resource
 * versions are increasing integers: KV revisions and etcd's); `wrote` updates only objects the
 * watch has reported, so a late write-back cannot bring back a deleted one.
 */
export class WatchedObjects implements ObjectReads {
  private readonly byKind = new Map<string, Map<string, StoredObject>>();
  private synced = false;

  constructor(
    private readonly store: ObjectReads,
    kinds: readonly string[],
  ) {
    for (const kind of kinds) this.byKind.set(kind, new Map());
  }

  /** `store` with a watch that feeds this copy as well as its listener. */
  watching(store: ConfigStore): ConfigStore {
    return withWatch(store, async (listener) => {
      const watch = await store.watch((event) => {
        this.observe(event);
        listener(event);
      });
      void watch.initialized.then(
        () => (this.synced = true),
        () => undefined,
      );
      return {
        initialized: watch.initialized,
        stop: async () => {
          this.synced = false;
          await watch.stop();
        },
      };
    });
  }

  /** Whether reads answer from memory (the watch has seen every existing object and runs). */
  get live(): boolean {
    return this.synced;
  }

  private observe(event: ChangeEvent): void {
    const objects = this.byKind.get(event.ref.kind);
    if (objects === undefined) return;
    const key = refKey(event.ref);
    if (event.op === 'deleted' || event.object === undefined) {
      objects.delete(key);
      return;
    }
    const held = objects.get(key);
    if (held === undefined || revisionOf(event.object) >= revisionOf(held)) objects.set(key, event.object);
  }

  /** Takes an object the reader has just written, as the store returned it. */
  wrote(object: StoredObject): void {
    const objects = this.byKind.get(object.kind);
    const key = refKey(refOf(object));
    const held = objects?.get(key);
    if (held !== undefined && revisionOf(object) > revisionOf(held)) objects!.set(key, object);
  }

  async list(filter: ListFilter = {}): Promise<StoredObject[]> {
    const objects = filter.kind === undefined ? undefined : this.byKind.get(filter.kind);
    if (!this.synced || objects === undefined) return this.store.list(filter);
    const out = [...objects.values()].filter((o) => filter.namespace === undefined || o.metadata.namespace === filter.namespace);
    return out.sort((a, b) => refKey(refOf(a)).localeCompare(refKey(refOf(b))));
  }

  async get(ref: ResourceRef): Promise<StoredObject | undefined> {
    const objects = this.byKind.get(ref.kind);
    if (!this.synced || objects === undefined) return this.store.get(ref);
    return objects.get(refKey(ref));
  }
}
