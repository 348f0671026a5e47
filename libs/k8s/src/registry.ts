import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1EndpointSlice, type V1Node, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { withWatch, type ChangeEvent, type ConfigStore, type Watch } from '@aviary/config-store';
import type { Logger } from '@aviary/observability';
import { ResilientInformer, type WatchEventType } from './informer';
import { revisionOf } from './config-store';
import { RegistryTracker } from './registry-tracker';

export interface KubernetesRegistryOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** DNS suffix of Service hosts (`cluster.local`). */
  readonly domainSuffix?: string;
  readonly resyncMs?: number;
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
}

/** A source of change events in the ConfigStore's watch contract (every object as `created`, then changes). */
export interface ChangeSource {
  watch(listener: (event: ChangeEvent) => void): Promise<Watch>;
}

/**
 * The Kubernetes service registry: informers on Services, EndpointSlices, Pods and Nodes feed a
 * `RegistryTracker`; after any change (coalesced per event-loop turn) it re-translates only the
 * Services the changes touch and reports what changed in the synthesized objects, so only
 * objects whose synthesized content changed produce events (a Pod status heartbeat, a slice's
 * resourceVersion bump or an unrelated Node label produce none).
 */
export class KubernetesRegistry implements ChangeSource {
  constructor(private readonly opts: KubernetesRegistryOptions) {}

  async watch(listener: (event: ChangeEvent) => void): Promise<Watch> {
    const { kubeConfig: kc, logger } = this.opts;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const common = { resyncMs: this.opts.resyncMs ?? 300_000, logger, ...(this.opts.backoff === undefined ? {} : { backoff: this.opts.backoff }) };
    const tracker = new RegistryTracker(this.opts.domainSuffix ?? 'cluster.local');
    let pending = false;
    let stopped = false;
    let initialized = false;
    let revision = 0;
    const publish = (): void => {
      for (const event of tracker.flush(revision)) listener(event);
    };
    const schedule = (o: KubernetesObject): void => {
      revision = Math.max(revision, revisionOf(o.metadata?.resourceVersion));
      if (pending || !initialized) return;
      pending = true;
      setImmediate(() => {
        pending = false;
        if (!stopped) publish();
      });
    };
    const mk = <T extends KubernetesObject>(name: string, path: string, list: () => Promise<KubernetesListObject<T>>, feed: (type: WatchEventType, object: T) => void): ResilientInformer<T> =>
      new ResilientInformer<T>(kc, { ...common, name, path, list }, (e) => {
        feed(e.type, e.object);
        schedule(e.object);
      });
    const all = [
      mk<V1Service>('services', '/api/v1/services', () => core.listServiceForAllNamespaces(), (t, o) => tracker.service(t, o)),
      mk<V1EndpointSlice>('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces(), (t, o) => tracker.slice(t, o)),
      mk<V1Pod>('pods', '/api/v1/pods', () => core.listPodForAllNamespaces(), (t, o) => tracker.pod(t, o)),
      mk<V1Node>('nodes', '/api/v1/nodes', () => core.listNode(), (t, o) => tracker.node(t, o)),
    ];

    for (const i of all) i.start();
    const synced = Promise.all(all.map((i) => i.synced)).then(() => {
      if (stopped) return;
      initialized = true;
      publish();
      logger.info({ objects: tracker.size }, 'kubernetes registry synced');
    });
    return {
      initialized: synced,
      stop: async () => {
        stopped = true;
        await Promise.all(all.map((i) => i.stop()));
      },
    };
  }
}

/**
 * A ConfigStore whose `watch` also delivers the events of other sources (the Kubernetes
 * registry): reads and writes go to `store` alone; `initialized` waits for every source.
 */
export function withChangeSources(store: ConfigStore, sources: readonly ChangeSource[]): ConfigStore {
  return withWatch(store, async (listener) => {
    const watches = await Promise.all([store, ...sources].map((s) => s.watch(listener)));
    return {
      initialized: Promise.all(watches.map((w) => w.initialized)).then(() => undefined),
      stop: async () => {
        await Promise.all(watches.map((w) => w.stop()));
      },
    };
  });
}

