import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '@aviary/observability';
import { InformedMap } from './informed-map';
import { ResilientInformer } from './informer';

export interface KubernetesNamespaceLabelsOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly resyncMs?: number;
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
}

/**
 * The labels of every Namespace, handed to `onChange` as `namespace → labels` after the first
 * complete list and on every change of a label set (a namespace created, relabelled, deleted).
 * Pilot's model selects Gateway API routes by them (`allowedRoutes.namespaces.from: Selector`).
 */
export class KubernetesNamespaceLabels extends InformedMap<V1Namespace, Readonly<Record<string, string>>> {
  protected readonly informer: ResilientInformer<V1Namespace>;

  constructor(
    opts: KubernetesNamespaceLabelsOptions,
    onChange: (labels: ReadonlyMap<string, Readonly<Record<string, string>>>) => void,
  ) {
    super(onChange);
    const core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.informer = new ResilientInformer<V1Namespace>(
      opts.kubeConfig,
      {
        name: 'namespaces',
        path: '/api/v1/namespaces',
        list: () => core.listNamespace(),
        resyncMs: opts.resyncMs ?? 300_000,
        logger: opts.logger,
        ...(opts.backoff !== undefined && { backoff: opts.backoff }),
      },
      (e) => {
        const name = e.object.metadata?.name ?? '';
        const before = JSON.stringify(this.entries.get(name));
        if (e.type === 'deleted') this.entries.delete(name);
        else this.entries.set(name, { ...(e.object.metadata?.labels ?? {}) });
        if (JSON.stringify(this.entries.get(name)) !== before) this.changed();
      },
    );
  }
}
