import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { parseAppProbers, PROBE_SOURCE_ADDRESS, runProbe, startAppProbeServer, type AppProbeServer } from './app-probe';

/** A stand-in app: /healthz 200 (echoing the probe's header), /sick 503, /slow never answers. */
let app: Server;
let appPort: number;
let tcp: TcpServer;
let tcpPort: number;
let closedPort: number;
let server: AppProbeServer;
const seen: Record<string, string | undefined>[] = [];

const listen = (s: Server | TcpServer): Promise<number> => new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));

beforeAll(async () => {
  app = createServer((req, res) => {
    seen.push({ url: req.url, probe: req.headers['x-probe'] as string | undefined, from: req.socket.remoteAddress });
    if (req.url === '/slow') return;
    res.writeHead(req.url === '/healthz' ? 200 : 503).end();
  });
  appPort = await listen(app);
  tcp = createTcpServer((s) => s.destroy());
  tcpPort = await listen(tcp);
  const gone = createTcpServer();
  closedPort = await listen(gone);
  await new Promise((r) => gone.close(r));
  const probers = parseAppProbers(
    JSON.stringify({
      '/app-health/web/readyz': { httpGet: { path: '/healthz', port: appPort, scheme: 'HTTP', httpHeaders: [{ name: 'X-Probe', value: 'ready' }] }, timeoutSeconds: 2 },
      '/app-health/web/livez': { httpGet: { path: '/sick', port: appPort } },
      '/app-health/web/startupz': { httpGet: { path: '/slow', port: appPort }, timeoutSeconds: 1 },
      '/app-health/db/readyz': { tcpSocket: { port: tcpPort } },
      '/app-health/db/livez': { tcpSocket: { port: closedPort } },
    }),
  );
  server = await startAppProbeServer({ host: '127.0.0.1', port: 0, probers, podIp: '127.0.0.1' });
});

afterAll(async () => {
  await server?.stop();
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
  await new Promise((r) => tcp?.close(r));
});

const probe = async (path: string): Promise<number> => (await fetch(`http://127.0.0.1:${server.port}${path}`)).status;

describe('app probe server (the injector\'s /app-health/ rewrites)', () => {
  it('runs the original httpGet probe against the app and answers with the app\'s status', async () => {
    expect(await probe('/app-health/web/readyz')).toBe(200);
    expect(seen.at(-1)).toMatchObject({ url: '/healthz', probe: 'ready' });
    expect(await probe('/app-health/web/livez')).toBe(503);
  });

  it('fails a probe the app does not answer within its timeoutSeconds', async () => {
    expect(await probe('/app-health/web/startupz')).toBe(500);
  });

  it('runs tcpSocket probes: connected is 200, refused is 500', async () => {
    expect(await probe('/app-health/db/readyz')).toBe(200);
    expect(await probe('/app-health/db/livez')).toBe(500);
  });

  it('answers 404 for paths that are no rewritten probe', async () => {
    expect(await probe('/app-health/other/readyz')).toBe(404);
    expect(await probe('/stats')).toBe(404);
  });
});

describe('probes under iptables capture', () => {
  it("leave from 127.0.0.6 (the capture rules' passthrough source), so STRICT inbound mTLS never sees them; other hosts keep the default source", async () => {
    const [prober] = parseAppProbers(JSON.stringify({ '/app-health/web/readyz': { httpGet: { path: '/healthz', port: appPort } } })).values();
    expect((await runProbe(prober!, '127.0.0.1', PROBE_SOURCE_ADDRESS)).status).toBe(200);
    expect(seen.at(-1)?.from).toBe('127.0.0.6');
    const [elsewhere] = parseAppProbers(JSON.stringify({ '/app-health/web/readyz': { httpGet: { host: '127.0.0.1', path: '/healthz', port: appPort } } })).values();
    expect((await runProbe(elsewhere!, '10.1.2.3', PROBE_SOURCE_ADDRESS)).status).toBe(200);
    expect(seen.at(-1)?.from).toBe('127.0.0.1');
  });
});

describe('parseAppProbers (ISTIO_KUBE_APP_PROBERS)', () => {
  const fails = (json: string): string => {
    try {
      parseAppProbers(json);
    } catch (err) {
      if (isAviaryError(err)) return `${err.code}: ${err.message}`;
      throw err;
    }
    return 'accepted';
  };

  it('takes what the injector writes; empty is no probes', () => {
    expect(parseAppProbers('').size).toBe(0);
    const p = parseAppProbers('{"/app-health/web/readyz":{"httpGet":{"path":"/h","port":8080,"scheme":"HTTPS"},"timeoutSeconds":3}}');
    expect(p.get('/app-health/web/readyz')).toEqual({ kind: 'httpGet', port: 8080, path: '/h', host: undefined, scheme: 'HTTPS', headers: [], timeoutMs: 3000 });
  });

  it('refuses bad entries, naming the entry and field', () => {
    expect(fails('{')).toMatch(/^AGENT_APP_PROBERS_INVALID: ISTIO_KUBE_APP_PROBERS: not JSON/);
    expect(fails('{"/metrics":{"httpGet":{"port":1}}}')).toMatch(/\["\/metrics"\]: the key must be/);
    expect(fails('{"/app-health/a/readyz":{"httpGet":{"port":"http"}}}')).toMatch(/httpGet\.port: must be a port number/);
    expect(fails('{"/app-health/a/readyz":{"httpGet":{"port":1},"tcpSocket":{"port":1}}}')).toMatch(/exactly one of httpGet, tcpSocket/);
    expect(fails('{"/app-health/a/readyz":{"httpGet":{"port":1,"httpHeaders":[{"name":"a","value":"x\\r\\ny: z"}]}}}')).toMatch(/httpHeaders\[0\]/);
    expect(fails('{"/app-health/a/readyz":{"tcpSocket":{"port":1},"timeoutSeconds":0}}')).toMatch(/timeoutSeconds: must be an integer/);
  });
});
