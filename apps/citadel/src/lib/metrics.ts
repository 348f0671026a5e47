import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isAviaryError } from '@aviary/errors';

/** Closed set of failure reasons (a metric label): never a raw error message or code from input. */
export const failureReasons = [
  'csr_malformed',
  'csr_signature_invalid',
  'key_unsupported',
  'unauthenticated',
  'permission_denied',
  'invalid_argument',
  'payload_too_large',
  'unavailable',
  'internal',
] as const;
export type FailureReason = (typeof failureReasons)[number];

export type Api = 'grpc' | 'rest' | 'nats' | 'internal';

export function failureReason(err: unknown): FailureReason {
  if (!isAviaryError(err)) return 'internal';
  switch (err.code) {
    case 'CSR_MALFORMED':
      return 'csr_malformed';
    case 'CSR_SIGNATURE_INVALID':
      return 'csr_signature_invalid';
    case 'KEY_TYPE_UNSUPPORTED':
    case 'KEY_SIZE_UNSUPPORTED':
    case 'CSR_SIGNATURE_ALGORITHM_UNSUPPORTED':
      return 'key_unsupported';
    default:
      break;
  }
  switch (err.kind) {
    case 'UNAUTHENTICATED':
      return 'unauthenticated';
    case 'PERMISSION_DENIED':
      return 'permission_denied';
    case 'INVALID_ARGUMENT':
      return 'invalid_argument';
    case 'PAYLOAD_TOO_LARGE':
    case 'RESOURCE_EXHAUSTED':
      return 'payload_too_large';
    case 'UNAVAILABLE':
    case 'FAILED_PRECONDITION':
      return 'unavailable';
    default:
      return 'internal';
  }
}

export interface CaMetrics {
  readonly csrReceived: Counter<'api'>;
  readonly issued: Counter<'kind'>;
  readonly failures: Counter<'reason'>;
  readonly signDuration: Histogram<'kind'>;
  readonly auditPublishFailures: Counter;
}

export function createCaMetrics(registry: Registry, rootNotAfter: () => Date): CaMetrics {
  new Gauge({
    name: 'aviary_ca_root_expiry_seconds',
    help: 'Seconds until the signing CA root certificate expires',
    registers: [registry],
    collect() {
      this.set(Math.round((rootNotAfter().getTime() - Date.now()) / 1000));
    },
  });
  const failures = new Counter({ name: 'aviary_ca_failures_total', help: 'Certificate requests refused or failed, by reason', labelNames: ['reason'] as const, registers: [registry] });
  for (const reason of failureReasons) failures.inc({ reason }, 0);
  return {
    csrReceived: new Counter({ name: 'aviary_ca_csr_received_total', help: 'Certificate signing requests received, by API (grpc, rest, nats, internal)', labelNames: ['api'] as const, registers: [registry] }),
    issued: new Counter({ name: 'aviary_ca_certificates_issued_total', help: 'Certificates issued, by kind (workload, serving)', labelNames: ['kind'] as const, registers: [registry] }),
    failures,
    signDuration: new Histogram({
      name: 'aviary_ca_sign_duration_seconds',
      help: 'Time to authenticate, verify the CSR and sign, by kind',
      labelNames: ['kind'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    auditPublishFailures: new Counter({ name: 'aviary_ca_audit_publish_failures_total', help: 'aviary.ca.v1.issued events that could not be stored', registers: [registry] }),
  };
}
