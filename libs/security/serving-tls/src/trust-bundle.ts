import { Kvm } from '@nats-io/kv';
import { Subjects, type Bus, type Stoppable } from '@aviary/events';

/** Where citadel keeps the current trust bundle (JetStream KV), so a late subscriber reads it. */
export const BUNDLE_BUCKET = 'aviary-ca';
export const BUNDLE_KEY = 'bundle';

/**
 * Follows the trust bundle: the current one from the KV bucket (if citadel has written it),
 * then every update on `aviary.ca.v1.bundle`. Versions only move forward, so a late KV read
 * never undoes a newer event.
 */
export async function followTrustBundle(bus: Bus, onRoots: (roots: readonly string[], version: number) => void, onError: (err: unknown) => void): Promise<Stoppable> {
  let version = -1;
  const accept = (v: number, roots: readonly string[]): void => {
    if (v <= version) return;
    version = v;
    onRoots(roots, v);
  };
  const sub = bus.subscribe(Subjects.caBundle, (e) => accept(e.data.version, e.data.roots));
  try {
    const kv = await new Kvm(bus.nc).open(BUNDLE_BUCKET);
    const entry = await kv.get(BUNDLE_KEY);
    if (entry !== null && entry.length > 0) {
      const data = entry.json<{ version: number; roots: string[] }>();
      if (Number.isInteger(data.version) && Array.isArray(data.roots) && data.roots.length > 0) accept(data.version, data.roots);
    }
  } catch (err) {
    onError(err);
  }
  return sub;
}
