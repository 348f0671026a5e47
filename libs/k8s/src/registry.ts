import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1EndpointSlice, type V1Node, type V1Pod, type V1Service } from '@kubernetes/client-node';
import type { ChangeEvent, ConfigStore, Watch } from '@aviary/config-store';
import { refKey, refOf, type StoredObject } from '@aviary/mesh-api';
import type { Logger } from '@aviary/observability';
import { ResilientInformer } from './informer';
import { revisionOf } from './config-store';
import { translateRegistry } from './registry-translate';

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
 * The Kubernetes service registry: informers on Services, EndpointSlices, Pods and Nodes;
 * after any change (coalesced per event-loop turn) the whole registry is re-translated
 * (`translateRegistry`) and compared with what was last reported, so only objects whose
 * synthesized content changed produce events (a Pod status heartbeat, a slice's
 * resourceVersion bump or an unrelated Node label produce none).
 */
export class KubernetesRegistry implements ChangeSource {
  constructor(private readonly opts: KubernetesRegistryOptions) {}

  async watch(listener: (event: ChangeEvent) => void): Promise<Watch> {
    const { kubeConfig: kc, logger } = this.opts;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const common = { resyncMs: this.opts.resyncMs ?? 300_000, logger, ...(this.opts.backoff === undefined ? {} : { backoff: this.opts.backoff }) };
    let pending = false;
    let stopped = false;
    let revision = 0;
    const reported = new Map<string, { json: string; object: StoredObject }>();
    const schedule = (o: KubernetesObject): void => {
      revision = Math.max(revision, revisionOf(o.metadata?.resourceVersion));
      if (pending || !initializedFlag) return;
      pending = true;
      setImmediate(() => {
        pending = false;
        if (!stopped) publish();
      });
    };
    let initializedFlag = false;
    const mk = <T extends KubernetesObject>(name: string, path: string, list: () => Promise<KubernetesListObject<T>>): ResilientInformer<T> =>
      new ResilientInformer<T>(kc, { ...common, name, path, list }, (e) => schedule(e.object));
    const services = mk<V1Service>('services', '/api/v1/services', () => core.listServiceForAllNamespaces());
    const slices = mk<V1EndpointSlice>('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces());
    const pods = mk<V1Pod>('pods', '/api/v1/pods', () => core.listPodForAllNamespaces());
    const nodes = mk<V1Node>('nodes', '/api/v1/nodes', () => core.listNode());
    const all = [services, slices, pods, nodes];

    const publish = (): void => {
      const podMap = new Map(pods.list().map((p) => [`${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`, p]));
      const nodeMap = new Map(nodes.list().map((n) => [n.metadata?.name ?? '', n]));
      const objects = translateRegistry({ services: services.list(), endpointSlices: slices.list(), pods: podMap, nodes: nodeMap }, this.opts.domainSuffix ?? 'cluster.local');
      const seen = new Set<string>();
      for (const object of objects) {
        const key = refKey(refOf(object));
        seen.add(key);
        const json = JSON.stringify(object.spec);
        const before = reported.get(key);
        if (before?.json === json) continue;
        const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(revision) } };
        reported.set(key, { json, object: stored });
        listener({ op: before === undefined ? 'created' : 'updated', ref: refOf(object), revision, object: stored });
      }
      for (const [key, { object }] of [...reported]) {
        if (seen.has(key)) continue;
        reported.delete(key);
        listener({ op: 'deleted', ref: refOf(object), revision });
      }
    };

    for (const i of all) i.start();
    const initialized = Promise.all(all.map((i) => i.synced)).then(() => {
      if (stopped) return;
      initializedFlag = true;
      publish();
      logger.info({ objects: reported.size }, 'kubernetes registry synced');
    });
    return {
      initialized,
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
  return {
    list: (filter) => store.list(filter),
    get: (ref) => store.get(ref),
    apply: (object) => store.apply(object),
    updateStatus: (ref, status, rv) => store.updateStatus(ref, status, rv),
    delete: (ref, rv) => store.delete(ref, rv),
    history: (ref) => store.history(ref),
    watch: async (listener) => {
      const watches = await Promise.all([store, ...sources].map((s) => s.watch(listener)));
      return {
        initialized: Promise.all(watches.map((w) => w.initialized)).then(() => undefined),
        stop: async () => {
          await Promise.all(watches.map((w) => w.stop()));
        },
      };
    },
  };
}

