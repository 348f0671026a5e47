import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '@aviary/observability';
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
export class KubernetesNamespaceLabels {
  private readonly informer: ResilientInformer<V1Namespace>;
  private readonly labels = new Map<string, Readonly<Record<string, string>>>();
  private pending = false;

  constructor(
    opts: KubernetesNamespaceLabelsOptions,
    private readonly onChange: (labels: ReadonlyMap<string, Readonly<Record<string, string>>>) => void,
  ) {
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
        const before = JSON.stringify(this.labels.get(name));
        if (e.type === 'deleted') this.labels.delete(name);
        else this.labels.set(name, { ...(e.object.metadata?.labels ?? {}) });
        if (JSON.stringify(this.labels.get(name)) !== before) this.schedule();
      },
    );
  }

  /** Starts watching; resolves after the first complete list (the labels handed over once). */
  async start(): Promise<void> {
    this.informer.start();
    await this.informer.synced;
    this.onChange(new Map(this.labels));
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }

  private schedule(): void {
    if (this.pending || !this.informer.hasSynced) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.onChange(new Map(this.labels));
    });
  }
}
