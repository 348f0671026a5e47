import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@aviary/observability';
import { sampleRecord } from '@aviary/telemetry';
import { startRecordTracer } from './tracing';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}

/** A minimal OTLP/HTTP JSON receiver: POST /v1/traces. */
function otlpReceiver(): Promise<{ server: Server; url: string; spans: OtlpSpan[]; resources: unknown[] }> {
  const spans: OtlpSpan[] = [];
  const resources: unknown[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces' && (req.headers['content-type'] ?? '').includes('json')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: { resource: unknown; scopeSpans: { spans: OtlpSpan[] }[] }[];
        };
        for (const rs of body.resourceSpans) {
          resources.push(rs.resource);
          for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`, spans, resources });
  }));
}

describe('request spans over OTLP', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;

  beforeAll(async () => {
    receiver = await otlpReceiver();
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = receiver.url;
    process.env['OTEL_EXPORTER_OTLP_PROTOCOL'] = 'http/json';
    process.env['OTEL_BSP_SCHEDULE_DELAY'] = '20';
  });

  afterAll(async () => {
    await new Promise((r) => receiver.server.close(r));
  });

  it('exports one span per record with the proxies\' trace, span and parent ids', async () => {
    const tracer = startRecordTracer(receiver.url, createLogger('test', 'silent'));
    expect(tracer.enabled).toBe(true);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    // The gateway's client span, then the reviews sidecar's server span under it.
    tracer.span(sampleRecord({ reporter: 'source', traceId, spanId: '00f067aa0ba902b7', startTime: '2025-01-01T00:00:00.000Z', durationMs: 20, connectionSecurityPolicy: 'unknown' }), 'router~gw');
    tracer.span(sampleRecord({ traceId, spanId: '1111111111111111', parentSpanId: '00f067aa0ba902b7', startTime: '2025-01-01T00:00:00.005Z', durationMs: 12.5, responseCode: 503 }), 'sidecar~reviews');
    tracer.span(sampleRecord({ startTime: '2025-01-01T00:00:01.000Z' }), 'sidecar~reviews'); // no trace context: fresh ids
    await tracer.shutdown(); // flushes

    expect(receiver.spans).toHaveLength(3);
    const [client, server, fresh] = [...receiver.spans].sort((a, b) => Number(BigInt(a.startTimeUnixNano) - BigInt(b.startTimeUnixNano)));
    expect(client).toMatchObject({ traceId, spanId: '00f067aa0ba902b7', name: 'reviews.default.svc.cluster.local/*', kind: 3 });
    expect(client?.parentSpanId ?? '').toBe('');
    expect(server).toMatchObject({ traceId, spanId: '1111111111111111', parentSpanId: '00f067aa0ba902b7', kind: 2, status: { code: 2 } });
    expect(String(server?.startTimeUnixNano)).toBe('1735689600005000000');
    expect(String(server?.endTimeUnixNano)).toBe('1735689600017500000');
    const attrs = Object.fromEntries((server?.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]));
    expect(attrs).toMatchObject({ 'istio.canonical_service': 'reviews', 'http.status_code': '503', node_id: 'sidecar~reviews', 'istio.connection_security_policy': 'mutual_tls' });
    expect(fresh?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh?.traceId).not.toBe(traceId);
    expect(JSON.stringify(receiver.resources)).toContain('aviary-telemetry-collector');
  });
});
