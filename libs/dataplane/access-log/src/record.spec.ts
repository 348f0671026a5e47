import { afterAll, describe, expect, it } from 'vitest';
import { Compile } from 'typebox/compile';
import { RequestRecord } from '@aviary/events';
import type { HttpAccessLogEntry, TcpAccessLogEntry } from './entry';
import { recordFromHttp, recordFromTcp, responseFlagsOf, serviceOfCluster, spiffeNamespace, type Mapped, type ProxyIdentity, type TelemetryRecord } from './record';

const gateway: ProxyIdentity = {
  namespace: 'istio-system',
  workload: 'istio-ingressgateway',
  labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
  principal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
};
const helloV1: ProxyIdentity = { namespace: 'demo', workload: 'hello-v1', labels: { app: 'hello', version: 'v1' }, principal: 'spiffe://cluster.local/ns/demo/sa/hello' };

const START = { seconds: 1_780_000_000, nanos: 250_000_000 };
/** What the client sent, and what Envoy forwarded (naming its own span) after its tracer ran. */
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const FORWARDED = '00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01';

function outbound(extra: Partial<HttpAccessLogEntry['common_properties']> = {}): HttpAccessLogEntry {
  return {
    common_properties: {
      start_time: START,
      duration: { seconds: 0, nanos: 12_500_000 },
      upstream_cluster: 'outbound|80|v1|hello.demo.svc.cluster.local',
      response_flags: {},
      stream_id: '6f1c0d1e-stream',
      custom_tags: {
        reporter: 'source',
        upstream_workload: 'hello-v1;demo;hello;v1;',
        upstream_principal: 'spiffe://cluster.local/ns/demo/sa/hello',
        upstream_tls: 'ISTIO_MUTUAL',
        parent_traceparent: TRACEPARENT,
      },
      ...extra,
    },
    protocol_version: 'HTTP11',
    request: {
      request_method: 'GET',
      authority: 'hello.demo:8080',
      path: '/',
      request_id: '0f8fad5b-d9cb-469f-a165-70867728950e',
      request_body_bytes: 17,
      request_headers: { traceparent: FORWARDED },
    },
    response: { response_code: { value: 200 }, response_body_bytes: 42 },
  };
}

/** Every record a test maps, checked against the collector's wire schema at the end. */
const produced: TelemetryRecord[] = [];
const recordOf = (m: Mapped): TelemetryRecord => {
  if (!('record' in m)) throw new Error(`skipped: ${m.skip}`);
  produced.push(m.record);
  return m.record;
};

afterAll(() => {
  const check = Compile(RequestRecord);
  expect(produced.length).toBeGreaterThan(10);
  for (const r of produced) expect(check.Check(r), JSON.stringify([...check.Errors(r)])).toBe(true);
});

describe('recordFromHttp, source reporter (gateway, outbound sidecar)', () => {
  it('fills every field from the entry, the upstream host metadata and the proxy identity', () => {
    const r = recordOf(recordFromHttp(outbound(), gateway));
    expect(r).toEqual({
      reporter: 'source',
      sourceWorkload: 'istio-ingressgateway',
      sourceNamespace: 'istio-system',
      sourcePrincipal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
      sourceApp: 'istio-ingressgateway',
      destinationWorkload: 'hello-v1',
      destinationNamespace: 'demo',
      destinationPrincipal: 'spiffe://cluster.local/ns/demo/sa/hello',
      destinationApp: 'hello',
      destinationService: 'hello.demo.svc.cluster.local',
      destinationVersion: 'v1',
      protocol: 'http',
      responseCode: 200,
      responseFlags: '-',
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: 12.5,
      requestBytes: 17,
      responseBytes: 42,
      startTime: '2026-05-28T20:26:40.250Z',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentSpanId: '00f067aa0ba902b7',
      spanId: 'b7ad6b7169203331',
    });
  });

  it('tells mTLS from the cluster TLS mode and, under auto mTLS, the endpoint tlsMode', () => {
    const policy = (tags: Record<string, string>, cluster = 'outbound|80||hello.demo.svc.cluster.local') =>
      recordOf(recordFromHttp(outbound({ upstream_cluster: cluster, custom_tags: { reporter: 'source', upstream_principal: 'spiffe://x/ns/a/sa/b', ...tags } }), gateway));
    expect(policy({ upstream_tls: 'AUTO', upstream_tls_mode: 'istio' })).toMatchObject({ connectionSecurityPolicy: 'mutual_tls', destinationPrincipal: 'spiffe://x/ns/a/sa/b' });
    expect(policy({ upstream_tls: 'AUTO' })).toMatchObject({ connectionSecurityPolicy: 'none', destinationPrincipal: '' });
    expect(policy({ upstream_tls: 'NONE' }).connectionSecurityPolicy).toBe('none');
    expect(policy({ upstream_tls: 'SIMPLE' }).connectionSecurityPolicy).toBe('none');
    expect(policy({ upstream_tls: 'MUTUAL' }).connectionSecurityPolicy).toBe('mutual_tls');
    expect(policy({}, 'PassthroughCluster').connectionSecurityPolicy).toBe('none');
    expect(policy({}, '').connectionSecurityPolicy).toBe('unknown');
  });

  it("takes the destination principal from the host, else from the cluster (pilot's, when all its endpoints share one)", () => {
    const principal = (tags: Record<string, string>) =>
      recordOf(recordFromHttp(outbound({ upstream_cluster: 'outbound|80||hello.demo.svc.cluster.local', custom_tags: { reporter: 'source', upstream_tls: 'ISTIO_MUTUAL', ...tags } }), gateway)).destinationPrincipal;
    expect(principal({ upstream_cluster_principal: 'spiffe://x/ns/a/sa/shared' })).toBe('spiffe://x/ns/a/sa/shared');
    expect(principal({ upstream_principal: 'spiffe://x/ns/a/sa/own', upstream_cluster_principal: 'spiffe://x/ns/a/sa/shared' })).toBe('spiffe://x/ns/a/sa/own');
    expect(principal({})).toBe('');
  });

  it('takes the destination service from the cluster name, else the authority without its port', () => {
    expect(recordOf(recordFromHttp(outbound({ upstream_cluster: 'PassthroughCluster', custom_tags: { reporter: 'source' } }), gateway))).toMatchObject({
      destinationService: 'hello.demo',
      destinationWorkload: '',
      destinationVersion: '',
    });
    expect(serviceOfCluster('outbound|9080|v2|reviews.default.svc.cluster.local')).toBe('reviews.default.svc.cluster.local');
    expect(serviceOfCluster('inbound|9080||')).toBe('');
  });

  it('reports gRPC by content type, the status, flags and no response as code 0', () => {
    const e = outbound({ response_flags: { upstream_connection_failure: true, upstream_retry_limit_exceeded: true } });
    const grpc = { ...e, request: { ...e.request, request_headers: { 'content-type': 'application/grpc+proto' } }, response: {} };
    expect(recordOf(recordFromHttp(grpc, gateway))).toMatchObject({ protocol: 'grpc', responseCode: 0, responseFlags: 'UF,URX' });
  });

  it('at the edge (no incoming traceparent) the hop is the root span of the trace Envoy started', () => {
    const e = outbound();
    const tags = { ...e.common_properties!.custom_tags };
    delete (tags as Record<string, string>).parent_traceparent;
    const r = recordOf(recordFromHttp({ ...e, common_properties: { ...e.common_properties, custom_tags: tags } }, gateway));
    expect(r).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: 'b7ad6b7169203331' });
    expect(r.parentSpanId).toBeUndefined();
  });

  it('a hop that forwarded nothing (direct response) gets a derived span under the caller', () => {
    const e = outbound();
    const r = recordOf(recordFromHttp({ ...e, request: { ...e.request, request_headers: { traceparent: TRACEPARENT } } }, gateway));
    expect(r).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentSpanId: '00f067aa0ba902b7', spanId: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(r.spanId).not.toBe('00f067aa0ba902b7');
  });

  it('without traceparent, traces by the x-request-id Envoy generated (no parent)', () => {
    const e = outbound({ custom_tags: { reporter: 'source' } });
    const r = recordOf(recordFromHttp({ ...e, request: { ...e.request, request_headers: {} } }, gateway));
    expect(r.traceId).toBe('0f8fad5bd9cb469fa16570867728950e');
    expect(r.parentSpanId).toBeUndefined();
    expect(r.spanId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('ignores an invalid traceparent and omits trace ids when there is no request id either', () => {
    const e = outbound();
    const r = recordOf(recordFromHttp({ ...e, request: { request_headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' } } }, gateway));
    expect(r.traceId).toBeUndefined();
    expect(r.spanId).toBeUndefined();
    expect(r.parentSpanId).toBeUndefined();
  });

  it('derived span ids are deterministic per stream: same trace, different stream, different span', () => {
    const direct = (extra: Parameters<typeof outbound>[0]) => {
      const e = outbound(extra);
      return { ...e, request: { ...e.request, request_headers: { traceparent: TRACEPARENT } } };
    };
    const a = recordOf(recordFromHttp(direct({}), gateway));
    const b = recordOf(recordFromHttp(direct({ stream_id: 'other-stream' }), gateway));
    expect(a.spanId).toBe(recordOf(recordFromHttp(direct({}), gateway)).spanId);
    expect(b.spanId).not.toBe(a.spanId);
    expect(b.traceId).toBe(a.traceId);
  });
});

describe('recordFromHttp, destination reporter (inbound sidecar)', () => {
  const inbound = (tls: NonNullable<HttpAccessLogEntry['common_properties']>['tls_properties']): HttpAccessLogEntry => ({
    common_properties: {
      start_time: START,
      time_to_last_downstream_tx_byte: { nanos: 3_000_000 },
      upstream_cluster: 'inbound|9081||',
      custom_tags: { reporter: 'destination', destination_service: 'hello.demo.svc.cluster.local', peer_workload: 'istio-ingressgateway', parent_traceparent: TRACEPARENT },
      ...(tls !== undefined && { tls_properties: tls }),
    },
    request: { authority: 'hello.demo', request_body_bytes: 0, request_headers: { traceparent: FORWARDED } },
    response: { response_code: { value: 503 }, response_body_bytes: 19 },
  });

  it('takes the source identity from the peer certificate and the destination from itself', () => {
    const r = recordOf(
      recordFromHttp(
        inbound({
          tls_version: 'TLSv1_3',
          peer_certificate_properties: { subject_alt_name: [{ dns: 'ignored' }, { uri: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account' }] },
          local_certificate_properties: { subject_alt_name: [{ uri: 'spiffe://cluster.local/ns/demo/sa/hello' }] },
        }),
        helloV1,
      ),
    );
    expect(r).toEqual({
      reporter: 'destination',
      sourceWorkload: 'istio-ingressgateway',
      sourceNamespace: 'istio-system',
      sourcePrincipal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
      destinationWorkload: 'hello-v1',
      destinationNamespace: 'demo',
      destinationPrincipal: 'spiffe://cluster.local/ns/demo/sa/hello',
      destinationApp: 'hello',
      destinationService: 'hello.demo.svc.cluster.local',
      destinationVersion: 'v1',
      protocol: 'http',
      responseCode: 503,
      responseFlags: '-',
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: 3,
      requestBytes: 0,
      responseBytes: 19,
      startTime: '2026-05-28T20:26:40.250Z',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentSpanId: '00f067aa0ba902b7',
      spanId: 'b7ad6b7169203331',
    });
  });

  it('plaintext (or TLS without a client certificate) is not mutual TLS: no principals, and the claimed peer workload is not trusted', () => {
    expect(recordOf(recordFromHttp(inbound(undefined), helloV1))).toMatchObject({ connectionSecurityPolicy: 'none', sourcePrincipal: '', sourceNamespace: '', destinationPrincipal: '', sourceWorkload: '' });
    expect(recordOf(recordFromHttp(inbound({ tls_version: 'TLSv1_3' }), helloV1)).connectionSecurityPolicy).toBe('none');
  });

  it("ignores Envoy's '-' for a peer that did not know its workload name", () => {
    const e = inbound({ peer_certificate_properties: { subject_alt_name: [{ uri: 'spiffe://cluster.local/ns/a/sa/b' }] } });
    const tags = { ...e.common_properties!.custom_tags, peer_workload: '-' };
    expect(recordOf(recordFromHttp({ ...e, common_properties: { ...e.common_properties, custom_tags: tags } }, helloV1)).sourceWorkload).toBe('');
  });

  it('uses Istio canonical labels before app/version', () => {
    const self = { ...helloV1, labels: { app: 'hello', version: 'v1', 'service.istio.io/canonical-name': 'greeter', 'service.istio.io/canonical-revision': '7' } };
    expect(recordOf(recordFromHttp(inbound(undefined), self))).toMatchObject({ destinationApp: 'greeter', destinationVersion: '7' });
  });
});

describe('entries that are not requests', () => {
  it('skips entries without a reporter tag (not configured by pilot) and intermediate ones', () => {
    expect(recordFromHttp({ common_properties: { custom_tags: {} } }, gateway)).toEqual({ skip: 'no_reporter' });
    expect(recordFromHttp({ common_properties: { custom_tags: { reporter: 'source' }, access_log_type: 'DownstreamPeriodic' } }, gateway)).toEqual({ skip: 'intermediate' });
    expect(recordFromTcp({ common_properties: { custom_tags: { reporter: 'source' }, intermediate_log_entry: true } }, gateway)).toEqual({ skip: 'intermediate' });
  });
});

describe('recordFromTcp', () => {
  it('a closed connection: code 0, bytes from and to the client, its lifetime', () => {
    const e: TcpAccessLogEntry = {
      common_properties: {
        start_time: START,
        duration: { seconds: 2 },
        upstream_cluster: 'outbound|5432||db.data.svc.cluster.local',
        response_flags: { upstream_connection_failure: true },
        access_log_type: 'TcpConnectionEnd',
        custom_tags: { reporter: 'source', upstream_workload: 'db;data;db;;', upstream_tls: 'AUTO', upstream_tls_mode: 'istio', upstream_principal: 'spiffe://cluster.local/ns/data/sa/db' },
      },
      connection_properties: { received_bytes: 100, sent_bytes: 2048 },
    };
    expect(recordOf(recordFromTcp(e, helloV1))).toEqual({
      reporter: 'source',
      sourceWorkload: 'hello-v1',
      sourceNamespace: 'demo',
      sourcePrincipal: 'spiffe://cluster.local/ns/demo/sa/hello',
      sourceApp: 'hello',
      sourceVersion: 'v1',
      destinationWorkload: 'db',
      destinationNamespace: 'data',
      destinationPrincipal: 'spiffe://cluster.local/ns/data/sa/db',
      destinationApp: 'db',
      destinationService: 'db.data.svc.cluster.local',
      destinationVersion: '',
      protocol: 'tcp',
      responseCode: 0,
      responseFlags: 'UF',
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: 2000,
      requestBytes: 100,
      responseBytes: 2048,
      startTime: '2026-05-28T20:26:40.250Z',
    });
  });
});

describe('bounds of the wire schema', () => {
  it('cuts overlong labels, principals and flags instead of losing the record', () => {
    const e = outbound({
      custom_tags: { reporter: 'source', upstream_workload: `${'w'.repeat(300)};ns;;;`, upstream_principal: `spiffe://td/ns/a/sa/${'p'.repeat(3000)}`, upstream_tls: 'ISTIO_MUTUAL' },
      response_flags: Object.fromEntries(['failed_local_healthcheck', 'no_healthy_upstream', 'upstream_request_timeout', 'local_reset', 'upstream_remote_reset', 'upstream_connection_failure', 'upstream_connection_termination', 'upstream_overflow', 'no_route_found', 'delay_injected', 'fault_injected', 'rate_limited', 'rate_limit_service_error', 'downstream_connection_termination', 'upstream_retry_limit_exceeded', 'stream_idle_timeout', 'invalid_envoy_request_headers', 'downstream_protocol_error', 'upstream_max_stream_duration_reached', 'response_from_cache_filter', 'no_filter_config_found'].map((f) => [f, true])),
    });
    const r = recordOf(recordFromHttp(e, gateway));
    expect(r.destinationWorkload).toHaveLength(253);
    expect(r.destinationPrincipal).toHaveLength(2048);
    expect(r.responseFlags.length).toBeLessThanOrEqual(64);
  });
});

describe('helpers', () => {
  it('spells response flags as Envoy does', () => {
    expect(responseFlagsOf(undefined)).toBe('-');
    expect(responseFlagsOf({ no_route_found: true })).toBe('NR');
    expect(responseFlagsOf({ rate_limited: true, unauthorized_details: { reason: 'EXTERNAL_SERVICE' }, downstream_remote_reset: true })).toBe('RL,UAEX,DR');
  });

  it('reads the namespace of a SPIFFE id', () => {
    expect(spiffeNamespace('spiffe://cluster.local/ns/demo/sa/hello')).toBe('demo');
    expect(spiffeNamespace('spiffe://cluster.local/other')).toBe('');
  });
});
