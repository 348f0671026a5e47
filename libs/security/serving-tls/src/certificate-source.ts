import { createHash, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AviaryError, isAviaryError } from '@aviary/errors';
import type { EventData, ReplyData } from '@aviary/events';
import type { Logger } from '@aviary/observability';
import { createCsr, generatePrivateKey, Issuer, parseCertificate, privateKeyToPem } from '@aviary/pki';

/** A PEM certificate chain (leaf first) and its private key. */
export interface ServingCertificate {
  readonly keyPem: string;
  readonly certPem: string;
}

export type CertificateOrigin = 'files' | 'citadel' | 'self-signed';

export interface ActiveCertificate extends ServingCertificate {
  readonly origin: CertificateOrigin;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /**
   * The CA that clients must trust (what goes into a webhook's caBundle): the throwaway CA of a
   * self-signed certificate, or citadel's root. Unset for certificates from files.
   */
  readonly caPem?: string;
}

/** `bus.request('aviary.ca.v1.sign', …)`, as a function so the source stays testable without NATS. */
export type SignRequest = (data: EventData<'aviary.ca.v1.sign'>, timeoutMs: number) => Promise<ReplyData<'aviary.ca.v1.sign'>>;

export interface CertificateSourceOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly dnsNames: readonly string[];
  readonly ttlSeconds: number;
  readonly reloadIntervalMs: number;
  readonly signTimeoutMs: number;
  readonly trustDomain: string;
  readonly sign: SignRequest;
  readonly logger: Logger;
  /**
   * What to serve while citadel has not signed: `self-signed` (a throwaway CA, e.g. for a webhook
   * whose caBundle follows the served CA) or `nothing` (e.g. an mTLS port whose clients trust only
   * the mesh roots: a self-signed certificate could never pass their check). Default `self-signed`.
   */
  readonly whenUnsigned?: 'self-signed' | 'nothing';
}

/** Renew when this fraction of the lifetime has passed (Istio's rotation default). */
const RENEW_AT = 2 / 3;
const RETRY_MIN_MS = 5_000;
const RETRY_MAX_MS = 300_000;

/**
 * A control-plane serving certificate and its renewal. From files (tlsCertFile/tlsKeyFile,
 * re-read every reloadIntervalMs, e.g. a cert-manager Secret), or else signed by citadel over
 * `aviary.ca.v1.sign` with a key made here (it never leaves the process) and renewed at 2/3 of
 * its lifetime. When citadel does not answer, a self-signed certificate keeps the server
 * serving (logged loudly) while signing is retried, unless `whenUnsigned` is `nothing`. Every
 * certificate installed after `start()` returned goes to `onChange`, which swaps the TLS
 * context without a restart.
 */
export class CertificateSource {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private retryMs = RETRY_MIN_MS;
  private fileDigest = '';
  private cert: ActiveCertificate | undefined;
  private started = false;

  constructor(
    private readonly opts: CertificateSourceOptions,
    private readonly onChange: (cert: ActiveCertificate) => void = () => undefined,
  ) {
    if ((opts.certFile === '') !== (opts.keyFile === '')) {
      throw new AviaryError('INVALID_ARGUMENT', 'CONFIG_INVALID', 'tlsCertFile and tlsKeyFile must be set together');
    }
  }

  get current(): ActiveCertificate {
    if (this.cert === undefined) throw new AviaryError('FAILED_PRECONDITION', 'TLS_NOT_STARTED', 'no serving certificate yet');
    return this.cert;
  }

  get fromFiles(): boolean {
    return this.opts.certFile !== '';
  }

  /** The certificate being served, if any yet (with `whenUnsigned: 'nothing'`, none until citadel signs). */
  get installed(): ActiveCertificate | undefined {
    return this.cert;
  }

  /**
   * Obtains the first certificate and schedules renewal. Never fails over citadel: it falls back
   * to self-signed, or with `whenUnsigned: 'nothing'` resolves to undefined and keeps retrying
   * (the certificate then arrives through `onChange`).
   */
  async start(): Promise<ActiveCertificate | undefined> {
    try {
      await this.refresh();
      return this.cert;
    } finally {
      this.started = true;
    }
  }

  /** One renewal step: re-read the files, or ask citadel again. Schedules the next one. */
  async refresh(): Promise<void> {
    if (this.fromFiles) await this.refreshFromFiles();
    else await this.refreshFromCitadel();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private async refreshFromFiles(): Promise<void> {
    try {
      const [certPem, keyPem] = await Promise.all([readFile(this.opts.certFile, 'utf8'), readFile(this.opts.keyFile, 'utf8')]);
      const digest = createHash('sha256').update(certPem).update('\0').update(keyPem).digest('hex');
      if (digest !== this.fileDigest) {
        const info = parseCertificate(certPem);
        if (!info.x509.checkPrivateKey(createPrivateKey(keyPem))) {
          throw new AviaryError('INVALID_ARGUMENT', 'TLS_KEY_MISMATCH', `${this.opts.keyFile} is not the key of ${this.opts.certFile}`);
        }
        this.fileDigest = digest;
        this.install({ certPem, keyPem, origin: 'files', notBefore: info.notBefore, notAfter: info.notAfter });
      }
    } catch (err) {
      // At start a bad file is fatal; later the last good certificate keeps serving.
      if (this.cert === undefined) throw asTlsError(err, `cannot load ${this.opts.certFile} / ${this.opts.keyFile}`);
      this.opts.logger.warn({ err: describe(err), certFile: this.opts.certFile }, 'serving certificate files unreadable or invalid; keeping the current certificate');
    }
    this.schedule(this.opts.reloadIntervalMs);
  }

  private async refreshFromCitadel(): Promise<void> {
    const key = generatePrivateKey('ecdsa-p256');
    const csr = createCsr(key, { commonName: this.opts.dnsNames[0], dnsNames: this.opts.dnsNames });
    try {
      const reply = await this.opts.sign({ csr, dnsNames: [...this.opts.dnsNames], ttlSeconds: this.opts.ttlSeconds }, this.opts.signTimeoutMs);
      if (!reply.ok) throw new AviaryError('UNAVAILABLE', reply.code, `citadel refused to sign: ${reply.message}`);
      const leaf = parseCertificate(reply.certChain[0]!);
      if (!leaf.x509.checkPrivateKey(key)) throw new AviaryError('INTERNAL', 'TLS_KEY_MISMATCH', 'citadel returned a certificate for another key');
      // Serve the leaf and intermediates; the root is the trust anchor in caBundle.
      const chain = reply.certChain.length > 1 ? reply.certChain.slice(0, -1) : reply.certChain;
      const caPem = reply.certChain.length > 1 ? reply.certChain.at(-1) : undefined;
      this.install({ certPem: chain.join('\n'), keyPem: privateKeyToPem(key), origin: 'citadel', notBefore: leaf.notBefore, notAfter: leaf.notAfter, ...(caPem === undefined ? {} : { caPem }) });
      this.retryMs = RETRY_MIN_MS;
      this.schedule(renewDelay(leaf.notBefore, leaf.notAfter));
    } catch (err) {
      const needsFallback = this.cert === undefined || Date.now() >= renewTime(this.cert.notBefore, this.cert.notAfter);
      if (needsFallback && this.opts.whenUnsigned === 'nothing') {
        this.opts.logger.warn(
          { err: describe(err), retryInMs: this.retryMs, notAfter: this.cert?.notAfter },
          this.cert === undefined ? 'citadel did not sign the serving certificate; not serving TLS until it does' : 'renewing the serving certificate failed; will retry',
        );
      } else if (needsFallback) {
        this.installSelfSigned(key, csr);
        this.opts.logger.warn(
          { err: describe(err), retryInMs: this.retryMs },
          'citadel did not sign the serving certificate; serving with a SELF-SIGNED certificate (clients will not trust it) until citadel answers',
        );
      } else {
        this.opts.logger.warn({ err: describe(err), retryInMs: this.retryMs, notAfter: this.cert?.notAfter }, 'renewing the serving certificate failed; will retry');
      }
      this.schedule(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    }
  }

  private installSelfSigned(key: ReturnType<typeof generatePrivateKey>, csr: string): void {
    const ca = Issuer.createRoot({ trustDomain: this.opts.trustDomain, validitySeconds: this.opts.ttlSeconds + 3600 });
    const issued = ca.signServing(csr, this.opts.dnsNames, this.opts.ttlSeconds);
    this.install({ certPem: issued.certPem, keyPem: privateKeyToPem(key), origin: 'self-signed', notBefore: issued.notBefore, notAfter: issued.notAfter, caPem: ca.rootPem });
  }

  private install(cert: ActiveCertificate): void {
    const first = this.cert === undefined;
    this.cert = cert;
    this.opts.logger.info({ origin: cert.origin, notAfter: cert.notAfter.toISOString() }, first ? 'serving certificate loaded' : 'serving certificate renewed');
    if (this.started) this.onChange(cert);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.refresh().catch((err: unknown) => this.opts.logger.error({ err }, 'serving certificate refresh failed'));
    }, ms);
    this.timer.unref();
  }
}

function renewTime(notBefore: Date, notAfter: Date): number {
  return notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AT;
}

function renewDelay(notBefore: Date, notAfter: Date): number {
  return Math.max(RETRY_MIN_MS, Math.min(renewTime(notBefore, notAfter) - Date.now(), 2_147_000_000));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function asTlsError(err: unknown, context: string): AviaryError {
  if (isAviaryError(err)) return new AviaryError(err.kind, err.code, `${context}: ${err.message}`);
  return new AviaryError('INVALID_ARGUMENT', 'TLS_LOAD_FAILED', `${context}: ${describe(err)}`);
}
