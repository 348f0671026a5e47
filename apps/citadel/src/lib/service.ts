import type { CertificateAuthority, Credentials, IssueResult } from '@aviary/ca';
import { Subjects, type Bus } from '@aviary/events';
import type { Logger } from '@aviary/observability';
import { failureReason, type Api, type CaMetrics } from './metrics';

/**
 * What every edge (gRPC, REST, NATS) calls: the CA plus metrics and the audit event. Edges only
 * translate their wire format and map error kinds to their status codes.
 */
export class CitadelService {
  constructor(
    readonly ca: CertificateAuthority,
    private readonly bus: Bus,
    private readonly metrics: CaMetrics,
    private readonly logger: Logger,
  ) {}

  async createCertificate(api: Api, req: { csr: string; validitySeconds?: number; credentials: Credentials }): Promise<IssueResult> {
    this.metrics.csrReceived.inc({ api });
    const end = this.metrics.signDuration.startTimer({ kind: 'workload' });
    try {
      const result = await this.ca.issue(req);
      end();
      this.issued(result);
      return result;
    } catch (err) {
      this.failed(err, api);
      throw err;
    }
  }

  async signServing(api: Api, csr: string, dnsNames: readonly string[], ttlSeconds: number): Promise<IssueResult> {
    this.metrics.csrReceived.inc({ api });
    const end = this.metrics.signDuration.startTimer({ kind: 'serving' });
    try {
      const result = await this.ca.signServing(csr, dnsNames, ttlSeconds);
      end();
      this.issued(result);
      return result;
    } catch (err) {
      this.failed(err, api);
      throw err;
    }
  }

  private issued(r: IssueResult): void {
    this.metrics.issued.inc({ kind: r.kind });
    this.logger.info({ serial: r.serialHex, identity: r.identity, notAfter: r.notAfter.toISOString(), clamped: r.clamped }, 'certificate issued');
    // The audit record goes to JetStream; the caller does not wait for the store's ack.
    this.bus
      .publishDurable(
        Subjects.caIssued,
        { serial: r.serialHex, identity: r.identity, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString(), clamped: r.clamped, kind: r.kind },
        `ca-issued-${r.serialHex}`,
      )
      .catch((err: unknown) => {
        this.metrics.auditPublishFailures.inc();
        this.logger.warn({ err, serial: r.serialHex }, 'could not publish aviary.ca.v1.issued');
      });
  }

  private failed(err: unknown, api: Api): void {
    const reason = failureReason(err);
    this.metrics.failures.inc({ reason });
    if (reason === 'internal') this.logger.error({ err, api }, 'certificate request failed');
    else this.logger.debug({ code: (err as { code?: string }).code, api }, 'certificate request refused');
  }
}
