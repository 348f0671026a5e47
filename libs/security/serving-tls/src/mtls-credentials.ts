import * as grpc from '@grpc/grpc-js';
import type { ServingCertificate } from './certificate-source';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * A gRPC certificate provider fed from outside: the serving certificate (e.g. a
 * `CertificateSource`) and the trust roots (e.g. `followTrustBundle`). Each `set*` reaches every
 * server built on it, which swaps its TLS context for new handshakes; open connections and their
 * streams are left alone.
 */
export class ReloadableTlsProvider implements grpc.experimental.CertificateProvider {
  private identity: grpc.experimental.IdentityCertificateUpdate | null = null;
  private ca: grpc.experimental.CaCertificateUpdate | null = null;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  get hasIdentity(): boolean {
    return this.identity !== null;
  }

  get hasRoots(): boolean {
    return this.ca !== null;
  }

  setIdentity(cert: ServingCertificate): void {
    this.identity = { certificate: Buffer.from(cert.certPem), privateKey: Buffer.from(cert.keyPem) };
    for (const l of [...this.identityListeners]) l(this.identity);
  }

  /** Every root a peer certificate may chain to (during a rotation, old and new). */
  setRoots(roots: readonly string[]): void {
    if (roots.length === 0) return;
    this.ca = { caCertificate: Buffer.from(roots.map((r) => r.trim()).join('\n') + '\n') };
    for (const l of [...this.caListeners]) l(this.ca);
  }

  // grpc-js registers its listener before its own watcher: the current value must come after
  // that (a microtask later), or the server never sees it.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => {
      if (this.caListeners.has(listener) && this.ca !== null) listener(this.ca);
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identityListeners.has(listener) && this.identity !== null) listener(this.identity);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/**
 * gRPC server credentials for mutual TLS: the provider's certificate, and a client certificate
 * chained to its roots required in the handshake (grpc-js `checkClientCertificate`: Node's
 * `requestCert` + `rejectUnauthorized`). No certificate, or one from another CA, never gets a
 * connection. TLS 1.2 is the minimum (Node's default), 1.3 preferred. Until the provider has
 * both a certificate and roots, connections are dropped.
 */
export function mtlsServerCredentials(provider: ReloadableTlsProvider): grpc.ServerCredentials {
  // grpc-js 1.14 hands its first argument to the identity slot and the second to the CA slot
  // (the declared parameter names are the other way round); one provider fills both.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true);
}
