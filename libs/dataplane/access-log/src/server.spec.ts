import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, makeGenericClientConstructor, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { encodeMessageOf } from '@aviary/xds-protos';
import { startAccessLogServer, type AccessLogServer } from './server';
import type { ProxyIdentity, TelemetryRecord } from './record';

/** A real gRPC client speaking envoy.service.accesslog.v3 to the server, as Envoy does. */
const AlsClient = makeGenericClientConstructor(
  {
    StreamAccessLogs: {
      path: '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs',
      requestStream: true,
      responseStream: false,
      requestSerialize: (m: object) => Buffer.from(encodeMessageOf('envoy.service.accesslog.v3.StreamAccessLogsMessage', m)),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  'AccessLogService',
);

const self: ProxyIdentity = { namespace: 'demo', workload: 'hello-v1', labels: { app: 'hello' }, principal: '' };
const entry = (code: number) => ({
  common_properties: { start_time: { seconds: 1_780_000_000 }, duration: { nanos: 1_000_000 }, custom_tags: { reporter: 'destination', destination_service: 'hello.demo.svc.cluster.local' } },
  response: { response_code: { value: code } },
});

function stream(socket: string): { call: ClientWritableStream<object>; done: Promise<ServiceError | null>; close: () => void } {
  const client = new AlsClient(`unix:${socket}`, credentials.createInsecure());
  let call!: ClientWritableStream<object>;
  const done = new Promise<ServiceError | null>((resolve) => {
    call = (client as unknown as { StreamAccessLogs(cb: (err: ServiceError | null) => void): ClientWritableStream<object> }).StreamAccessLogs((err) => resolve(err));
  });
  return { call, done, close: () => client.close() };
}

describe('startAccessLogServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aviary-als-server-'));
  const records: TelemetryRecord[] = [];
  const registry = new Registry();
  let server: AccessLogServer;

  beforeAll(async () => {
    server = await startAccessLogServer({ socketPath: join(dir, 'als.sock'), identity: self, onRecords: (r) => records.push(...r), registry, maxEntriesPerMessage: 2, maxMessageBytes: 2048 });
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('maps the entries of an aviary stream, at most maxEntriesPerMessage per message', async () => {
    const s = stream(server.socketPath);
    s.call.write({ identifier: { node: { id: 'sidecar~x' }, log_name: 'aviary' }, http_logs: { log_entry: [entry(200), entry(503), entry(404)] } });
    s.call.write({ http_logs: { log_entry: [entry(201)] } });
    s.call.end();
    expect(await s.done).toBeNull();
    s.close();
    expect(records.map((r) => r.responseCode)).toEqual([200, 503, 201]);
    expect(records[0]).toMatchObject({ reporter: 'destination', destinationWorkload: 'hello-v1', destinationService: 'hello.demo.svc.cluster.local' });
    expect(await registry.metrics()).toMatch(/aviary_agent_access_log_skipped_total\{reason="too_many_entries"\} 1/);
  });

  it('skips the entries of a stream with another log name', async () => {
    const before = records.length;
    const s = stream(server.socketPath);
    s.call.write({ identifier: { log_name: 'somebody-else' }, http_logs: { log_entry: [entry(200)] } });
    s.call.end();
    expect(await s.done).toBeNull();
    s.close();
    expect(records.length).toBe(before);
    expect(await registry.metrics()).toMatch(/aviary_agent_access_log_skipped_total\{reason="foreign_log"\} 1/);
  });

  it('refuses a message larger than maxMessageBytes (RESOURCE_EXHAUSTED) and keeps serving', async () => {
    const s = stream(server.socketPath);
    const big = { ...entry(200), request: { path: `/${'x'.repeat(4096)}` } };
    s.call.write({ identifier: { log_name: 'aviary' }, http_logs: { log_entry: [big] } });
    s.call.end();
    const err = await s.done;
    s.close();
    expect(err?.code).toBe(8);
    const again = stream(server.socketPath);
    again.call.write({ identifier: { log_name: 'aviary' }, http_logs: { log_entry: [entry(204)] } });
    again.call.end();
    expect(await again.done).toBeNull();
    again.close();
    expect(records.at(-1)?.responseCode).toBe(204);
  });

  it('refuses bad socket paths with the field named', async () => {
    await expect(startAccessLogServer({ socketPath: 'relative.sock', identity: self, onRecords: () => {} })).rejects.toMatchObject({ code: 'ACCESS_LOG_BAD_OPTION' });
    await expect(startAccessLogServer({ socketPath: `/${'x'.repeat(200)}`, identity: self, onRecords: () => {} })).rejects.toThrow(/socketPath/);
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'data');
    await expect(startAccessLogServer({ socketPath: file, identity: self, onRecords: () => {} })).rejects.toMatchObject({ code: 'ACCESS_LOG_SOCKET_IN_USE' });
    await expect(startAccessLogServer({ socketPath: join(dir, 'x.sock'), identity: self, onRecords: () => {}, maxEntriesPerMessage: 0 })).rejects.toThrow(/maxEntriesPerMessage/);
  });
});
