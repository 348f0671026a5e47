import { lstat, unlink } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { Server, ServerCredentials, type handleClientStreamingCall, type handleUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import { AviaryError } from '@aviary/errors';
import type { Logger } from '@aviary/observability';
import { lookupType } from '@aviary/xds-protos';
import { ALS_LOG_NAME } from '@aviary/xds-translate';
import type { StreamAccessLogsMessage } from './entry';
import { recordFromHttp, recordFromTcp, SkipReasons, type Mapped, type ProxyIdentity, type TelemetryRecord } from './record';

export interface AccessLogServerOptions {
  /** Absolute path of the Unix socket Envoy's `aviary-als` cluster points at; a stale socket there is replaced. */
  readonly socketPath: string;
  /** Who this proxy is (the side of each record Envoy's entry cannot tell). */
  readonly identity: ProxyIdentity;
  /** Receives the records of each ALS message (at most `maxEntriesPerMessage`); must not throw. */
  readonly onRecords: (records: TelemetryRecord[]) => void;
  readonly logger?: Logger;
  /** Registers `aviary_agent_access_log_entries_total` and `aviary_agent_access_log_skipped_total`. */
  readonly registry?: Registry;
  /** Largest ALS message accepted (bytes); Envoy flushes at 16 KiB by default. Default 4 MiB. */
  readonly maxMessageBytes?: number;
  /** Entries of one message beyond this are skipped (`too_many_entries`). Default 10,000. */
  readonly maxEntriesPerMessage?: number;
}

export interface AccessLogServer {
  readonly socketPath: string;
  /** Entries turned into records and entries skipped, since start. */
  readonly stats: { readonly records: number; readonly skipped: number; readonly streams: number };
  /** Stops accepting and ends open streams (Envoy reconnects to the next server). */
  stop(): Promise<void>;
}

/** Closed set of reasons an entry is skipped (the `reason` label). */
export const ServerSkipReasons = [...SkipReasons, 'foreign_log', 'too_many_entries'] as const;
export type ServerSkipReason = (typeof ServerSkipReasons)[number];

const SERVICE = '/envoy.service.accesslog.v3.AccessLogService';
const MESSAGE = 'envoy.service.accesslog.v3.StreamAccessLogsMessage';
/** Unix socket paths longer than this do not fit `sockaddr_un` on Linux. */
const MAX_SOCKET_PATH = 107;

function decodeMessage(buf: Buffer): StreamAccessLogsMessage {
  const type = lookupType(MESSAGE);
  return type.toObject(type.decode(buf), { longs: Number, enums: String, defaults: false }) as StreamAccessLogsMessage;
}

/** grpc-js definition of envoy.service.accesslog.v3.AccessLogService (client streaming; the response is empty). */
function accessLogServiceDefinition(): ServiceDefinition {
  return {
    StreamAccessLogs: {
      path: `${SERVICE}/StreamAccessLogs`,
      requestStream: true,
      responseStream: false,
      requestSerialize: () => {
        throw new Error('server side only');
      },
      requestDeserialize: decodeMessage,
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: () => ({}),
      originalName: 'streamAccessLogs',
    },
  };
}

const TRACE_SERVICE = '/opentelemetry.proto.collector.trace.v1.TraceService';

/**
 * grpc-js definition of OTLP's TraceService/Export, where Envoy's tracer exports its spans
 * (pilot points it at `aviary-als`). The spans are not decoded: the request records carry the
 * same trace and span ids to the collector. An empty ExportTraceServiceResponse is success.
 */
function traceServiceDefinition(): ServiceDefinition {
  return {
    Export: {
      path: `${TRACE_SERVICE}/Export`,
      requestStream: false,
      responseStream: false,
      requestSerialize: () => {
        throw new Error('server side only');
      },
      requestDeserialize: (b: Buffer) => b.length,
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: () => ({}),
      originalName: 'export',
    },
  };
}

function positiveInt(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `${field}: must be a positive integer, got ${String(value)}`, { field });
  return v;
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) throw new AviaryError('FAILED_PRECONDITION', 'ACCESS_LOG_SOCKET_IN_USE', `socketPath: ${path} exists and is not a socket`, { field: 'socketPath' });
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Serves Envoy's gRPC Access Log Service (`envoy.service.accesslog.v3.AccessLogService/
 * StreamAccessLogs`, and OTLP `TraceService/Export` for Envoy's tracer) on a Unix socket and turns each HTTP and TCP entry into a request record
 * (`recordFromHttp`/`recordFromTcp`). A stream must identify itself with pilot's log name
 * (`aviary`); entries of other logs are counted and skipped. Envoy holds one stream per worker
 * and log; each message is handled as it arrives, so memory is bounded by `maxMessageBytes`.
 */
export async function startAccessLogServer(o: AccessLogServerOptions): Promise<AccessLogServer> {
  if (!isAbsolute(o.socketPath) || o.socketPath.length > MAX_SOCKET_PATH) {
    throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `socketPath: must be an absolute path of at most ${MAX_SOCKET_PATH} bytes, got ${JSON.stringify(o.socketPath)}`, { field: 'socketPath' });
  }
  const maxMessageBytes = positiveInt(o.maxMessageBytes, 4 * 1024 * 1024, 'maxMessageBytes');
  const maxEntries = positiveInt(o.maxEntriesPerMessage, 10_000, 'maxEntriesPerMessage');
  const registers = o.registry === undefined ? [] : [o.registry];
  const entriesTotal = new Counter({ name: 'aviary_agent_access_log_entries_total', help: 'Envoy access log entries received, by kind', labelNames: ['kind'], registers });
  const skippedTotal = new Counter({ name: 'aviary_agent_access_log_skipped_total', help: 'Envoy access log entries that gave no request record, by reason', labelNames: ['reason'], registers });
  for (const reason of ServerSkipReasons) skippedTotal.inc({ reason }, 0);
  const stats = { records: 0, skipped: 0, streams: 0 };
  const skip = (reason: ServerSkipReason, n = 1): void => {
    stats.skipped += n;
    skippedTotal.inc({ reason }, n);
  };

  const handle = (msg: StreamAccessLogsMessage, foreign: boolean): void => {
    const http = msg.http_logs?.log_entry ?? [];
    const tcp = msg.tcp_logs?.log_entry ?? [];
    if (http.length > 0) entriesTotal.inc({ kind: 'http' }, http.length);
    if (tcp.length > 0) entriesTotal.inc({ kind: 'tcp' }, tcp.length);
    if (foreign) return skip('foreign_log', http.length + tcp.length);
    const records: TelemetryRecord[] = [];
    const take = (m: Mapped): void => {
      if ('record' in m) records.push(m.record);
      else skip(m.skip);
    };
    let budget = maxEntries;
    for (const e of http) if (budget-- > 0) take(recordFromHttp(e, o.identity));
    for (const e of tcp) if (budget-- > 0) take(recordFromTcp(e, o.identity));
    if (budget < 0) skip('too_many_entries', -budget);
    stats.records += records.length;
    if (records.length === 0) return;
    try {
      o.onRecords(records);
    } catch (err) {
      // A consumer bug must not end Envoy's stream (Envoy would reconnect and resend nothing).
      o.logger?.error({ err, records: records.length }, 'onRecords threw; these records are lost');
    }
  };

  const server = new Server({ 'grpc.max_receive_message_length': maxMessageBytes });
  const streamAccessLogs: handleClientStreamingCall<StreamAccessLogsMessage, object> = (call, callback) => {
    stats.streams++;
    let logName: string | undefined;
    call.on('data', (msg: StreamAccessLogsMessage) => {
      // The identifier comes with the first message of a stream (and again after a reconnect).
      if (msg.identifier !== undefined) {
        logName = msg.identifier.log_name ?? '';
        if (logName !== ALS_LOG_NAME) o.logger?.warn({ logName, node: msg.identifier.node?.id }, `access log stream of log ${JSON.stringify(logName)} (not ${ALS_LOG_NAME}): its entries are skipped`);
      }
      handle(msg, logName !== ALS_LOG_NAME);
    });
    call.on('error', () => undefined);
    call.on('end', () => callback(null, {}));
  };
  server.addService(accessLogServiceDefinition(), { StreamAccessLogs: streamAccessLogs });
  const exportsTotal = new Counter({ name: 'aviary_agent_trace_exports_total', help: "Span exports from Envoy's tracer accepted and dropped (the records carry the ids)", registers });
  const exportSpans: handleUnaryCall<number, object> = (_call, callback) => {
    exportsTotal.inc();
    callback(null, {});
  };
  server.addService(traceServiceDefinition(), { Export: exportSpans });
  await removeStaleSocket(o.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${o.socketPath}`, ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new AviaryError('UNAVAILABLE', 'ACCESS_LOG_BIND_FAILED', `cannot listen on unix:${o.socketPath}: ${err.message}`, { field: 'socketPath' }, { cause: err }));
      else resolve();
    });
  });
  o.logger?.info({ socketPath: o.socketPath }, 'access log service listening');

  return {
    socketPath: o.socketPath,
    stats,
    async stop() {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await unlink(o.socketPath).catch(() => undefined);
    },
  };
}
