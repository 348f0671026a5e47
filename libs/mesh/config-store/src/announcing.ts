import type { Bus } from '@aviary/events';
import { Subjects } from '@aviary/events';
import { refKey } from '@aviary/mesh-api';
import { withWatch, type ChangeEvent, type ConfigStore } from './store';

/** What the decorator needs of the bus: a durable publish with a message id. */
export type DurablePublisher = Pick<Bus, 'publishDurable'>;

/** The JetStream message id of a change: the same change announced twice is stored once. */
export function changeMessageId(event: Pick<ChangeEvent, 'op' | 'ref' | 'revision'>): string {
  return `config-${event.op}-${refKey(event.ref)}-${event.revision}`;
}

/**
 * The one publisher of `aviary.config.v1.changed`, for every ConfigStore (NATS KV and
 * Kubernetes): every change the store's `watch` reports after its initial state — written
 * through pilot's API, by kubectl, or by another pilot replica — is published durably with
 * `changeMessageId` as its message id, so JetStream's duplicate window keeps one copy however
 * many replicas announce it. The initial replay of existing objects is not announced.
 *
 * It announces what a watch sees, so it announces while the decorated store is watched; pilot's
 * Discovery watches it for its whole life. A publish that fails is reported to `onError` (the
 * change itself is stored; subscribers catch up from the store).
 */
export function announcingChanges(store: ConfigStore, bus: DurablePublisher, onError: (err: unknown, event: ChangeEvent) => void): ConfigStore {
  const announce = (event: ChangeEvent): void => {
    const data = { op: event.op, kind: event.ref.kind, namespace: event.ref.namespace, name: event.ref.name, revision: event.revision };
    bus.publishDurable(Subjects.configChanged, data, changeMessageId(event)).catch((err: unknown) => onError(err, event));
  };
  return withWatch(store, async (listener) => {
    let live = false;
    const watch = await store.watch((event) => {
      listener(event);
      if (live) announce(event);
    });
    void watch.initialized.then(() => (live = true));
    return watch;
  });
}
