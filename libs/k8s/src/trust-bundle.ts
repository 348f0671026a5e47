import { CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '@aviary/observability';
import { ResilientInformer } from './informer';
import { messageOf, statusOf } from './kube-config';

/** Istio's name and key for the trust bundle ConfigMap that every namespace gets. */
export const ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';
export const ROOT_CERT_KEY = 'root-cert.pem';

export interface TrustBundleConfigMapsOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly name?: string;
  /** Every this often every namespace's ConfigMap is checked again (repairs edits and deletions). */
  readonly resyncMs?: number;
}

/**
 * Writes the trust bundle (every trusted root, PEM, concatenated) to the ConfigMap
 * `istio-ca-root-cert` (key `root-cert.pem`) of every namespace: namespaces are watched, new
 * ones get it as they appear, and `setRoots` rewrites all of them. Needs create on configmaps and
 * get/update on that name only (the chart's citadel ClusterRole).
 */
export class TrustBundleConfigMaps {
  private readonly api: CoreV1Api;
  private readonly namespaces: ResilientInformer<V1Namespace>;
  private readonly name: string;
  private pem: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: TrustBundleConfigMapsOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.name = opts.name ?? ROOT_CERT_CONFIGMAP;
    this.namespaces = new ResilientInformer<V1Namespace>(
      opts.kubeConfig,
      { name: 'namespaces', path: '/api/v1/namespaces', list: () => this.api.listNamespace(), resyncMs: opts.resyncMs ?? 300_000, logger: opts.logger },
      (e) => {
        if (e.type !== 'deleted') this.enqueue([e.object]);
      },
    );
  }

  /** Starts watching namespaces; resolves after the first list. */
  async start(roots?: readonly string[]): Promise<void> {
    if (roots !== undefined) this.pem = pemOf(roots);
    this.namespaces.start();
    await this.namespaces.synced;
    this.timer = setInterval(() => this.enqueue(this.namespaces.list()), this.opts.resyncMs ?? 300_000);
    this.timer.unref();
    await this.queue;
  }

  /** Sets the bundle and rewrites every namespace's ConfigMap; resolves when all are written. */
  async setRoots(roots: readonly string[]): Promise<void> {
    const pem = pemOf(roots);
    if (pem === this.pem) return this.queue;
    this.pem = pem;
    this.enqueue(this.namespaces.list());
    return this.queue;
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.namespaces.stop();
    await this.queue;
  }

  private enqueue(namespaces: readonly V1Namespace[]): void {
    this.queue = this.queue.then(async () => {
      for (const ns of namespaces) {
        const name = ns.metadata?.name;
        if (name === undefined || ns.status?.phase === 'Terminating' || this.pem === undefined) continue;
        try {
          await this.ensure(name, this.pem);
        } catch (err) {
          this.opts.logger.warn({ namespace: name, status: statusOf(err), err: messageOf(err) }, `could not write ConfigMap ${this.name}`);
        }
      }
    });
  }

  private async ensure(namespace: string, pem: string): Promise<void> {
    let current: V1ConfigMap | undefined;
    try {
      current = await this.api.readNamespacedConfigMap({ name: this.name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (current === undefined) {
      await this.api.createNamespacedConfigMap({ namespace, body: { metadata: { name: this.name, namespace, labels: { 'istio.io/config': 'true' } }, data: { [ROOT_CERT_KEY]: pem } } });
      return;
    }
    if (current.data?.[ROOT_CERT_KEY] === pem) return;
    await this.api.replaceNamespacedConfigMap({ name: this.name, namespace, body: { ...current, data: { ...(current.data ?? {}), [ROOT_CERT_KEY]: pem } } });
  }
}

function pemOf(roots: readonly string[]): string {
  return roots.map((r) => r.trim() + '\n').join('');
}
