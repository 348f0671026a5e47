import { connect as h2connect, constants as h2c, type ClientHttp2Session, type IncomingHttpHeaders as H2Headers } from 'node:http2';
import type { Readable } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { Cluster, Endpoint } from '../domain';
import { sansOf, type ResolvedTls } from './tls-material';

export type OutgoingHeaders = Record<string, string | string[]>;

/** Where a response body goes; `data` returns false to ask for a pause (then call `resume`). */
export interface BodySink {
  data(chunk: Buffer): boolean;
  end(trailers: Record<string, string>): void;
  error(err: Error): void;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The upstream's SPIFFE id, verified in the TLS handshake (originated mTLS only). */
  readonly peerPrincipal?: string;
  /** Starts delivering the body (chunks that arrived before are delivered first). */
  stream(sink: BodySink): void;
  resume(): void;
  /** Drops the body; the connection is reused when the body completes. */
  discard(): void;
  /** Resets the upstream request (downstream went away, timeout). */
  abort(): void;
}

/** Lets the caller abort an attempt before its response headers arrive. */
export interface AttemptHandle {
  abort?: (failure: UpstreamFailure) => void;
}

export type UpstreamFailure = 'connect-failure' | 'reset' | 'timeout';

export class UpstreamError extends Error {
  constructor(
    readonly failure: UpstreamFailure,
    message: string,
  ) {
    super(message);
  }
}

const connectCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED', 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_PEER_SAN_MISMATCH']);

export function classify(err: unknown, aborted: boolean): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as { code?: string; message?: string };
  if (aborted || e.code === 'UND_ERR_ABORTED' || e.code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamError('timeout', 'upstream request timeout');
  if (e.code !== undefined && (connectCodes.has(e.code) || e.code.startsWith('ERR_SSL') || e.code.startsWith('ERR_TLS'))) return new UpstreamError('connect-failure', `${e.code}: ${e.message ?? ''}`);
  return new UpstreamError('reset', `${e.code ?? 'error'}: ${e.message ?? ''}`);
}

function trailersOf(t: Record<string, string | string[] | undefined> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (t === null || t === undefined) return out;
  for (const k of Object.keys(t)) {
    const v = t[k];
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** checkServerIdentity for SPIFFE certificates: the peer must carry one of the accepted SANs. */
function sanCheck(cluster: Cluster): ((host: string, cert: PeerCertificate) => Error | undefined) | undefined {
  const matchers = cluster.tls?.sanMatchers ?? [];
  if (matchers.length === 0) return () => undefined; // any certificate the roots signed
  return (_host, cert) => {
    const sans = sansOf(cert);
    if (sans.some((s) => matchers.some((m) => m(s)))) return undefined;
    return Object.assign(new Error(`peer SANs [${sans.join(', ')}] match none of the cluster's`), { code: 'ERR_PEER_SAN_MISMATCH' });
  };
}

function peerField(peer: string | undefined): { peerPrincipal?: string } {
  return peer === undefined ? {} : { peerPrincipal: peer };
}

interface H2Entry {
  session: ClientHttp2Session;
}

/**
 * Connection pools to upstream endpoints: one undici Pool per (endpoint, TLS material,
 * pool settings) for HTTP/1.1, one node:http2 session per endpoint for HTTP/2 clusters (gRPC,
 * with trailers). Pools no longer referenced after a reconfiguration are closed once their
 * in-flight requests finish.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  private readonly h2 = new Map<string, H2Entry>();
  /** The SPIFFE id each TLS pool's server presented (all of a pool's connections go to one endpoint). */
  private readonly peers = new Map<string, string>();

  /** checkServerIdentity that verifies the SANs and remembers the server's SPIFFE id for telemetry. */
  private verifier(cluster: Cluster, key: string): (host: string, cert: PeerCertificate) => Error | undefined {
    const check = sanCheck(cluster);
    return (host, cert) => {
      const err = check?.(host, cert);
      if (err === undefined) {
        const spiffe = sansOf(cert).find((s) => s.startsWith('spiffe://'));
        if (spiffe !== undefined) this.peers.set(key, spiffe);
      }
      return err;
    };
  }

  /** The SPIFFE id last verified for the pool of (cluster, endpoint, TLS material). */
  peerOf(cluster: Cluster, ep: Endpoint, tls: ResolvedTls | undefined): string | undefined {
    return tls === undefined ? undefined : this.peers.get(this.keyOf(cluster, ep, tls));
  }

  private keyOf(cluster: Cluster, ep: Endpoint, tls: ResolvedTls | undefined): string {
    return `${ep.key}|${tls?.id ?? 'plain'}|${cluster.connectTimeoutMs}|${cluster.limits.maxConnections}|${cluster.tls?.sni ?? ''}|${cluster.name}`;
  }

  private pool(cluster: Cluster, ep: Endpoint, tls: ResolvedTls | undefined, endpointCount: number): Pool {
    const key = this.keyOf(cluster, ep, tls);
    let p = this.pools.get(key);
    if (p === undefined) {
      const connections = Math.max(1, Math.ceil(cluster.limits.maxConnections / Math.max(1, endpointCount)));
      const origin = `${tls === undefined ? 'http' : 'https'}://${ep.key}`;
      p = new Pool(origin, {
        connections: Math.min(connections, 256),
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: {
          timeout: cluster.connectTimeoutMs,
          noDelay: true,
          ...(tls === undefined
            ? {}
            : {
                ca: tls.ca,
                cert: tls.cert,
                key: tls.key,
                servername: cluster.tls?.sni ?? (/^[\d.]+$|:/.test(ep.host) ? undefined : ep.host),
                rejectUnauthorized: true,
                checkServerIdentity: this.verifier(cluster, key),
              }),
        },
      });
      this.pools.set(key, p);
    }
    return p;
  }

  /** Sends one request; rejects with UpstreamError. `handle.abort` cancels it before its headers (per-try timeout, client gone). */
  request(
    cluster: Cluster,
    ep: Endpoint,
    tls: ResolvedTls | undefined,
    endpointCount: number,
    req: { method: string; path: string; headers: OutgoingHeaders; body: Buffer | Readable | null },
    handle: AttemptHandle,
  ): Promise<UpstreamResponse> {
    if (cluster.http2) return this.requestH2(cluster, ep, tls, req, handle);
    const pool = this.pool(cluster, ep, tls, endpointCount);
    return new Promise<UpstreamResponse>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let failure: UpstreamFailure | undefined;
      let sink: BodySink | undefined;
      let discarding = false;
      let pending: Buffer[] | undefined;
      let ended: Record<string, string> | undefined;
      let failed: Error | undefined;
      let started = false;
      handle.abort = (f) => {
        failure = f;
        controller?.abort(new UpstreamError(f, f === 'timeout' ? 'upstream request timeout' : 'upstream request cancelled'));
      };
      const response = (status: number, headers: Record<string, string | string[] | undefined>): UpstreamResponse => ({
        status,
        headers,
        ...peerField(this.peerOf(cluster, ep, tls)),
        stream: (s) => {
          sink = s;
          if (pending !== undefined) {
            const chunks = pending;
            pending = undefined;
            for (const c of chunks) s.data(c);
          }
          // A body that completed wins over an error that came after it (the connection
          // failing once the response was in): the request itself succeeded.
          if (ended !== undefined) s.end(ended);
          else if (failed !== undefined) s.error(failed);
          else controller?.resume();
        },
        resume: () => controller?.resume(),
        discard: () => {
          discarding = true;
          pending = undefined;
          controller?.resume();
        },
        abort: () => controller?.abort(new UpstreamError('reset', 'upstream request cancelled')),
      });
      pool.dispatch(
        { method: req.method as Dispatcher.HttpMethod, path: req.path, headers: req.headers, body: req.body },
        {
          onRequestStart: (c) => {
            controller = c;
            if (failure !== undefined) c.abort(new UpstreamError(failure, 'upstream request cancelled'));
          },
          onResponseStart: (c, statusCode, headers) => {
            started = true;
            c.pause(); // until stream() or discard()
            resolve(response(statusCode, headers as Record<string, string | string[] | undefined>));
          },
          onResponseData: (c, chunk) => {
            if (discarding) return;
            if (sink === undefined) {
              (pending ??= []).push(chunk);
              c.pause();
            } else if (!sink.data(chunk)) c.pause();
          },
          onResponseEnd: (_c, trailers) => {
            if (discarding || ended !== undefined) return;
            const t = trailersOf(trailers as Record<string, string | string[] | undefined>);
            ended = t;
            if (sink !== undefined) sink.end(t);
          },
          onResponseError: (_c, err) => {
            if (!started) {
              reject(classify(err, failure === 'timeout'));
              return;
            }
            // Late: the body already completed (an error on the connection afterwards is not this request's).
            if (discarding || ended !== undefined || failed !== undefined) return;
            if (sink === undefined) failed = err;
            else sink.error(err);
          },
        },
      );
    });
  }

  private session(cluster: Cluster, ep: Endpoint, tls: ResolvedTls | undefined): ClientHttp2Session {
    const key = this.keyOf(cluster, ep, tls);
    const cur = this.h2.get(key);
    if (cur !== undefined && !cur.session.closed && !cur.session.destroyed) return cur.session;
    const authority = `${tls === undefined ? 'http' : 'https'}://${ep.key}`;
    const session = h2connect(authority, tls === undefined ? {} : { ca: tls.ca, cert: tls.cert, key: tls.key, servername: cluster.tls?.sni, checkServerIdentity: this.verifier(cluster, key), ALPNProtocols: ['h2'] });
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.h2.get(key)?.session === session) this.h2.delete(key);
    });
    session.setTimeout(cluster.connectTimeoutMs, () => {
      if (!session.connecting) return;
      session.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    });
    this.h2.set(key, { session });
    return session;
  }

  private requestH2(cluster: Cluster, ep: Endpoint, tls: ResolvedTls | undefined, req: { method: string; path: string; headers: OutgoingHeaders; body: Buffer | Readable | null }, handle: AttemptHandle): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      let session: ClientHttp2Session;
      try {
        session = this.session(cluster, ep, tls);
      } catch (err) {
        reject(classify(err, false));
        return;
      }
      const connecting = session.connecting;
      const { host, ...rest } = req.headers;
      const headers: Record<string, string | string[]> = { ...rest, [h2c.HTTP2_HEADER_METHOD]: req.method, [h2c.HTTP2_HEADER_PATH]: req.path, [h2c.HTTP2_HEADER_AUTHORITY]: (Array.isArray(host) ? host[0] : host) ?? ep.key };
      delete headers['connection'];
      delete headers['keep-alive'];
      delete headers['transfer-encoding'];
      delete headers['upgrade'];
      const stream = session.request(headers, { endStream: req.body === null });
      let failure: UpstreamFailure | undefined;
      handle.abort = (f) => {
        failure = f;
        stream.close(h2c.NGHTTP2_CANCEL);
      };
      let trailers: Record<string, string> = {};
      stream.on('trailers', (t: H2Headers) => {
        trailers = Object.fromEntries(Object.entries(t).filter(([k]) => !k.startsWith(':')).map(([k, v]) => [k, String(v)]));
      });
      let started = false;
      stream.once('response', (h: H2Headers) => {
        started = true;
        stream.pause();
        const status = Number(h[':status']);
        const out: Record<string, string | string[] | undefined> = {};
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) out[k] = v;
        resolve({
          status,
          headers: out,
          ...peerField(this.peerOf(cluster, ep, tls)),
          stream: (sink) => {
            // Exactly one of end / error reaches the sink: an error or close after the end is late.
            let over = false;
            const fail = (e: Error): void => {
              if (over) return;
              over = true;
              sink.error(e);
            };
            stream.on('data', (c: Buffer) => {
              if (!sink.data(c)) stream.pause();
            });
            stream.once('end', () => {
              if (over) return;
              over = true;
              sink.end(trailers);
            });
            stream.on('error', fail);
            stream.once('close', () => {
              if (!stream.readableEnded) fail(new Error('upstream stream reset'));
            });
            stream.resume();
          },
          resume: () => stream.resume(),
          discard: () => stream.resume(),
          abort: () => stream.close(h2c.NGHTTP2_CANCEL),
        });
      });
      const fail = (err: Error & { code?: string }): void => {
        if (started) return;
        reject(classify(connecting && session.connecting ? Object.assign(err, { code: err.code ?? 'ECONNREFUSED' }) : err, failure === 'timeout'));
      };
      stream.once('error', fail);
      stream.once('close', () => fail(Object.assign(new Error('stream closed before response'), { code: failure === 'timeout' ? 'UND_ERR_ABORTED' : 'ECONNRESET' })));
      if (req.body instanceof Buffer) stream.end(req.body);
      else if (req.body !== null) (req.body as Readable).pipe(stream);
    });
  }

  /** Closes pools whose key is not in `keep` (after their in-flight requests). */
  retain(keep: (clusterName: string) => boolean): void {
    for (const [key, pool] of this.pools) {
      const clusterName = key.slice(key.lastIndexOf('|') + 1);
      if (!keep(clusterName)) {
        this.pools.delete(key);
        this.peers.delete(key);
        void pool.close().catch(() => undefined);
      }
    }
  }

  /** Closes pools and HTTP/2 sessions built with TLS material that is no longer current (after a rotation), once idle. */
  retireTls(isCurrent: (key: string) => boolean): void {
    for (const [key, pool] of this.pools) {
      if (!isCurrent(key)) {
        this.pools.delete(key);
        this.peers.delete(key);
        void pool.close().catch(() => undefined);
      }
    }
    for (const [key, entry] of this.h2) {
      if (!isCurrent(key)) {
        this.h2.delete(key);
        entry.session.close();
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
    for (const { session } of this.h2.values()) session.close();
    this.pools.clear();
    this.h2.clear();
    this.peers.clear();
  }
}
