import { compareStrings } from './util';

/**
 * A gateway credential as pilot read it from a Kubernetes Secret (already checked: PEM that
 * parses, a key that matches the certificate). `version` changes whenever the Secret does.
 */
export interface GatewayCredential {
  readonly certChain?: string;
  readonly privateKey?: string;
  readonly caCert?: string;
  readonly version: string;
}

/** The pseudo-kind marked changed when the credentials pilot holds change. */
export const CREDENTIALS_INPUT = 'Credentials';

/** SDS resource names of credentials (`credentialName` of Gateway servers and DestinationRules), as Istio. */
export const CREDENTIAL_PREFIX = 'kubernetes://';
const CA_SUFFIX = '-cacert';

/** What an SDS credential name resolves to for a proxy of `namespace`. */
export type CredentialLookup =
  | { readonly kind: 'certificate'; readonly certChain: string; readonly privateKey: string }
  | { readonly kind: 'ca'; readonly caCert: string }
  | { readonly kind: 'missing'; readonly reason: string };

/**
 * The credentials by `namespace/name`. A proxy only ever gets those of its own namespace (as
 * Istio's gateways): `kubernetes://<name>` is the certificate and key of Secret `<name>`;
 * `kubernetes://<name>-cacert` the CA of Secret `<name>` (its `ca.crt`), else of Secret
 * `<name>-cacert`.
 */
export class CredentialIndex {
  private readonly byKey: ReadonlyMap<string, GatewayCredential>;

  /**
   * `tracked`: whether pilot reads credentials at all (a source fed `SnapshotBuilder.setCredentials`).
   * Untracked, no reference can be checked, so none is reported missing (`certificateProblem`).
   */
  constructor(
    credentials: ReadonlyMap<string, GatewayCredential> = new Map(),
    readonly tracked = false,
  ) {
    this.byKey = credentials;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** A fingerprint of every credential's version (equal fingerprints: nothing changed). */
  fingerprint(): string {
    return JSON.stringify([this.tracked, ...[...this.byKey].map(([k, c]) => [k, c.version]).sort(([a], [b]) => compareStrings(a as string, b as string))]);
  }

  /**
   * Why Secret `namespace/name` cannot serve as a certificate and key (the Gateway API's
   * InvalidCertificateRef: absent, not a TLS credential, or broken, which pilot leaves out), or
   * undefined when it can, or when credentials are not tracked.
   */
  certificateProblem(namespace: string, name: string): string | undefined {
    if (!this.tracked) return undefined;
    const c = this.byKey.get(`${namespace}/${name}`);
    if (c === undefined) return `Secret ${namespace}/${name} does not exist or is not a usable TLS credential`;
    if (c.certChain === undefined || c.privateKey === undefined) return `Secret ${namespace}/${name} has no certificate and key (tls.crt/tls.key or cert/key)`;
    return undefined;
  }

  resolve(namespace: string, sdsName: string): CredentialLookup {
    if (!sdsName.startsWith(CREDENTIAL_PREFIX)) return { kind: 'missing', reason: `${sdsName} is not a ${CREDENTIAL_PREFIX} name` };
    const name = sdsName.slice(CREDENTIAL_PREFIX.length);
    if (name.endsWith(CA_SUFFIX)) {
      const base = name.slice(0, -CA_SUFFIX.length);
      const ca = this.byKey.get(`${namespace}/${base}`)?.caCert ?? this.byKey.get(`${namespace}/${name}`)?.caCert;
      if (ca !== undefined) return { kind: 'ca', caCert: ca };
      return { kind: 'missing', reason: `no Secret ${namespace}/${base} with ca.crt (nor ${namespace}/${name})` };
    }
    const c = this.byKey.get(`${namespace}/${name}`);
    if (c === undefined) return { kind: 'missing', reason: `no usable TLS Secret ${namespace}/${name}` };
    if (c.certChain === undefined || c.privateKey === undefined) return { kind: 'missing', reason: `Secret ${namespace}/${name} has no certificate and key (tls.crt/tls.key or cert/key)` };
    return { kind: 'certificate', certChain: c.certChain, privateKey: c.privateKey };
  }
}
