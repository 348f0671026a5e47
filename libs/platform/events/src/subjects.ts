import Type, { type Static, type TSchema } from 'typebox';

/** Every NATS subject Aviary uses (ARCHITECTURE.md). The version is part of the name. */
export const Subjects = {
  configChanged: 'aviary.config.v1.changed',
  registryEndpoints: 'aviary.registry.v1.endpoints',
  xdsStatus: 'aviary.xds.v1.status',
  caBundle: 'aviary.ca.v1.bundle',
  caIssued: 'aviary.ca.v1.issued',
  caSign: 'aviary.ca.v1.sign',
  telemetryRequests: 'aviary.telemetry.v1.requests',
  telemetrySummary: 'aviary.telemetry.v1.summary',
  canaryEvent: 'aviary.canary.v1.event',
} as const;

export type Subject = (typeof Subjects)[keyof typeof Subjects];

const Name = Type.String({ minLength: 1, maxLength: 253 });
const Pem = Type.String({ minLength: 1, maxLength: 65_536 });

export const ConfigChanged = Type.Object({
  op: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('deleted')]),
  kind: Name,
  namespace: Type.String({ maxLength: 253 }),
  name: Name,
  revision: Type.Integer({ minimum: 0 }),
});

export const RegistryEndpoints = Type.Object({
  service: Name,
  namespace: Type.String({ maxLength: 253 }),
  endpoints: Type.Integer({ minimum: 0 }),
  revision: Type.Integer({ minimum: 0 }),
});

export const XdsStatus = Type.Object({
  proxyId: Type.String({ minLength: 1, maxLength: 1024 }),
  event: Type.Union([Type.Literal('connected'), Type.Literal('ack'), Type.Literal('nack'), Type.Literal('disconnected')]),
  typeUrl: Type.Optional(Type.String({ maxLength: 256 })),
  version: Type.Optional(Type.String({ maxLength: 256 })),
  error: Type.Optional(Type.String({ maxLength: 16_384 })),
});

/** The trust bundle: every root a peer must trust now (during a rotation, old and new). */
export const CaBundle = Type.Object({
  /** Bumped whenever the set of roots changes. */
  version: Type.Integer({ minimum: 0 }),
  roots: Type.Array(Pem, { minItems: 1, maxItems: 16 }),
});

/** Audit record of one issued certificate. Never carries key material. */
export const CaIssued = Type.Object({
  /** Lowercase hex, as `openssl x509 -serial` prints it. */
  serial: Type.String({ pattern: '^[0-9a-f]{1,64}$' }),
  /** The SPIFFE ID (workload certificates) or `dns:<name>,…` (serving certificates). */
  identity: Type.String({ minLength: 1, maxLength: 2048 }),
  notBefore: Type.String({ format: 'date-time' }),
  notAfter: Type.String({ format: 'date-time' }),
  /** The requested lifetime was cut to the configured maximum. */
  clamped: Type.Boolean(),
  kind: Type.Optional(Type.Union([Type.Literal('workload'), Type.Literal('serving')])),
});

/** A control-plane component asks citadel for a serving certificate (request/reply). */
export const CaSignRequest = Type.Object({
  /** PEM PKCS#10; only its public key is used. */
  csr: Type.String({ minLength: 1, maxLength: 16_384 }),
  /** DNS names (IP literals become IP SANs) for a control-plane serving certificate. */
  dnsNames: Type.Array(Name, { minItems: 1, maxItems: 64 }),
  /** Clamped to citadel's maximum certificate lifetime. */
  ttlSeconds: Type.Integer({ minimum: 60, maximum: 31_622_400 }),
});

export const CaSignReply = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    /** Leaf first, root last. */
    certChain: Type.Array(Pem, { minItems: 1, maxItems: 8 }),
    serial: Type.Optional(Type.String({ pattern: '^[0-9a-f]{1,64}$' })),
    notAfter: Type.Optional(Type.String({ format: 'date-time' })),
  }),
  Type.Object({ ok: Type.Literal(false), code: Type.String(), message: Type.String() }),
]);

const Label = Type.String({ maxLength: 253 });

/**
 * One proxied request (or, for `protocol: 'tcp'`, one closed TCP connection) as reported by a
 * proxy. Field names are a stable contract with the proxies; new fields are only ever added as
 * optional. An empty string means "not known" and is reported as `unknown` in metrics.
 *
 * - `reporter`: `source` from the client-side proxy (sidecar outbound, gateway), `destination`
 *   from the server-side proxy (sidecar inbound), as Istio's `reporter` label.
 * - `sourceWorkload`/`destinationWorkload`: workload (Deployment) names; `*Namespace` their namespaces.
 * - `sourcePrincipal`/`destinationPrincipal`: SPIFFE ids (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`),
 *   empty when the peer was not authenticated.
 * - `sourceApp`/`sourceVersion`/`destinationApp`: the `app`/`version` labels of the workloads
 *   (optional; `destinationVersion` is required and may be empty).
 * - `destinationService`: the service host the request was routed to, e.g.
 *   `reviews.default.svc.cluster.local`.
 * - `protocol`: `http` (HTTP/1.1 and HTTP/2), `grpc` or `tcp`.
 * - `responseCode`: the HTTP status; 0 when no response was sent (and always 0 for tcp).
 * - `responseFlags`: Envoy response flags (`UF`, `URX`, `NR`, …), `-` or empty for none.
 * - `connectionSecurityPolicy`: `mutual_tls` when the hop was mTLS, `none` when plaintext,
 *   `unknown` when the reporter cannot tell (Istio's source reporter).
 * - `durationMs`: request duration (tcp: connection lifetime) in milliseconds.
 * - `requestBytes`/`responseBytes`: body bytes (tcp: bytes received from / sent to the client).
 * - `startTime`: RFC 3339 time the request started.
 * - `traceId`/`spanId`/`parentSpanId`: W3C trace context of the proxy's span, lowercase hex.
 */
export const RequestRecord = Type.Object({
  reporter: Type.Union([Type.Literal('source'), Type.Literal('destination')]),
  sourceWorkload: Label,
  sourceNamespace: Label,
  sourcePrincipal: Type.String({ maxLength: 2048 }),
  sourceApp: Type.Optional(Label),
  sourceVersion: Type.Optional(Label),
  destinationWorkload: Label,
  destinationNamespace: Label,
  destinationPrincipal: Type.String({ maxLength: 2048 }),
  destinationApp: Type.Optional(Label),
  destinationService: Label,
  destinationVersion: Label,
  protocol: Type.Union([Type.Literal('http'), Type.Literal('grpc'), Type.Literal('tcp')]),
  responseCode: Type.Integer({ minimum: 0, maximum: 999 }),
  responseFlags: Type.String({ maxLength: 64 }),
  connectionSecurityPolicy: Type.Union([Type.Literal('mutual_tls'), Type.Literal('none'), Type.Literal('unknown')]),
  durationMs: Type.Number({ minimum: 0, maximum: 86_400_000 }),
  requestBytes: Type.Integer({ minimum: 0 }),
  responseBytes: Type.Integer({ minimum: 0 }),
  startTime: Type.String({ format: 'date-time' }),
  traceId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$' })),
  spanId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16}$' })),
  parentSpanId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16}$' })),
});

/**
 * A batch of request records from one proxy. `records` are validated one by one by the
 * collector (against `RequestRecord`), so one malformed record does not cost the batch.
 */
export const TelemetryRequests = Type.Object({
  proxyId: Type.String({ minLength: 1, maxLength: 1024 }),
  records: Type.Array(Type.Unknown(), { maxItems: 10_000 }),
});

/**
 * Golden signals of one destination service over the trailing `windowSeconds`, published by the
 * collector every summary interval (for canary decisions). `service` is the destination service
 * host. Errors are responses with status >= 500 or no response (code 0); tcp: a response flag.
 */
export const TelemetrySummary = Type.Object({
  service: Name,
  windowSeconds: Type.Number({ minimum: 0 }),
  requestsPerSecond: Type.Number({ minimum: 0 }),
  errorRatio: Type.Number({ minimum: 0, maximum: 1 }),
  p50Ms: Type.Number({ minimum: 0 }),
  p90Ms: Type.Number({ minimum: 0 }),
  p99Ms: Type.Number({ minimum: 0 }),
  /** The service's namespace. */
  namespace: Type.Optional(Type.String({ maxLength: 253 })),
  /** Requests counted in the window. */
  requests: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Share of those requests that were mutual TLS, 0..1. */
  mtlsShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  /** End of the window (RFC 3339). */
  time: Type.Optional(Type.String()),
  /**
   * The same signals per destination version (the destination workloads' `version` label), so a
   * canary can be judged against its stable version; requests to workloads without a version are
   * only in the totals above.
   */
  versions: Type.Optional(
    Type.Array(
      Type.Object({
        version: Type.String({ minLength: 1, maxLength: 63 }),
        requests: Type.Integer({ minimum: 0 }),
        requestsPerSecond: Type.Number({ minimum: 0 }),
        errorRatio: Type.Number({ minimum: 0, maximum: 1 }),
        p50Ms: Type.Number({ minimum: 0 }),
        p90Ms: Type.Number({ minimum: 0 }),
        p99Ms: Type.Number({ minimum: 0 }),
      }),
      { maxItems: 256 },
    ),
  ),
});

const CanaryPosition = Type.Object({
  phase: Type.Union([
    Type.Literal('Pending'),
    Type.Literal('Progressing'),
    Type.Literal('Paused'),
    Type.Literal('Promoted'),
    Type.Literal('RolledBack'),
    Type.Literal('Failed'),
  ]),
  weight: Type.Integer({ minimum: 0, maximum: 100 }),
});
const CanarySide = Type.Object({
  requests: Type.Integer({ minimum: 0 }),
  successRate: Type.Number({ minimum: 0, maximum: 100 }),
  p99Ms: Type.Number({ minimum: 0 }),
  time: Type.String(),
  /** Length of the judged window, seconds (it ended at `time`). */
  windowSeconds: Type.Optional(Type.Number({ minimum: 0 })),
});

/**
 * One transition of a Canary (phase or weight), published durably by pilot's canary controller
 * with a message id per transition, so the history of a rollout can be replayed from the stream.
 * `reason` is one of the controller's closed set; `analysis` is the analysis that led to it.
 */
export const CanaryEvent = Type.Object({
  namespace: Type.String({ minLength: 1, maxLength: 63 }),
  name: Name,
  from: CanaryPosition,
  to: CanaryPosition,
  stepIndex: Type.Integer({ minimum: -1 }),
  reason: Type.String({ minLength: 1, maxLength: 64 }),
  message: Type.String({ maxLength: 4096 }),
  time: Type.String(),
  analysis: Type.Optional(
    Type.Object({
      verdict: Type.Union([Type.Literal('Passed'), Type.Literal('Failed'), Type.Literal('Inconclusive')]),
      canary: CanarySide,
      stable: Type.Optional(CanarySide),
      reasons: Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 16 }),
    }),
  ),
});

/** The schema of each subject's `data`. For request/reply subjects, the request. */
export const subjectSchemas = {
  [Subjects.configChanged]: ConfigChanged,
  [Subjects.registryEndpoints]: RegistryEndpoints,
  [Subjects.xdsStatus]: XdsStatus,
  [Subjects.caBundle]: CaBundle,
  [Subjects.caIssued]: CaIssued,
  [Subjects.caSign]: CaSignRequest,
  [Subjects.telemetryRequests]: TelemetryRequests,
  [Subjects.telemetrySummary]: TelemetrySummary,
  [Subjects.canaryEvent]: CanaryEvent,
} as const satisfies Record<Subject, TSchema>;

/** Reply schemas of request/reply subjects. */
export const replySchemas = {
  [Subjects.caSign]: CaSignReply,
} as const;

export type EventData<S extends Subject> = Static<(typeof subjectSchemas)[S]>;
export type ReplySubject = keyof typeof replySchemas;
export type ReplyData<S extends ReplySubject> = Static<(typeof replySchemas)[S]>;

/**
 * JetStream streams backing the subjects that must survive a restart. A consumer that was
 * away resumes from its durable position.
 */
export const durableStreams = [
  { name: 'AVIARY_CONFIG', subjects: [Subjects.configChanged, Subjects.registryEndpoints], maxAgeSeconds: 7 * 86_400, maxBytes: 256 * 1024 * 1024 },
  { name: 'AVIARY_CA', subjects: [Subjects.caIssued], maxAgeSeconds: 30 * 86_400, maxBytes: 256 * 1024 * 1024 },
  { name: 'AVIARY_TELEMETRY', subjects: [Subjects.telemetryRequests], maxAgeSeconds: 3_600, maxBytes: 1024 * 1024 * 1024 },
  { name: 'AVIARY_CANARY', subjects: [Subjects.canaryEvent], maxAgeSeconds: 30 * 86_400, maxBytes: 64 * 1024 * 1024 },
] as const;

export type DurableSubject = (typeof durableStreams)[number]['subjects'][number];
