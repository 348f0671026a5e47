import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { caProtoRoot, CREATE_CERTIFICATE_METHOD } from '@aviary/ca-api';
import { createCsr, generatePrivateKey, privateKeyToPem } from '@aviary/pki';
import type { WorkloadIdentity } from './tls-material';

/** Istio's CA messages (libs/ca-api: the istio/api ca.proto, shared with citadel). */
const caProto = caProtoRoot();
const RequestType = caProto.lookupType('istio.v1.auth.IstioCertificateRequest');
const ResponseType = caProto.lookupType('istio.v1.auth.IstioCertificateResponse');

export interface IdentityOptions {
  /** citadel `host:port`. */
  readonly address: string;
  /** The bearer credential: a join token in local mode, a service-account token in Kubernetes. */
  readonly token: () => string;
  /** The SPIFFE id asked for in the CSR (citadel decides from the token; this is informational). */
  readonly spiffeId: string;
  readonly ttlSeconds: number;
  readonly credentials?: grpc.ChannelCredentials;
  readonly onIdentity: (identity: WorkloadIdentity) => void;
  readonly onEvent?: (event: string, details: Record<string, unknown>) => void;
}

interface CaResponse {
  cert_chain?: string[];
  root_cert?: { ca_cert?: string[] };
}

/**
 * The workload identity: an ECDSA P-256 key made in this process (it never leaves it), a CSR
 * sent to citadel with the bearer token, renewal at half the certificate's lifetime (a new key
 * each time), and the trust bundle replaced whenever citadel publishes a new one.
 */
export class IdentityManager {
  private readonly client: grpc.Client;
  private current: WorkloadIdentity | undefined;
  private roots: string | undefined;
  private version = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  notAfter: Date | undefined;

  constructor(private readonly opts: IdentityOptions) {
    this.client = new grpc.Client(opts.address, opts.credentials ?? grpc.credentials.createInsecure());
  }

  get identity(): WorkloadIdentity | undefined {
    return this.current;
  }

  /** Fetches the first certificate, retrying with back-off until citadel answers. */
  async start(): Promise<WorkloadIdentity> {
    let delay = 250;
    for (;;) {
      try {
        return await this.renew();
      } catch (err) {
        if (this.stopped) throw err;
        this.opts.onEvent?.('certificate_request_failed', { err: (err as Error).message, retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  /** Requests a new certificate now and schedules the next renewal at half its lifetime. */
  async renew(): Promise<WorkloadIdentity> {
    const key = generatePrivateKey('ecdsa-p256');
    const csr = createCsr(key, { uris: [this.opts.spiffeId] });
    const res = await this.call(csr);
    const chain = res.cert_chain ?? [];
    if (chain.length === 0) throw new Error('citadel returned an empty certificate chain');
    const roots = res.root_cert?.ca_cert?.length ? res.root_cert.ca_cert.join('\n') : (chain[chain.length - 1] as string);
    const leafChain = res.root_cert?.ca_cert?.length ? chain : chain.slice(0, Math.max(1, chain.length - 1));
    const leaf = new X509Certificate(chain[0] as string);
    this.roots ??= roots;
    this.version++;
    this.current = { certChain: leafChain.join('\n'), privateKey: privateKeyToPem(key), roots: this.roots, version: this.version };
    this.notAfter = new Date(leaf.validTo);
    this.opts.onIdentity(this.current);
    this.opts.onEvent?.('certificate_issued', { serial: leaf.serialNumber, notAfter: leaf.validTo, version: this.version });
    // Half the lifetime from receipt: citadel backdates notBefore (clock skew), which would pull
    // the renewal of a short-lived certificate to now.
    this.schedule(new Date(Math.max(new Date(leaf.validFrom).getTime(), Date.now())), this.notAfter);
    return this.current;
  }

  /** Milliseconds until renewal: half the lifetime after notBefore (never negative). */
  static renewalDelayMs(notBefore: Date, notAfter: Date, now: number): number {
    const half = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) / 2;
    return Math.max(0, half - now);
  }

  private schedule(notBefore: Date, notAfter: Date): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.stopped) return;
    const delay = Math.min(IdentityManager.renewalDelayMs(notBefore, notAfter, Date.now()), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        this.opts.onEvent?.('certificate_renewal_failed', { err: (err as Error).message });
        // Retry sooner; the current certificate stays in use until it expires.
        this.timer = setTimeout(() => void this.renew().catch(() => undefined), 5_000);
      });
    }, delay);
    this.timer.unref();
  }

  /** A new trust bundle (all roots still trusted): new handshakes verify against it. */
  setRoots(roots: readonly string[]): void {
    const joined = roots.join('\n');
    if (joined === this.roots) return;
    this.roots = joined;
    if (this.current === undefined) return;
    this.version++;
    this.current = { ...this.current, roots: joined, version: this.version };
    this.opts.onIdentity(this.current);
    this.opts.onEvent?.('trust_bundle_updated', { roots: roots.length, version: this.version });
  }

  private call(csr: string): Promise<CaResponse> {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.opts.token()}`);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
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
    this.client.close();
  }
}
