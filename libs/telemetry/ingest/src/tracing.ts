import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { randomBytes } from 'node:crypto';
import { istioLabels, isErrorRecord, type TelemetryRecord } from '@aviary/telemetry';
import type { Logger } from '@aviary/observability';

type IdGenerator = NodeSDKConfiguration['idGenerator'];

/**
 * Hands the SDK the ids a proxy already chose for its span. The SDK asks for ids synchronously
 * inside `startSpan`, so `next` is set just before and cleared just after; anything else that
 * starts a span gets random ids.
 */
class RecordIdGenerator implements IdGenerator {
  next: { traceId: string; spanId: string } | undefined;

  generateTraceId(): string {
    return this.next?.traceId ?? randomBytes(16).toString('hex');
  }

  generateSpanId(): string {
    return this.next?.spanId ?? randomBytes(8).toString('hex');
  }
}

export interface RecordTracer {
  readonly enabled: boolean;
  /** Emits one span for the record, with the record's trace, span and parent ids. */
  span(record: TelemetryRecord, proxyId: string): void;
  /** Flushes queued spans and stops the exporter. */
  shutdown(): Promise<void>;
}

const disabled: RecordTracer = { enabled: false, span: () => {}, shutdown: async () => {} };

// W3C trace context: lowercase hex, not all zeros.
const validTrace = (id: string | undefined): id is string => id !== undefined && /^[0-9a-f]{32}$/.test(id) && !/^0+$/.test(id);
const validSpan = (id: string | undefined): id is string => id !== undefined && /^[0-9a-f]{16}$/.test(id) && !/^0+$/.test(id);

/**
 * Exports a span per request record over OTLP through the OpenTelemetry Node SDK. The SDK reads
 * the standard OTEL_EXPORTER_OTLP_* variables (endpoint, protocol, headers) and OTEL_BSP_* (batch
 * size, queue size: spans past a full queue are dropped, so export cannot grow memory).
 *
 * The collector registers the process's tracer provider itself (the runtime's is left off in
 * main.ts): spans must carry the proxies' ids, which needs an id generator of our own.
 */
export function startRecordTracer(otlpEndpoint: string, logger: Logger): RecordTracer {
  if (otlpEndpoint === '') return disabled;
  const ids = new RecordIdGenerator();
  const sdk = new NodeSDK({
    serviceName: 'aviary-telemetry-collector',
    idGenerator: ids,
    autoDetectResources: false,
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
    textMapPropagator: null,
  });
  sdk.start();
  const tracer: Tracer = trace.getTracer('aviary-telemetry-collector');

  // Another tracer provider registered first would ignore our ids: check once, never export it.
  ids.next = { traceId: 'feedfacefeedfacefeedfacefeedface', spanId: 'feedfacefeedface' };
  const probe = tracer.startSpan('probe').spanContext();
  ids.next = undefined;
  if (probe.spanId !== 'feedfacefeedface') {
    logger.warn('another OpenTelemetry tracer provider is registered; request spans are not exported');
    return { enabled: false, span: () => {}, shutdown: () => sdk.shutdown() };
  }
  logger.info({ otlpEndpoint }, 'exporting request spans over OTLP');

  return {
    enabled: true,
    span(r, proxyId) {
      const start = Date.parse(r.startTime);
      const traceId = validTrace(r.traceId) ? r.traceId : undefined;
      const parent =
        traceId !== undefined && validSpan(r.parentSpanId)
          ? trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: r.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true })
          : ROOT_CONTEXT;
      ids.next = {
        traceId: traceId ?? randomBytes(16).toString('hex'),
        spanId: validSpan(r.spanId) ? r.spanId : randomBytes(8).toString('hex'),
      };
      let span;
      try {
        span = tracer.startSpan(
          `${r.destinationService || 'unknown'}/*`,
          { kind: r.reporter === 'source' ? SpanKind.CLIENT : SpanKind.SERVER, startTime: start, attributes: spanAttributes(r, proxyId) },
          parent,
        );
      } finally {
        ids.next = undefined;
      }
      if (isErrorRecord(r)) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end(start + r.durationMs);
    },
    shutdown: () => sdk.shutdown(),
  };
}

/** Envoy/Istio span tags, plus the OpenTelemetry semantic-convention names. */
function spanAttributes(r: TelemetryRecord, proxyId: string): Attributes {
  const l = istioLabels(r);
  const attrs: Attributes = {
    component: 'proxy',
    node_id: proxyId,
    'istio.reporter': r.reporter,
    'istio.source_workload': l.source_workload,
    'istio.source_namespace': l.source_workload_namespace,
    'istio.destination_workload': l.destination_workload,
    'istio.destination_namespace': l.destination_workload_namespace,
    'istio.canonical_service': r.reporter === 'source' ? l.source_canonical_service : l.destination_canonical_service,
    'istio.namespace': r.reporter === 'source' ? l.source_workload_namespace : l.destination_workload_namespace,
    'istio.connection_security_policy': r.connectionSecurityPolicy,
    'server.address': r.destinationService,
    response_flags: l.response_flags,
    request_size: r.requestBytes,
    response_size: r.responseBytes,
  };
  if (r.protocol !== 'tcp') {
    attrs['http.status_code'] = String(r.responseCode);
    attrs['http.response.status_code'] = r.responseCode;
    attrs['network.protocol.name'] = r.protocol;
  }
  return attrs;
}
