import {
  experimental,
  loadPackageDefinition,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { isAviaryError } from '@aviary/errors';
import type { Logger } from '@aviary/observability';
import { CA_SERVICE, loadCaPackage, type IstioCertificateRequest, type IstioCertificateResponse } from '@aviary/ca-api';
import type { CitadelService } from './service';
import { grpcStatusByKind } from './status';

/** Largest gRPC message accepted: a CSR is a few KiB; anything bigger is refused by grpc-js. */
export const MAX_GRPC_MESSAGE_BYTES = 64 * 1024;

/**
 * Serving identity and client-CA trust for the TLS port, updatable at run time (serving cert
 * renewal, bundle rotation). One object plays both certificate-provider roles.
 */
export class TlsMaterial implements experimental.CertificateProvider {
  private ca: experimental.CaCertificateUpdate | null = null;
  private identity: experimental.IdentityCertificateUpdate | null = null;
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();

  setTrustedRoots(roots: readonly string[]): void {
    this.ca = { caCertificate: Buffer.from(roots.join('')) };
    for (const l of this.caListeners) l(this.ca);
  }

  setIdentity(certChainPem: readonly string[], privateKeyPem: string): void {
    this.identity = { certificate: Buffer.from(certChainPem.join('')), privateKey: Buffer.from(privateKeyPem) };
    for (const l of this.identityListeners) l(this.identity);
  }

  addCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    // Deliver after grpc-js has registered its watcher (it adds listeners first).
    queueMicrotask(() => this.caListeners.has(l) && this.ca !== null && l(this.ca));
  }
  removeCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(l);
    queueMicrotask(() => this.identityListeners.has(l) && this.identity !== null && l(this.identity));
  }
  removeIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(l);
  }
}

function bearer(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return m === null ? '' : m[1];
}

/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate`: plaintext on the dev port, TLS on
 * the secure port. TLS asks for (but does not require) a client certificate: a workload renews
 * with its still-valid certificate, or authenticates with `authorization: Bearer <token>`.
 */
export class CaGrpcServer {
  private readonly server: Server;

  constructor(
    private readonly service: CitadelService,
    private readonly tls: TlsMaterial,
    private readonly logger: Logger,
  ) {
    this.server = new Server({
      'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
      'grpc.max_send_message_length': 1024 * 1024,
      'grpc.max_concurrent_streams': 1000,
    });
    const pkg = loadCaPackage();
    const def = loadPackageDefinition(pkg) as unknown as { istio: { v1: { auth: { IstioCertificateService: { service: ServiceDefinition } } } } };
    this.server.addService(def.istio.v1.auth.IstioCertificateService.service, { CreateCertificate: this.createCertificate });
    logger.debug({ service: CA_SERVICE }, 'gRPC service registered');
  }

  private readonly createCertificate = (
    call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
    callback: sendUnaryData<IstioCertificateResponse>,
  ): void => {
    const peer = call.getAuthContext()?.sslPeerCertificate;
    const validity = Number(call.request.validity_duration);
    this.service
      .createCertificate('grpc', {
        csr: call.request.csr,
        validitySeconds: Number.isFinite(validity) ? validity : 0,
        credentials: { bearerToken: bearer(call.metadata), peerChain: peer?.raw === undefined ? [] : [peer.raw] },
      })
      .then(
        (r) => callback(null, { cert_chain: [...r.chain] }),
        (err: unknown) => {
          const md = new Metadata();
          if (isAviaryError(err)) {
            md.set('aviary-error-code', err.code);
            callback({ code: grpcStatusByKind[err.kind], details: `${err.code}: ${err.message}`, metadata: md });
          } else {
            callback({ code: status.INTERNAL, details: 'INTERNAL: internal error', metadata: md });
          }
        },
      );
  };

  /** Binds the plaintext and TLS ports (0 picks a free one; a port of -1 is skipped). */
  async listen(host: string, plainPort: number, tlsPort: number): Promise<{ plain?: number; tls?: number }> {
    const bind = (port: number, creds: ServerCredentials): Promise<number> =>
      new Promise((resolve, reject) => this.server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p))));
    const plain = plainPort >= 0 ? await bind(plainPort, ServerCredentials.createInsecure()) : undefined;
    // One provider for both roles (grpc-js swaps the two parameters internally).
    const tls = tlsPort >= 0 ? await bind(tlsPort, experimental.createCertificateProviderServerCredentials(this.tls, this.tls, false)) : undefined;
    this.logger.debug({ plain, tls }, 'CA gRPC listening');
    return { ...(plain === undefined ? {} : { plain }), ...(tls === undefined ? {} : { tls }) };
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => this.server.forceShutdown(), 5_000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
