import { makeInformer, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '@aviary/observability';
import { messageOf, statusOf } from './kube-config';

export type WatchEventType = 'added' | 'updated' | 'deleted';

export interface WatchedEvent<T> {
  readonly type: WatchEventType;
  readonly object: T;
}

export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** For logs: `services`, `virtualservices.networking.istio.io`, … */
  readonly name: string;
  /** Watch path, e.g. `/api/v1/services` or `/apis/<group>/<version>/<plural>`. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  /** Every this often the informer is replaced by a fresh one (a full relist); 0 disables. */
  readonly resyncMs: number;
  /** Restart delay after a list or watch error: doubles from `min` up to `max`. */
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
  readonly logger: Logger;
  /**
   * A 404 on the list (e.g. the CRD is not installed) counts as an empty, synced list; the
   * informer keeps retrying with backoff so the kind appears once its CRD does.
   */
  readonly missingIsEmpty?: boolean;
}

/** `<namespace>/<name>` (cluster-scoped objects: `/<name>`). */
export function objectKey(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/**
 * A `makeInformer` (client-node ListWatch) that survives: the library's informer stops for
 * good on a list or watch error, so this one replaces it with a fresh informer after a backoff
 * (which relists), and also replaces it every `resyncMs` (a periodic relist that repairs any
 * missed event). It keeps its own cache and reports only real changes (a relisted object with
 * the same resourceVersion is not an update); objects that vanished while it was not watching
 * are reported deleted after the relist. `synced` resolves after the first complete list.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly cache = new Map<string, T>();
  private generation = 0;
  private informer: Informer<T> | undefined;
  private stopped = true;
  private retryMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private markSynced: () => void = () => undefined;
  private isSynced = false;
  /** Resolves after the first complete list has been applied to the cache (and reported). */
  readonly synced: Promise<void>;
  /** Restarts after errors, for tests and metrics. */
  restarts = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: ResilientInformerOptions<T>,
    private readonly onEvent: (event: WatchedEvent<T>) => void,
  ) {
    this.retryMs = opts.backoff?.minMs ?? 1_000;
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  get hasSynced(): boolean {
    return this.isSynced;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.run();
    if (this.opts.resyncMs > 0) {
      this.resyncTimer = setInterval(() => {
        if (this.restartTimer === undefined) this.run();
      }, this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation += 1;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    if (this.resyncTimer !== undefined) clearInterval(this.resyncTimer);
    this.restartTimer = undefined;
    const informer = this.informer;
    this.informer = undefined;
    await informer?.stop().catch(() => undefined);
  }

  /** The cached objects (after `synced`). */
  list(): T[] {
    return [...this.cache.values()];
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  /** Replaces the running informer with a fresh one (list, then watch). */
  private run(): void {
    const gen = ++this.generation;
    const old = this.informer;
    this.informer = undefined;
    void old?.stop().catch(() => undefined);
    const current = (): boolean => gen === this.generation && !this.stopped;

    const listFn = async (): Promise<KubernetesListObject<T>> => {
      let list: KubernetesListObject<T>;
      try {
        list = await this.opts.list();
      } catch (err) {
        if (this.opts.missingIsEmpty === true && statusOf(err) === 404 && current()) {
          this.reconcile([], false);
          this.opts.logger.warn({ informer: this.opts.name }, 'resource not served (CRD missing?); treating as empty and retrying');
        }
        throw err;
      }
      if (current()) this.reconcile(list.items);
      return list;
    };
    const informer = makeInformer<T>(this.kc, this.opts.path, listFn);
    this.informer = informer;
    const upsert = (obj: T): void => {
      if (current()) this.upsert(obj);
    };
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (obj: T) => {
      if (current()) this.remove(objectKey(obj));
    });
    informer.on('error', (err: unknown) => {
      if (current()) this.scheduleRestart(err);
    });
    informer.start().catch((err: unknown) => {
      if (current()) this.scheduleRestart(err);
    });
  }

  private scheduleRestart(err: unknown): void {
    if (this.restartTimer !== undefined) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.opts.backoff?.maxMs ?? 30_000);
    this.restarts += 1;
    this.opts.logger.warn({ informer: this.opts.name, status: statusOf(err), err: messageOf(err), retryInMs: delay }, 'list/watch failed; restarting the informer');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) this.run();
    }, delay);
    this.restartTimer.unref();
  }

  /** A complete list: report what changed against the cache, including deletions. */
  private reconcile(items: readonly T[], resetBackoff = true): void {
    if (resetBackoff) this.retryMs = this.opts.backoff?.minMs ?? 1_000;
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(objectKey(item));
      this.upsert(item);
    }
    for (const key of [...this.cache.keys()]) if (!seen.has(key)) this.remove(key);
    if (!this.isSynced) {
      this.isSynced = true;
      this.markSynced();
    }
  }

  private upsert(obj: T): void {
    const key = objectKey(obj);
    const had = this.cache.get(key);
    if (had !== undefined && had.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    this.cache.set(key, obj);
    this.emit({ type: had === undefined ? 'added' : 'updated', object: obj });
  }

  private remove(key: string): void {
    const had = this.cache.get(key);
    if (had === undefined) return;
    this.cache.delete(key);
    this.emit({ type: 'deleted', object: had });
  }

  private emit(event: WatchedEvent<T>): void {
    try {
      this.onEvent(event);
    } catch (err) {
      this.opts.logger.error({ informer: this.opts.name, err }, 'informer event handler failed');
    }
  }
}
