import { createPrivateKey, X509Certificate } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { GatewayCredential } from '@aviary/mesh-model';
import type { Logger } from '@aviary/observability';
import { InformedMap } from './informed-map';
import { ResilientInformer } from './informer';

/** Largest PEM field of a credential Secret pilot accepts (a chain of a few certificates fits easily). */
export const MAX_CREDENTIAL_FIELD_BYTES = 64 * 1024;

/** The data keys of a credential Secret, as Istio reads them: `kubernetes.io/tls` keys, else Istio's generic ones. */
const KEY_SETS = [
  { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' },
  { cert: 'cert', key: 'key', ca: 'cacert' },
] as const;

export type CredentialParse = { readonly credential: GatewayCredential } | { readonly error: string } | undefined;

function field(secret: V1Secret, key: string): string | undefined {
  const b64 = secret.data?.[key];
  if (b64 === undefined) return undefined;
  // base64 of at most MAX bytes is at most 4/3 as long: refuse before decoding.
  if (b64.length > Math.ceil(MAX_CREDENTIAL_FIELD_BYTES / 3) * 4) throw new Error(`${key} is larger than ${MAX_CREDENTIAL_FIELD_BYTES} bytes`);
  return Buffer.from(b64, 'base64').toString('utf8');
}

function certificate(pem: string, key: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${key} is not a PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new Error(`${key} does not parse as an X.509 certificate: ${(err as Error).message}`);
  }
}

/**
 * A Secret's credential: undefined when it is no credential at all (no certificate, key or CA
 * under either set of keys), an error naming what is wrong when it is a broken one (a
 * certificate without its key, PEM that does not parse, a key that does not match), so a bad
 * Secret is reported, never served.
 */
export function credentialFromSecret(secret: V1Secret): CredentialParse {
  // A service-account token Secret carries the cluster's ca.crt: not a credential anyone named.
  // (The CA's own Secret holds ca-cert.pem/ca-key.pem: no credential key set matches it.)
  if (secret.type === 'kubernetes.io/service-account-token') return undefined;
  const keys = KEY_SETS.find((k) => secret.data?.[k.cert] !== undefined || secret.data?.[k.key] !== undefined || secret.data?.[k.ca] !== undefined);
  if (keys === undefined) return undefined;
  try {
    const certChain = field(secret, keys.cert);
    const privateKey = field(secret, keys.key);
    const caCert = field(secret, keys.ca);
    if ((certChain === undefined) !== (privateKey === undefined)) return { error: `has ${certChain === undefined ? keys.key : keys.cert} without ${certChain === undefined ? keys.cert : keys.key}` };
    if (certChain !== undefined && privateKey !== undefined) {
      const leaf = certificate(certChain, keys.cert);
      let key;
      try {
        key = createPrivateKey(privateKey);
      } catch (err) {
        return { error: `${keys.key} does not parse as a private key: ${(err as Error).message}` };
      }
      if (!leaf.checkPrivateKey(key)) return { error: `${keys.key} is not the key of the certificate in ${keys.cert}` };
    }
    if (caCert !== undefined) certificate(caCert, keys.ca);
    return {
      credential: {
        version: secret.metadata?.resourceVersion ?? '',
        ...(certChain !== undefined && { certChain }),
        ...(privateKey !== undefined && { privateKey }),
        ...(caCert !== undefined && { caCert }),
      },
    };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export interface KubernetesCredentialsOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly resyncMs?: number;
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
}

/**
 * Gateway credentials from Kubernetes Secrets (every namespace, as istiod): parsed and checked
 * on every change, kept only in memory (never written to the config store or NATS), and handed
 * to `onChange` as `namespace/name → credential`. A broken Secret is logged (once per version)
 * and left out, so what references it waits instead of serving something wrong.
 */
export class KubernetesCredentials extends InformedMap<V1Secret, GatewayCredential> {
  protected readonly informer: ResilientInformer<V1Secret>;
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly opts: KubernetesCredentialsOptions,
    onChange: (credentials: ReadonlyMap<string, GatewayCredential>) => void,
  ) {
    super(onChange);
    const core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.informer = new ResilientInformer<V1Secret>(
      opts.kubeConfig,
      {
        name: 'secrets',
        path: '/api/v1/secrets',
        list: () => core.listSecretForAllNamespaces(),
        resyncMs: opts.resyncMs ?? 300_000,
        logger: opts.logger,
        ...(opts.backoff !== undefined && { backoff: opts.backoff }),
      },
      (e) => {
        const key = `${e.object.metadata?.namespace ?? ''}/${e.object.metadata?.name ?? ''}`;
        const parsed = e.type === 'deleted' ? undefined : credentialFromSecret(e.object);
        const before = this.entries.get(key);
        if (parsed !== undefined && 'credential' in parsed) this.entries.set(key, parsed.credential);
        else this.entries.delete(key);
        if (parsed !== undefined && 'error' in parsed) {
          const version = e.object.metadata?.resourceVersion ?? '';
          if (this.reported.get(key) !== version) opts.logger.warn({ secret: key, error: parsed.error }, `Secret ${key} is not a usable TLS credential: ${parsed.error}; gateways and DestinationRules naming it are not served one (without an earlier certificate, their TLS handshakes fail)`);
          this.reported.set(key, version);
        } else this.reported.delete(key);
        if (before !== this.entries.get(key)) this.changed();
      },
    );
  }
}
