import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';
import { caProtoRoot, CREATE_CERTIFICATE_METHOD } from '@aviary/ca-api';
import { AviaryError } from '@aviary/errors';
import { createCsr, generatePrivateKey, privateKeyToPem } from '@aviary/pki';

/** Istio's CA messages (libs/ca-api: the istio/api ca.proto, shared with citadel). */
const caProto = caProtoRoot();
const RequestType = caProto.lookupType('istio.v1.auth.IstioCertificateRequest');
const ResponseType = caProto.lookupType('istio.v1.auth.IstioCertificateResponse');

/** The workload certificate as Envoy's SDS `default` secret needs it, plus what the agent reports. */
export interface WorkloadCertificate {
  /** Leaf first, intermediates after; PEM. */
  readonly certChain: string;
  readonly privateKey: string;
  /** The CA's roots as citadel returned them with this certificate. */
  readonly caRoots: readonly string[];
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** 1 for the first certificate, +1 per renewal. */
  readonly version: number;
}

export type IdentityEvent = 'certificate_issued' | 'certificate_request_failed' | 'certificate_renewal_failed' | 'certificate_expired';

export interface IdentityOptions {
  /** citadel `host:port`. */
  readonly address: string;
  /**
   * Further citadel replicas (`host:port`), e.g. local mode's `--citadel-replicas`: after a failed
   * request the next one goes to the next address (round robin), so a replica that died costs one
   * retry. Behind a Service (Kubernetes) one address is enough.
   */
  readonly otherAddresses?: readonly string[];
  /** The bearer credential: a join token in local mode, a service-account token in Kubernetes (read at each request). */
  readonly token: () => string;
  /** The SPIFFE id asked for in the CSR (citadel decides from the token; this is informational). */
  readonly spiffeId: string;
  readonly ttlSeconds: number;
  readonly credentials?: grpc.ChannelCredentials;
  /**
   * TLS to citadel's secure port: `roots()` is the PEM of the roots that may sign citadel's
   * serving certificate (Istio's istio-ca-root-cert ConfigMap file), read at each request so a
   * rotated bundle is picked up; `serverName` is the name citadel's certificate must carry
   * (default: the host of `address`). Wins over `credentials`.
   */
  readonly tls?: { readonly roots: () => string; readonly serverName?: string };
  readonly onCertificate: (cert: WorkloadCertificate) => void;
  readonly onEvent?: (event: IdentityEvent, details: Record<string, unknown>) => void;
  /** aviary_agent_certificate_* metrics go here; none when omitted. */
  readonly registry?: Registry;
  /** Retry back-off after a failed request: first and largest delay (default 500 ms, 30 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly now?: () => number;
}

interface CaResponse {
  cert_chain?: string[];
  root_cert?: { ca_cert?: string[] };
}

/**
 * The workload identity: an ECDSA P-256 key made in this process (it never leaves it), a CSR
 * sent to citadel with the bearer token, renewal at half the certificate's lifetime (a new key
 * each time). A failed request is retried with exponential back-off for as long as the agent
 * runs, before and after expiry: every failure is counted and logged, and `valid()` turns false
 * once the certificate has expired (readiness follows it).
 */
export class IdentityManager {
  private client: grpc.Client | undefined;
  /** The roots PEM the current TLS client was made with. */
  private clientRoots: string | undefined;
  private current: WorkloadCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  private readonly addresses: readonly string[];
  /** Index in `addresses` of the citadel the client talks to. */
  private target = 0;
  private readonly now: () => number;
  private readonly failuresTotal: Counter<'phase'> | undefined;
  private readonly expiry: Gauge | undefined;

  constructor(private readonly opts: IdentityOptions) {
    this.now = opts.now ?? Date.now;
    this.addresses = [opts.address, ...(opts.otherAddresses ?? [])];
    if (opts.registry !== undefined) {
      this.failuresTotal = new Counter({ name: 'aviary_agent_certificate_request_failures_total', help: 'Failed certificate requests to citadel (phase: initial or renewal)', labelNames: ['phase'], registers: [opts.registry] });
      this.expiry = new Gauge({ name: 'aviary_agent_certificate_expiry_timestamp_seconds', help: 'notAfter of the workload certificate in use (Unix seconds)', registers: [opts.registry] });
    }
  }

  get certificate(): WorkloadCertificate | undefined {
    return this.current;
  }

  /** True while a certificate is held and has not expired. */
  valid(): boolean {
    return this.current !== undefined && this.current.notAfter.getTime() > this.now();
  }

  /** Consecutive failed requests since the last success. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Requests the first certificate in the background (retrying until it succeeds or `stop()`). */
  start(): void {
    this.attempt(0);
  }

  /** Milliseconds until renewal: half the lifetime after notBefore (never negative). */
  static renewalDelayMs(notBefore: Date, notAfter: Date, now: number): number {
    const half = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) / 2;
    return Math.max(0, half - now);
  }

  /** Back-off after `failures` consecutive failures: initial × 2^(n-1), capped. */
  static backoffMs(failures: number, initialMs: number, maxMs: number): number {
    return Math.min(maxMs, initialMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  }

  /** One request now; resolves with the new certificate or rejects (no retry scheduled). */
  async renew(): Promise<WorkloadCertificate> {
    const key = generatePrivateKey('ecdsa-p256');
    const csr = createCsr(key, { uris: [this.opts.spiffeId] });
    const res = await this.call(csr);
    const chain = res.cert_chain ?? [];
    if (chain.length === 0) throw new AviaryError('UNAVAILABLE', 'AGENT_CA_EMPTY_CHAIN', 'citadel returned an empty certificate chain');
    const caRoots = res.root_cert?.ca_cert?.length ? res.root_cert.ca_cert : [chain[chain.length - 1] as string];
    const leafChain = res.root_cert?.ca_cert?.length ? chain : chain.slice(0, Math.max(1, chain.length - 1));
    const leaf = new X509Certificate(chain[0] as string);
    const cert: WorkloadCertificate = {
      certChain: leafChain.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join(''),
      privateKey: privateKeyToPem(key),
      caRoots,
      serial: leaf.serialNumber,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      version: (this.current?.version ?? 0) + 1,
    };
    return cert;
  }

  private attempt(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.renew().then(
        (cert) => this.accept(cert),
        (err: unknown) => this.failed(err),
      );
    }, delayMs);
    this.timer.unref();
  }

  private accept(cert: WorkloadCertificate): void {
    if (this.stopped) return;
    this.failures = 0;
    this.current = cert;
    this.expiry?.set(cert.notAfter.getTime() / 1000);
    this.opts.onCertificate(cert);
    this.opts.onEvent?.('certificate_issued', { serial: cert.serial, notAfter: cert.notAfter.toISOString(), version: cert.version });
    // Half the lifetime from receipt: citadel backdates notBefore (clock skew), which would pull
    // the renewal of a short-lived certificate to now.
    const from = new Date(Math.max(cert.notBefore.getTime(), this.now()));
    this.attempt(Math.min(IdentityManager.renewalDelayMs(from, cert.notAfter, this.now()), 2 ** 31 - 1));
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => {
      if (this.current === cert && !this.stopped) this.opts.onEvent?.('certificate_expired', { serial: cert.serial, notAfter: cert.notAfter.toISOString() });
    }, Math.min(Math.max(0, cert.notAfter.getTime() - this.now()), 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    this.failures++;
    if (this.addresses.length > 1) {
      // The next attempt goes to the next replica (this one may be down or unreachable).
      this.target = (this.target + 1) % this.addresses.length;
      this.client?.close();
      this.client = undefined;
    }
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const retryInMs = IdentityManager.backoffMs(this.failures, initialMs, maxMs);
    const phase = this.current === undefined ? 'initial' : 'renewal';
    this.failuresTotal?.inc({ phase });
    const expiresInMs = this.current === undefined ? undefined : this.current.notAfter.getTime() - this.now();
    this.opts.onEvent?.(phase === 'initial' ? 'certificate_request_failed' : 'certificate_renewal_failed', {
      err: (err as Error).message,
      attempt: this.failures,
      retryInMs,
      ...(this.addresses.length > 1 && { nextAddress: this.addresses[this.target] }),
      ...(expiresInMs === undefined ? {} : { expiresInMs, expired: expiresInMs <= 0 }),
    });
    this.attempt(retryInMs);
  }

  /** The gRPC client for citadel; with `tls`, a new one whenever the roots file changed. */
  private caClient(): grpc.Client {
    const tls = this.opts.tls;
    if (tls === undefined) {
      this.client ??= new grpc.Client(this.addresses[this.target]!, this.opts.credentials ?? grpc.credentials.createInsecure());
      return this.client;
    }
    const roots = tls.roots();
    if (!roots.includes('-----BEGIN CERTIFICATE-----')) throw new AviaryError('FAILED_PRECONDITION', 'AGENT_CA_ROOTS_MISSING', 'no PEM certificate in the roots that citadel\'s TLS certificate is verified with');
    if (this.client === undefined || roots !== this.clientRoots) {
      this.client?.close();
      const options: grpc.ChannelOptions = tls.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName };
      this.client = new grpc.Client(this.addresses[this.target]!, grpc.credentials.createSsl(Buffer.from(roots)), options);
      this.clientRoots = roots;
    }
    return this.client;
  }

  private call(csr: string): Promise<CaResponse> {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.opts.token()}`);
    const client = this.caClient();
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        CREATE_CERTIFICATE_METHOD,
        (r: Record<string, unknown>) => Buffer.from(RequestType.encode(RequestType.fromObject(r)).finish()),
        (b: Buffer) => ResponseType.toObject(ResponseType.decode(b), { longs: Number, arrays: true }) as CaResponse,
        { csr, validity_duration: this.opts.ttlSeconds },
        md,
        { deadline: Date.now() + 10_000 },
        (err, res) => (err !== null || res === undefined ? reject(err ?? new Error('no response')) : resolve(res)),
      );
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.client?.close();
  }
}

/** citadel's CA port over TLS (its plaintext port 8060 is for loopback development only). */
export const CITADEL_TLS_PORT = 15013;

/**
 * Whether the CA client uses TLS: `on`/`off` as set; `auto` turns it on in Kubernetes and
 * whenever the citadel address is its TLS port. With TLS the roots file is required (a CA client
 * that trusted any certificate would hand its token to whoever answers); the name citadel's
 * certificate must carry is `subjectAltName`, else the host of the address.
 */
export function citadelTlsSetting(opts: {
  readonly citadelTls: 'auto' | 'on' | 'off';
  readonly platform: 'local' | 'kubernetes';
  readonly address: string;
  readonly caRootPath: string;
  readonly subjectAltName: string;
}): { readonly rootsPath: string; readonly serverName: string } | undefined {
  const parsed = opts.address.split(',').map((a) => {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(a.trim());
    if (m === null) throw new AviaryError('INVALID_ARGUMENT', 'AGENT_ADDRESS_INVALID', `AVIARY_CITADEL_ADDRESS: expected host:port (or a comma-separated list of them), got "${opts.address}"`, { option: 'citadelAddress' });
    return { host: (m[1] ?? m[2]) as string, tlsPort: Number(m[3]) === CITADEL_TLS_PORT };
  });
  const host = parsed[0]!.host;
  if (opts.citadelTls === 'auto' && opts.platform === 'local' && parsed.some((p) => p.tlsPort !== parsed[0]!.tlsPort)) {
    throw new AviaryError('INVALID_ARGUMENT', 'AGENT_ADDRESS_INVALID', `AVIARY_CITADEL_ADDRESS: with AVIARY_CITADEL_TLS=auto every address must be citadel's TLS port ${CITADEL_TLS_PORT} or none, got "${opts.address}" (set AVIARY_CITADEL_TLS on or off)`, { option: 'citadelAddress' });
  }
  const on = opts.citadelTls === 'on' || (opts.citadelTls === 'auto' && (opts.platform === 'kubernetes' || parsed[0]!.tlsPort));
  if (!on) return undefined;
  if (opts.caRootPath === '') {
    throw new AviaryError('INVALID_ARGUMENT', 'AGENT_CA_ROOTS_REQUIRED', `citadel over TLS (${opts.address}) needs the mesh roots to verify it: set AVIARY_CA_ROOT_PATH (in Kubernetes the istio-ca-root-cert ConfigMap file), or AVIARY_CITADEL_TLS=off for citadel's plaintext loopback port`);
  }
  return { rootsPath: opts.caRootPath, serverName: opts.subjectAltName !== '' ? opts.subjectAltName : host };
}
