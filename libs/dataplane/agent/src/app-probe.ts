/**
 * The app probe server (Istio's pilot-agent status port 15020): the injector rewrites each app
 * container's httpGet/tcpSocket probe to `GET :15020/app-health/<container>/<livez|readyz|startupz>`
 * (so the kubelet, which has no mesh identity, is not refused by STRICT mTLS) and hands the
 * original probes over as ISTIO_KUBE_APP_PROBERS; this server runs the original probe against the
 * app for each such request and answers with its outcome.
 */
import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { AviaryError } from '@aviary/errors';

export interface HttpGetProber {
  readonly kind: 'httpGet';
  readonly port: number;
  readonly path: string;
  readonly host: string | undefined;
  readonly scheme: 'HTTP' | 'HTTPS';
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  readonly timeoutMs: number;
}

export interface TcpSocketProber {
  readonly kind: 'tcpSocket';
  readonly port: number;
  readonly host: string | undefined;
  readonly timeoutMs: number;
}

export type AppProber = HttpGetProber | TcpSocketProber;

/** The kubelet's default probe timeout (1 s) when the probe sets none. */
const DEFAULT_TIMEOUT_S = 1;
const MAX_PROBERS = 256;

function invalid(path: string, reason: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'AGENT_APP_PROBERS_INVALID', `ISTIO_KUBE_APP_PROBERS${path}: ${reason}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function portOf(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw invalid(at, 'must be a port number 1-65535 (the injector resolves named ports)');
  return v;
}

function hostOf(v: unknown, at: string): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9.:-]{1,253}$/.test(v)) throw invalid(at, 'must be a host name or IP address');
  return v;
}

/**
 * Parses ISTIO_KUBE_APP_PROBERS: `{"/app-health/<container>/<kind>": {"httpGet": {...}} | {"tcpSocket": {...}}, "timeoutSeconds"?}`.
 * Throws AGENT_APP_PROBERS_INVALID naming the entry and field.
 */
export function parseAppProbers(json: string): ReadonlyMap<string, AppProber> {
  const out = new Map<string, AppProber>();
  if (json.trim() === '') return out;
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw invalid('', `not JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw invalid('', 'must be a JSON object keyed by /app-health/ paths');
  const entries = Object.entries(doc);
  if (entries.length > MAX_PROBERS) throw invalid('', `more than ${MAX_PROBERS} probes`);
  for (const [path, entry] of entries) {
    const at = `[${JSON.stringify(path)}]`;
    if (!/^\/app-health\/[a-z0-9]([-a-z0-9]*[a-z0-9])?\/(livez|readyz|startupz)$/.test(path)) throw invalid(at, 'the key must be /app-health/<container>/<livez|readyz|startupz>');
    if (!isObject(entry)) throw invalid(at, 'must be an object with httpGet or tcpSocket');
    const t = entry['timeoutSeconds'] ?? DEFAULT_TIMEOUT_S;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 3600) throw invalid(`${at}.timeoutSeconds`, 'must be an integer 1-3600');
    const timeoutMs = t * 1000;
    const get = entry['httpGet'];
    const tcp = entry['tcpSocket'];
    if ((get === undefined) === (tcp === undefined)) throw invalid(at, 'must have exactly one of httpGet, tcpSocket');
    if (get !== undefined) {
      if (!isObject(get)) throw invalid(`${at}.httpGet`, 'must be an object');
      const p = get['path'] ?? '/';
      if (typeof p !== 'string' || !p.startsWith('/') || p.length > 2048 || /[\s]/.test(p)) throw invalid(`${at}.httpGet.path`, 'must be an absolute path without spaces');
      const scheme = typeof get['scheme'] === 'string' ? get['scheme'].toUpperCase() : 'HTTP';
      if (scheme !== 'HTTP' && scheme !== 'HTTPS') throw invalid(`${at}.httpGet.scheme`, 'must be HTTP or HTTPS');
      const rawHeaders = get['httpHeaders'] ?? [];
      if (!Array.isArray(rawHeaders) || rawHeaders.length > 64) throw invalid(`${at}.httpGet.httpHeaders`, 'must be a list (at most 64)');
      const headers = rawHeaders.map((h: unknown, i) => {
        if (!isObject(h) || typeof h['name'] !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h['name']) || typeof h['value'] !== 'string' || /[\r\n]/.test(h['value'])) {
          throw invalid(`${at}.httpGet.httpHeaders[${i}]`, 'must be {name, value} with a valid header name and a one-line value');
        }
        return { name: h['name'], value: h['value'] };
      });
      out.set(path, { kind: 'httpGet', port: portOf(get['port'], `${at}.httpGet.port`), path: p, host: hostOf(get['host'], `${at}.httpGet.host`), scheme, headers, timeoutMs });
    } else {
      if (!isObject(tcp)) throw invalid(`${at}.tcpSocket`, 'must be an object');
      out.set(path, { kind: 'tcpSocket', port: portOf(tcp['port'], `${at}.tcpSocket.port`), host: hostOf(tcp['host'], `${at}.tcpSocket.host`), timeoutMs });
    }
  }
  return out;
}

/** The outcome of one probe: the app's HTTP status (httpGet), 200 (tcpSocket connected), or 500 with the reason. */
export interface ProbeResult {
  readonly status: number;
  readonly detail: string;
}

/** Istio's inbound passthrough source: the capture rules let connections from it to the pod go straight to the app. */
export const PROBE_SOURCE_ADDRESS = '127.0.0.6';

/**
 * Runs one probe as the kubelet would: httpGet follows no redirect and skips certificate checks
 * (HTTPS), tcpSocket only connects. `defaultHost` is the pod IP (the kubelet probes the pod IP).
 * With `sourceAddress` (127.0.0.6 under iptables capture, as Istio's prober) a probe of the pod
 * IP leaves from that address: the proxy's own uid calling its pod is otherwise redirected into
 * the inbound listener, where STRICT mTLS would refuse the plaintext probe.
 */
export function runProbe(prober: AppProber, defaultHost: string, sourceAddress?: string): Promise<ProbeResult> {
  const host = prober.host ?? defaultHost;
  const localAddress = sourceAddress !== undefined && host === defaultHost ? sourceAddress : undefined;
  if (prober.kind === 'tcpSocket') {
    return new Promise((resolve) => {
      const socket = connect({ host, port: prober.port, timeout: prober.timeoutMs, ...(localAddress !== undefined && { localAddress }) });
      const done = (r: ProbeResult): void => {
        socket.destroy();
        resolve(r);
      };
      socket.once('connect', () => done({ status: 200, detail: `connected to ${host}:${prober.port}` }));
      socket.once('timeout', () => done({ status: 500, detail: `no connection to ${host}:${prober.port} within ${prober.timeoutMs} ms` }));
      socket.once('error', (err) => done({ status: 500, detail: `${host}:${prober.port}: ${err.message}` }));
    });
  }
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/aviary', accept: '*/*' };
    for (const h of prober.headers) headers[h.name.toLowerCase()] = h.value;
    const options = { host, port: prober.port, path: prober.path, method: 'GET', headers, timeout: prober.timeoutMs, rejectUnauthorized: false, agent: false as const, ...(localAddress !== undefined && { localAddress }) };
    const req = prober.scheme === 'HTTPS' ? httpsRequest(options) : httpRequest(options);
    let settled = false;
    const done = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      resolve(r);
    };
    req.once('response', (res: IncomingMessage) => {
      res.resume();
      done({ status: res.statusCode ?? 500, detail: `${prober.scheme} GET ${prober.path} on ${host}:${prober.port}: ${res.statusCode}` });
    });
    req.once('timeout', () => done({ status: 500, detail: `${prober.scheme} GET ${prober.path} on ${host}:${prober.port}: no answer within ${prober.timeoutMs} ms` }));
    req.once('error', (err) => done({ status: 500, detail: `${prober.scheme} GET ${prober.path} on ${host}:${prober.port}: ${err.message}` }));
    req.end();
  });
}

export interface AppProbeServer {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Serves `GET /app-health/<container>/<kind>` on `host:port`: runs the matching probe and answers
 * with the app's status (2xx/3xx pass, as for the kubelet) or 500; anything else is 404.
 */
export async function startAppProbeServer(opts: {
  readonly host: string;
  readonly port: number;
  readonly probers: ReadonlyMap<string, AppProber>;
  /** Where probes without a host go: the pod IP. */
  readonly podIp: string;
  /** Source address of probes of the pod IP (see `runProbe`): 127.0.0.6 under iptables capture. */
  readonly sourceAddress?: string;
}): Promise<AppProbeServer> {
  const server: Server = createServer((req, res) => {
    req.resume();
    const path = (req.url ?? '').split('?')[0] ?? '';
    const prober = opts.probers.get(path);
    if (prober === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(prober === undefined ? 404 : 405, { 'content-type': 'text/plain' }).end(prober === undefined ? 'no such app probe\n' : 'GET only\n');
      return;
    }
    void runProbe(prober, opts.podIp, opts.sourceAddress).then((r) => {
      // A 1xx or an out-of-range status from the app is a failure, as for the kubelet.
      const status = r.status >= 200 && r.status < 600 ? r.status : 500;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`${r.detail}\n`);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
