import type * as grpc from '@grpc/grpc-js';
import { AviaryError } from '@aviary/errors';
import type { Bus, Stoppable } from '@aviary/events';
import type { Logger } from '@aviary/observability';
import { CertificateSource, followTrustBundle, mtlsServerCredentials, ReloadableTlsProvider, type SignRequest } from '@aviary/serving-tls';

export interface XdsTlsOptions {
  readonly bus: Bus;
  readonly logger: Logger;
  readonly trustDomain: string;
  readonly dnsNames: readonly string[];
  readonly ttlSeconds: number;
  readonly signTimeoutMs: number;
  /** Overrides signing over `aviary.ca.v1.sign` (tests). */
  readonly sign?: SignRequest;
}

/**
 * The mTLS xDS port's key material: a serving certificate signed by citadel over
 * `aviary.ca.v1.sign` (renewed at 2/3 of its life; nothing is served until citadel has signed,
 * since no proxy would trust a self-signed one) and the mesh trust bundle as the roots client
 * certificates must chain to (following `aviary.ca.v1.bundle` through rotations). Both swap into
 * the listening server without dropping open streams.
 */
export class XdsTlsMaterial {
  readonly provider = new ReloadableTlsProvider();
  readonly credentials: grpc.ServerCredentials;
  private readonly certificates: CertificateSource;
  private bundle: Stoppable | undefined;

  constructor(private readonly opts: XdsTlsOptions) {
    this.credentials = mtlsServerCredentials(this.provider);
    const logger = opts.logger.child({ component: 'xds-tls' });
    this.certificates = new CertificateSource(
      {
        certFile: '',
        keyFile: '',
        dnsNames: opts.dnsNames,
        ttlSeconds: opts.ttlSeconds,
        reloadIntervalMs: 60_000,
        signTimeoutMs: opts.signTimeoutMs,
        trustDomain: opts.trustDomain,
        sign: opts.sign ?? ((data, timeoutMs) => opts.bus.request('aviary.ca.v1.sign', data, timeoutMs)),
        logger,
        whenUnsigned: 'nothing',
      },
      (cert) => this.install(cert),
    );
  }

  /** Ready when the port can complete a handshake: a certificate and the roots are loaded. */
  get ready(): boolean {
    return this.provider.hasIdentity && this.provider.hasRoots;
  }

  async start(): Promise<void> {
    const log = this.opts.logger.child({ component: 'xds-tls' });
    this.bundle = await followTrustBundle(
      this.opts.bus,
      (roots, version) => {
        this.provider.setRoots(roots);
        log.info({ version, roots: roots.length }, 'xDS client trust bundle loaded');
      },
      (err) => log.warn({ err }, 'could not read the stored trust bundle; waiting for aviary.ca.v1.bundle'),
    );
    const first = await this.certificates.start();
    if (first !== undefined) this.install(first);
  }

  private install(cert: { certPem: string; keyPem: string; caPem?: string }): void {
    this.provider.setIdentity(cert);
    // The signing reply ends with citadel's current root, which the bundle also holds: a
    // starting point while no bundle has been read.
    if (!this.provider.hasRoots && cert.caPem !== undefined) this.provider.setRoots([cert.caPem]);
  }

  async stop(): Promise<void> {
    this.certificates.stop();
    await this.bundle?.stop();
  }
}

/**
 * Boot check of the xDS listeners: at least one, and the plaintext one (which authenticates
 * nobody) bound to loopback only.
 */
export function assertXdsListeners(cfg: { readonly xdsPlaintext: boolean; readonly xdsTls: boolean; readonly xdsHost: string }): void {
  if (!cfg.xdsPlaintext && !cfg.xdsTls) throw new AviaryError('INVALID_ARGUMENT', 'CONFIG_INVALID', 'xdsPlaintext and xdsTls are both false: pilot would serve no proxy');
  if (cfg.xdsPlaintext) assertLoopbackHost(cfg.xdsHost, 'xdsHost');
}

function assertLoopbackHost(host: string, option: string): void {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  const loopback = h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
  if (!loopback) {
    throw new AviaryError('INVALID_ARGUMENT', 'CONFIG_INVALID', `${option}: the plaintext xDS port is for loopback development only; bind it to 127.0.0.1 (got ${JSON.stringify(host)}) or turn it off with xdsPlaintext=false and use the mTLS port`);
  }
}
