import { Kvm, type KV } from '@nats-io/kv';
import type { BundleSink, TrustBundle } from '@aviary/ca';
import { Subjects, type Bus } from '@aviary/events';
import { BUNDLE_BUCKET, BUNDLE_KEY } from '@aviary/serving-tls';

export { BUNDLE_BUCKET, BUNDLE_KEY };

/**
 * Publishes the trust bundle on aviary.ca.v1.bundle and stores it in the JetStream KV bucket
 * `aviary-ca` under `bundle`, so a subscriber that starts later reads the current one.
 * Resolves only after the KV store acknowledged the write.
 */
export class NatsBundleSink implements BundleSink {
  private kv: Promise<KV> | undefined;

  constructor(private readonly bus: Bus) {}

  private bucket(): Promise<KV> {
    this.kv ??= new Kvm(this.bus.nc).create(BUNDLE_BUCKET, { history: 5, description: 'Aviary CA trust bundle', replicas: this.bus.replicas }).catch((err: unknown) => {
      this.kv = undefined;
      throw err;
    });
    return this.kv;
  }

  async publish(bundle: TrustBundle): Promise<void> {
    const data = { version: bundle.version, roots: [...bundle.roots] };
    const kv = await this.bucket();
    await kv.put(BUNDLE_KEY, JSON.stringify(data));
    this.bus.publish(Subjects.caBundle, data);
  }
}
