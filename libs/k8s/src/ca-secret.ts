import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { CaState, CaStateStore } from '@aviary/ca';
import { AviaryError } from '@aviary/errors';
import { messageOf, statusOf } from './kube-config';

/** Istio's name for the self-signed CA's Secret. */
export const CA_SECRET_NAME = 'istio-ca-secret';
const STATE_KEY = 'ca-state.json';

/**
 * Citadel's CA state (roots with their keys, the join-token key) in a Secret instead of the data
 * dir, so a rescheduled citadel keeps its root. The whole state is one JSON value (key
 * `ca-state.json`); the active root is also written as `ca-cert.pem`/`ca-key.pem` (Istio's keys)
 * for tools that read them. Saves are compare-and-set on the Secret's resourceVersion.
 */
export class SecretCaStateStore implements CaStateStore {
  private readonly api: CoreV1Api;
  private resourceVersion: string | undefined;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly name: string = CA_SECRET_NAME,
  ) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async load(): Promise<CaState | undefined> {
    let data: Record<string, string> | undefined;
    try {
      const secret = await this.api.readNamespacedSecret({ name: this.name, namespace: this.namespace });
      this.resourceVersion = secret.metadata?.resourceVersion;
      data = secret.data;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new AviaryError('UNAVAILABLE', 'CA_STATE_UNREADABLE', `cannot read Secret ${this.namespace}/${this.name}: ${messageOf(err)}`);
    }
    const raw = data?.[STATE_KEY];
    if (raw === undefined) return undefined;
    try {
      const state = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as CaState;
      if (state.version !== 1 || !Array.isArray(state.roots) || typeof state.tokenKeyPem !== 'string') throw new Error('unexpected shape');
      return state;
    } catch {
      // Never echo the Secret: it holds private keys.
      throw new AviaryError('FAILED_PRECONDITION', 'CA_STATE_UNREADABLE', `Secret ${this.namespace}/${this.name} holds no valid ${STATE_KEY}`);
    }
  }

  async save(state: CaState): Promise<void> {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const active = state.active >= 0 ? state.roots[state.active] : undefined;
    const data: Record<string, string> = {
      [STATE_KEY]: b64(JSON.stringify(state)),
      ...(active === undefined ? {} : { 'ca-cert.pem': b64(active.certPem), 'ca-key.pem': b64(active.keyPem) }),
    };
    const metadata = { name: this.name, namespace: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'aviary-citadel' } };
    try {
      const written =
        this.resourceVersion === undefined
          ? await this.api.createNamespacedSecret({ namespace: this.namespace, body: { metadata, type: 'Opaque', data } })
          : await this.api.replaceNamespacedSecret({ name: this.name, namespace: this.namespace, body: { metadata: { ...metadata, resourceVersion: this.resourceVersion }, type: 'Opaque', data } });
      this.resourceVersion = written.metadata?.resourceVersion;
    } catch (err) {
      const status = statusOf(err);
      const kind = status === 409 ? 'CONFLICT' : 'UNAVAILABLE';
      throw new AviaryError(kind, 'CA_STATE_WRITE_FAILED', `cannot write Secret ${this.namespace}/${this.name} (another citadel may own it): ${messageOf(err)}`);
    }
  }
}
