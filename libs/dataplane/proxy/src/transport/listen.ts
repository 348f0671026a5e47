import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { Server as TlsServer, type SecureContext, type TLSSocket } from 'node:tls';
import { effectiveDestinationPort, selectFilterChain, type FilterChain, type Listener } from '../domain';
import { sansOf, spiffeIdOf, type ResolvedTls } from './tls-material';

/** What a connection is, as the filter chain match and the telemetry see it. */
export interface ConnInfo {
  readonly listenerName: string;
  readonly tls: boolean;
  readonly serverName: string | undefined;
  /** The verified peer SPIFFE id (mTLS), else undefined. */
  readonly principal: string | undefined;
  readonly localPort: number;
  /** The port filter chains are matched with (see effectiveDestinationPort). */
  readonly destinationPort: number;
  readonly remoteAddress: string;
  readonly alpn: string;
}

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;
export type DownstreamResponse = ServerResponse | Http2ServerResponse;

export interface ListenerHooks {
  /** The listener's config in the current table (undefined once removed). */
  listener(): Listener | undefined;
  /** TLS material and its cached secure context for a TLS chain, or undefined while its secrets are missing. */
  secureContext(chain: FilterChain): { readonly context: SecureContext; readonly material: ResolvedTls } | undefined;
  onRequest(req: DownstreamRequest, res: DownstreamResponse, conn: ConnInfo): void;
  onTcp(socket: Socket, conn: ConnInfo, chain: FilterChain): void;
  onConnectionRefused(reason: string, conn: Partial<ConnInfo>): void;
}

const connInfo = new WeakMap<object, ConnInfo>();
const sessionInfo = new WeakMap<object, ConnInfo>();
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const HTTP1_START = /^(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|CONNECT|TRACE) /;

/** The ConnInfo of the socket under a request. */
export function connectionOf(req: DownstreamRequest): ConnInfo | undefined {
  const s = (req as IncomingMessage).socket as object | undefined;
  return s === undefined ? undefined : connInfo.get(s);
}

/**
 * One bound listener. Each connection is sniffed: a first byte 0x16 is a TLS ClientHello (then
 * ALPN picks HTTP/2 or HTTP/1.1), the HTTP/2 preface is h2c, anything else HTTP/1.1. The filter
 * chain is chosen per connection from the *current* listener config, so a reconfiguration
 * applies to new connections while open ones finish on what they started with. A TLS chain
 * that requires a client certificate closes connections whose certificate does not verify
 * against the trust bundle or whose SAN is not accepted; with no plaintext chain (STRICT),
 * plaintext connections are closed.
 */
export class ListenerServer {
  private readonly net: NetServer;
  private readonly http1: HttpServer;
  private readonly h2: Http2Server;
  private tls: TlsServer | undefined;
  private tlsDefaultId: unknown;
  private pendingH2: ConnInfo | undefined;
  private readonly sockets = new Set<Socket>();
  boundPort = 0;

  constructor(
    readonly name: string,
    private readonly hooks: ListenerHooks,
  ) {
    const onRequest = (req: DownstreamRequest, res: DownstreamResponse): void => {
      const info = connectionOf(req) ?? sessionInfo.get((req as Http2ServerRequest).stream?.session as object);
      if (info === undefined) {
        res.statusCode = 500;
        res.end();
        return;
      }
      hooks.onRequest(req, res, info);
    };
    this.http1 = createHttpServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, onRequest);
    this.h2 = createH2Server({}, onRequest);
    // The HTTP/2 session is created synchronously inside the 'connection' listener.
    this.h2.on('session', (session) => {
      if (this.pendingH2 !== undefined) sessionInfo.set(session, this.pendingH2);
    });
    this.net = createNetServer({ noDelay: true }, (socket) => this.onConnection(socket));
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.net.once('error', reject);
      this.net.listen({ host, port }, () => {
        this.net.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.net.address() as AddressInfo).port;
    return this.boundPort;
  }

  /** Stops accepting; open connections finish (HTTP/1.1 keep-alive sockets are closed when idle). */
  async close(graceMs = 5_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.net.close(() => resolve()));
    this.http1.closeIdleConnections();
    const force = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    force.unref();
    const idle = setInterval(() => this.http1.closeIdleConnections(), 100);
    idle.unref();
    await closed;
    clearTimeout(force);
    clearInterval(idle);
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const first = (): void => {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) {
        socket.once('readable', first);
        return;
      }
      socket.unshift(chunk);
      this.dispatch(socket, chunk);
    };
    first();
  }

  private baseInfo(socket: Socket): { localPort: number; remoteAddress: string } {
    return { localPort: socket.localPort ?? 0, remoteAddress: (socket.remoteAddress ?? '').replace(/^::ffff:/, '') };
  }

  private dispatch(socket: Socket, head: Buffer): void {
    const listener = this.hooks.listener();
    if (listener === undefined) {
      socket.destroy();
      return;
    }
    const base = this.baseInfo(socket);
    if (head[0] === 0x16) {
      if (!listener.anyTls) {
        this.hooks.onConnectionRefused('tls_not_configured', { listenerName: this.name, ...base });
        socket.destroy();
        return;
      }
      const server = this.tlsServer(listener);
      if (server === undefined) {
        this.hooks.onConnectionRefused('tls_secrets_missing', { listenerName: this.name, ...base });
        socket.destroy();
        return;
      }
      server.emit('connection', socket);
      return;
    }
    const destinationPort = effectiveDestinationPort(listener, base.localPort);
    const isH2 = head.length >= 4 && head.subarray(0, Math.min(head.length, H2_PREFACE.length)).equals(H2_PREFACE.subarray(0, Math.min(head.length, H2_PREFACE.length)));
    const info: ConnInfo = { listenerName: this.name, tls: false, serverName: undefined, principal: undefined, alpn: '', destinationPort, ...base };
    if (listener.useOriginalDst && (isH2 || HTTP1_START.test(head.toString('latin1', 0, Math.min(head.length, 8))))) {
      // No original destination without iptables: HTTP is routed per request by its authority's port.
      connInfo.set(socket, info);
      if (isH2) this.h2Connection(socket, info);
      else this.http1.emit('connection', socket);
      return;
    }
    const chain = selectFilterChain(listener, { tls: false, serverName: undefined, destinationPort, alpn: [] });
    if (chain === undefined) {
      // STRICT mTLS: no plaintext chain.
      this.hooks.onConnectionRefused('no_filter_chain', { listenerName: this.name, tls: false, ...base });
      socket.destroy();
      return;
    }
    connInfo.set(socket, info);
    if (chain.terminal.kind === 'tcp') {
      this.hooks.onTcp(socket, info, chain);
      return;
    }
    if (isH2) this.h2Connection(socket, info);
    else this.http1.emit('connection', socket);
  }

  private h2Connection(socket: Socket | TLSSocket, info: ConnInfo): void {
    this.pendingH2 = info;
    try {
      this.h2.emit('connection', socket);
    } finally {
      this.pendingH2 = undefined;
    }
  }

  private defaultTlsChain(listener: Listener): FilterChain | undefined {
    const tlsChains = [...listener.filterChains, ...(listener.defaultChain ? [listener.defaultChain] : [])].filter((c) => c.tls !== undefined);
    return tlsChains.find((c) => c.match.serverNames.length === 0) ?? tlsChains[0];
  }

  private tlsServer(listener: Listener): TlsServer | undefined {
    const chain = this.defaultTlsChain(listener);
    if (chain === undefined) return undefined;
    const resolved = this.hooks.secureContext(chain);
    if (resolved === undefined) return undefined;
    const ctx = resolved.context;
    const requestCert = [...listener.filterChains, ...(listener.defaultChain ? [listener.defaultChain] : [])].some((c) => c.tls?.requireClientCertificate === true);
    // Rotation or a change of client-certificate policy: new handshakes go to a new server;
    // established connections are unaffected.
    if (this.tls !== undefined && (this.tlsDefaultId !== ctx || (this.tls as TlsServer & { requestCert?: boolean }).requestCert !== requestCert)) this.tls = undefined;
    if (this.tls === undefined) {
      // The default credentials (no SNI, or an SNI no chain claims) must be given as material:
      // tls.Server builds its own context from the options.
      this.tls = new TlsServer({
        key: resolved.material.key,
        cert: resolved.material.cert,
        ca: resolved.material.ca,
        minVersion: 'TLSv1.2',
        requestCert,
        rejectUnauthorized: false,
        ALPNProtocols: ['h2', 'http/1.1'],
        SNICallback: (servername, cb) => {
          const l = this.hooks.listener();
          const c = l === undefined ? undefined : selectFilterChain(l, { tls: true, serverName: servername, destinationPort: effectiveDestinationPort(l, 0), alpn: [] });
          cb(null, c === undefined ? undefined : this.hooks.secureContext(c)?.context);
        },
      });
      (this.tls as TlsServer & { requestCert?: boolean }).requestCert = requestCert;
      this.tlsDefaultId = ctx;
      this.tls.on('secureConnection', (s: TLSSocket) => this.onSecure(s));
      this.tls.on('tlsClientError', (_err, s) => {
        this.hooks.onConnectionRefused('tls_handshake_failed', { listenerName: this.name, tls: true, ...this.baseInfo(s as unknown as Socket) });
      });
    }
    return this.tls;
  }

  private onSecure(s: TLSSocket): void {
    const listener = this.hooks.listener();
    const base = this.baseInfo(s as unknown as Socket);
    const serverName = typeof s.servername === 'string' ? s.servername : undefined;
    const alpn = typeof s.alpnProtocol === 'string' ? s.alpnProtocol : '';
    const destinationPort = listener === undefined ? base.localPort : effectiveDestinationPort(listener, base.localPort);
    const chain = listener === undefined ? undefined : selectFilterChain(listener, { tls: true, serverName, destinationPort, alpn: alpn ? [alpn] : [] });
    if (chain === undefined || chain.tls === undefined) {
      this.hooks.onConnectionRefused('no_filter_chain', { listenerName: this.name, tls: true, ...base });
      s.destroy();
      return;
    }
    const peer = s.getPeerCertificate();
    const hasPeer = peer !== undefined && Object.keys(peer).length > 0;
    if (chain.tls.requireClientCertificate && (!hasPeer || !s.authorized)) {
      this.hooks.onConnectionRefused(hasPeer ? 'peer_certificate_untrusted' : 'peer_certificate_missing', { listenerName: this.name, tls: true, ...base });
      s.destroy();
      return;
    }
    if (hasPeer && s.authorized && chain.tls.sanMatchers.length > 0) {
      const sans = sansOf(peer);
      if (!sans.some((san) => chain.tls?.sanMatchers.some((m) => m(san)))) {
        this.hooks.onConnectionRefused('peer_san_mismatch', { listenerName: this.name, tls: true, ...base });
        s.destroy();
        return;
      }
    }
    const info: ConnInfo = { listenerName: this.name, tls: true, serverName, principal: hasPeer && s.authorized ? spiffeIdOf(peer) : undefined, alpn, destinationPort, ...base };
    connInfo.set(s, info);
    this.sockets.add(s as unknown as Socket);
    s.once('close', () => this.sockets.delete(s as unknown as Socket));
    if (chain.terminal.kind === 'tcp') this.hooks.onTcp(s as unknown as Socket, info, chain);
    else if (alpn === 'h2') this.h2Connection(s, info);
    else this.http1.emit('connection', s);
  }
}
