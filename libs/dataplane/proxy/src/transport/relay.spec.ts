import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoutingTable } from '../domain';
import { bodyComplete, Proxy, serviceOfInbound, spiffeParts, type ProxyRequestRecord } from './proxy';
import type { BodySink, UpstreamResponse } from './upstream';

/**
 * The response relay against upstream bodies that end in an error: a late error (after the
 * body completed) must neither flag nor cut the finished request; a real one mid-body must.
 */

type Script = (sink: BodySink) => void;

const records: ProxyRequestRecord[] = [];
const proxy = new Proxy({ node: { id: 'router~127.0.0.1~gw.test~test.svc.cluster.local', mode: 'router', workload: 'gw', namespace: 'test' }, onRecord: (r) => records.push(r) });
let script: Script = () => undefined;
let server: Server;
let port = 0;

function upstream(body: string, run: Script): UpstreamResponse {
  void body;
  return { status: 200, headers: { 'content-length': String(Buffer.byteLength(body)), 'content-type': 'text/plain' }, stream: run, resume: () => undefined, discard: () => undefined, abort: () => undefined };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const ctx = {
      table: RoutingTable.empty(),
      conn: { listenerName: 'http', tls: false, serverName: undefined, principal: undefined, alpn: '', destinationPort: 0, remoteAddress: '127.0.0.1' },
      req,
      res,
      method: 'GET',
      authority: 'svc.local',
      path: '/',
      scheme: 'http',
      trace: undefined,
      spanId: '0000000000000001',
      requestId: 'r',
      grpc: false,
      started: performance.now(),
      startTime: new Date().toISOString(),
      inbound: false,
      operation: undefined,
      destinationPrincipal: '',
      mutualTls: false,
      peerWorkload: '',
      status: 0,
      flags: '-',
      cluster: 'outbound|80||svc.test.svc.cluster.local',
      upstream: '127.0.0.1:1',
      attempts: 1,
      requestBytes: 0,
      responseBytes: 0,
    };
    const relay = (proxy as unknown as { relay: (c: unknown, d: unknown, up: UpstreamResponse, flag: string) => Promise<void> }).relay.bind(proxy);
    void relay(ctx, { responseOps: [], extraResponseHeaders: {} }, upstream('hello world', script), '-');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function get(): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
    });
    req.on('error', () => resolve({ status: 0, body: '', complete: false }));
    req.end();
  });
}

async function lastRecord(n: number): Promise<ProxyRequestRecord> {
  for (let i = 0; i < 100 && records.length < n; i++) await new Promise((r) => setTimeout(r, 10));
  return records.at(-1) as ProxyRequestRecord;
}

describe('relaying an upstream body', () => {
  it('ignores an error that arrives after the body ended (no UPE on a finished 200)', async () => {
    script = (sink) => {
      sink.data(Buffer.from('hello world'));
      sink.end({});
      sink.error(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    };
    const n = records.length + 1;
    expect(await get()).toEqual({ status: 200, body: 'hello world', complete: true });
    const r = await lastRecord(n);
    expect(records.length).toBe(n);
    expect(r.responseCode).toBe(200);
    expect(r.responseFlags).toBe('-');
  });

  it('finishes normally when the error comes after every announced byte but before the end', async () => {
    script = (sink) => {
      sink.data(Buffer.from('hello world'));
      sink.error(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    };
    const n = records.length + 1;
    expect(await get()).toEqual({ status: 200, body: 'hello world', complete: true });
    expect((await lastRecord(n)).responseFlags).toBe('-');
  });

  it('flags UPE and cuts the response when the body breaks off', async () => {
    script = (sink) => {
      sink.data(Buffer.from('hello'));
      setTimeout(() => sink.error(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), 5);
    };
    const n = records.length + 1;
    const a = await get();
    expect(a.complete).toBe(false);
    expect((await lastRecord(n)).responseFlags).toBe('UPE');
  });
});

describe('telemetry helpers', () => {
  it('knows a complete body by its content-length', () => {
    expect(bodyComplete({ 'content-length': '5' }, 5)).toBe(true);
    expect(bodyComplete({ 'content-length': '5' }, 4)).toBe(false);
    expect(bodyComplete({}, 0)).toBe(false);
  });

  it('finds the destination service of an inbound request from the route decorator or the SNI', () => {
    expect(serviceOfInbound('hello.demo.svc.cluster.local:80/*', undefined)).toBe('hello.demo.svc.cluster.local');
    expect(serviceOfInbound(undefined, 'outbound_.80_.v1_.hello.demo.svc.cluster.local')).toBe('hello.demo.svc.cluster.local');
    expect(serviceOfInbound(undefined, 'outbound_.80_._.hello.demo.svc.cluster.local')).toBe('hello.demo.svc.cluster.local');
    expect(serviceOfInbound(undefined, 'example.com')).toBe('');
  });

  it('splits a SPIFFE id into namespace and service account', () => {
    expect(spiffeParts('spiffe://cluster.local/ns/demo/sa/hello')).toEqual({ namespace: 'demo', serviceAccount: 'hello' });
    expect(spiffeParts(undefined)).toEqual({ namespace: '', serviceAccount: '' });
  });
});
