import type { KubernetesObject } from '@kubernetes/client-node';
import type { ResilientInformer } from './informer';

/**
 * A map a subclass keeps from a Kubernetes watch (its `informer`'s events call `changed()`),
 * handed whole to `onChange`: once after the first complete list, then once per tick of changes.
 */
export abstract class InformedMap<T extends KubernetesObject, V> {
  protected abstract readonly informer: ResilientInformer<T>;
  protected readonly entries = new Map<string, V>();
  private pending = false;

  protected constructor(private readonly onChange: (entries: ReadonlyMap<string, V>) => void) {}

  /** Starts watching; resolves after the first complete list (the map handed over once). */
  async start(): Promise<void> {
    this.informer.start();
    await this.informer.synced;
    this.onChange(new Map(this.entries));
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }

  /** An entry changed: hand the map over on the next tick (changes of one tick coalesce). */
  protected changed(): void {
    if (this.pending || !this.informer.hasSynced) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.onChange(new Map(this.entries));
    });
  }
}
