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

export const CaBundle = Type.Object({
  version: Type.Integer({ minimum: 0 }),
  roots: Type.Array(Pem, { minItems: 1, maxItems: 16 }),
});

export const CaIssued = Type.Object({
  serial: Type.String({ pattern: '^[0-9a-f]{1,64}$' }),
  identity: Type.String({ minLength: 1, maxLength: 2048 }),
  notBefore: Type.String(),
  notAfter: Type.String(),
  clamped: Type.Boolean(),
});

export const CaSignRequest = Type.Object({
  csr: Pem,
  /** DNS names for a control-plane serving certificate. */
  dnsNames: Type.Array(Name, { minItems: 1, maxItems: 64 }),
  ttlSeconds: Type.Integer({ minimum: 60, maximum: 31_622_400 }),
});

export const CaSignReply = Type.Union([
  Type.Object({ ok: Type.Literal(true), certChain: Type.Array(Pem, { minItems: 1, maxItems: 8 }) }),
  Type.Object({ ok: Type.Literal(false), code: Type.String(), message: Type.String() }),
]);

/** One proxied request as reported by a proxy. */
export const RequestRecord = Type.Object({
  reporter: Type.Union([Type.Literal('source'), Type.Literal('destination')]),
  sourceWorkload: Type.String({ maxLength: 253 }),
  sourceNamespace: Type.String({ maxLength: 253 }),
  sourcePrincipal: Type.String({ maxLength: 2048 }),
  destinationWorkload: Type.String({ maxLength: 253 }),
  destinationNamespace: Type.String({ maxLength: 253 }),
  destinationPrincipal: Type.String({ maxLength: 2048 }),
  destinationService: Type.String({ maxLength: 253 }),
  destinationVersion: Type.String({ maxLength: 253 }),
  protocol: Type.Union([Type.Literal('http'), Type.Literal('grpc'), Type.Literal('tcp')]),
  responseCode: Type.Integer({ minimum: 0, maximum: 999 }),
  responseFlags: Type.String({ maxLength: 64 }),
  connectionSecurityPolicy: Type.Union([Type.Literal('mutual_tls'), Type.Literal('none'), Type.Literal('unknown')]),
  durationMs: Type.Number({ minimum: 0 }),
  requestBytes: Type.Integer({ minimum: 0 }),
  responseBytes: Type.Integer({ minimum: 0 }),
  startTime: Type.String(),
  traceId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$' })),
  spanId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16}$' })),
  parentSpanId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16}$' })),
});

export const TelemetryRequests = Type.Object({
  proxyId: Type.String({ minLength: 1, maxLength: 1024 }),
  records: Type.Array(Type.Unknown(), { maxItems: 10_000 }),
});

export const TelemetrySummary = Type.Object({
  service: Name,
  windowSeconds: Type.Number({ minimum: 0 }),
  requestsPerSecond: Type.Number({ minimum: 0 }),
  errorRatio: Type.Number({ minimum: 0, maximum: 1 }),
  p50Ms: Type.Number({ minimum: 0 }),
  p90Ms: Type.Number({ minimum: 0 }),
  p99Ms: Type.Number({ minimum: 0 }),
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
] as const;

export type DurableSubject = (typeof durableStreams)[number]['subjects'][number];
