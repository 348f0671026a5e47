import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenSsl } from '@aviary/testing';
import { LocalMesh } from '../support/mesh';
import { AGENT_ADMINS, apply, get, PILOT, until } from '../support/demo';
import { firstPid } from '../support/faults';

/**
 * HTTPS ingress in local mode, through the launcher's ingress gateway (a real Envoy, connected to
 * pilot over mTLS so it is served credentials by SDS) with real TLS clients (openssl s_client,
 * Node's TLS): the demo's 8443 server with the credential the launcher stored through pilot's
 * credentials API (SIMPLE); a MUTUAL server that refuses a client without a certificate; an
 * httpsRedirect server; rotation: a replaced credential reaches new connections while an
 * established keep-alive connection keeps working; and a server naming a credential that does
 * not exist, which must not keep a restarted gateway from becoming Ready. The tests run in order
 * on one mesh.
 */

let mesh: LocalMesh;
const ssl = new OpenSsl();

beforeAll(async () => {
  mesh = await LocalMesh.start({ args: ['--demo', '--keep-going'] });
  ssl.ca();
}, 180_000);

afterAll(async () => {
  await mesh?.stop();
  ssl.cleanup();
});

const demoCa = (): string => join(mesh.stateDir, 'demo-ca.crt');

/** `openssl s_client` sending one HTTP/1.1 request; its combined output and exit status. */
function sClient(port: number, args: readonly string[]): { status: number; output: string } {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-verify_return_error', '-ign_eof', ...args], {
    input: 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly fingerprint: string;
  readonly socket: TLSSocket;
}

/** One HTTPS GET to 127.0.0.1:`port` (SNI and Host localhost), verifying against `caPem`. */
function httpsGet(port: number, caPem: string, opts: { cert?: string; key?: string; agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/', servername: 'localhost', headers: { host: 'localhost' }, ca: caPem, timeout: 5_000, ...(opts.agent ? { agent: opts.agent } : { agent: false }), ...(opts.cert && { cert: opts.cert, key: opts.key }) },
      (res) => {
        // At 'end' a keep-alive socket is already back in the agent (res.socket null): read it now.
        const socket = res.socket as TLSSocket;
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, fingerprint, socket }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function httpGet(port: number): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/x?y=1', headers: { host: 'localhost' }, timeout: 5_000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function putCredential(name: string, body: Record<string, string>, token = mesh.token): Promise<{ status: number; text: string }> {
  const res = await fetch(`${PILOT}/api/v1/credentials/istio-system/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

/** A Gateway `name` of the ingress with these `servers` (one YAML flow mapping each), and a VirtualService routing all of it to hello v1. */
function gatewayToHelloV1(name: string, servers: readonly string[]): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: demo }
spec:
  selector: { istio: ingressgateway }
  servers:
${servers.map((server) => `  - ${server}\n`).join('')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: demo }
spec:
  hosts: ['*']
  gateways: [${name}]
  http:
  - route: [{ destination: { host: hello.demo.svc.cluster.local, subset: v1, port: { number: 80 } } }]
`;
}

/** The SHA-256 fingerprint of a PEM certificate as Node's getPeerCertificate() prints it (AB:CD:…). */
function fingerprintOf(certFile: string): string {
  return ssl.run('x509', '-in', certFile, '-noout', '-fingerprint', '-sha256').trim().split('=')[1]!;
}

describe('local HTTPS ingress (credentials API → SDS → Envoy)', () => {
  it('SIMPLE: the demo serves HTTPS on 8443 with the launcher\'s credential; openssl and Node verify it', async () => {
    const ca = readFileSync(demoCa(), 'utf8');
    const reply = await until('HTTPS 200 on 8443', async () => {
      const r = await httpsGet(8443, ca);
      return r.status === 200 ? r : undefined;
    }, 30_000);
    expect(reply.body).toMatch(/^hello from hello v[12]/);
    const s = sClient(8443, ['-CAfile', demoCa()]);
    expect(s.output).toContain('Verify return code: 0 (ok)');
    expect(s.output).toMatch(/HTTP\/1\.1 200/);
    // The ingress holds its ADS stream on pilot's mTLS port (authenticated, so it is served
    // credentials); the sidecars stay on the plaintext loopback port and are not.
    const proxies = ((await (await fetch(`${PILOT}/api/v1/proxies`)).json()) as { proxies: { id: string; namespace: string; authenticated: boolean }[] }).proxies;
    const ingress = proxies.filter((p) => p.namespace === 'istio-system');
    expect(ingress.length).toBeGreaterThan(0);
    expect(ingress.every((p) => p.authenticated)).toBe(true);
    expect(proxies.filter((p) => p.namespace === 'demo' && p.authenticated)).toEqual([]);
    // Without the demo CA the same handshake does not verify.
    expect(sClient(8443, ['-CAfile', ssl.path('ca.crt')]).output).not.toContain('Verify return code: 0 (ok)');
  });

  it('the credentials API: metadata only, never the key; bad input named by field; writes need the token', async () => {
    const res = await fetch(`${PILOT}/api/v1/credentials/istio-system/hello-cert`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toMatch(/PRIVATE KEY|privateKey"\s*:\s*"/);
    const meta = JSON.parse(text) as { hasPrivateKey: boolean; certificates: { dnsNames: string[]; notAfter: string; sha256: string }[] };
    expect(meta.hasPrivateKey).toBe(true);
    expect(meta.certificates[0]!.dnsNames).toContain('hello.demo.local');
    expect(meta.certificates[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    const list = await (await fetch(`${PILOT}/api/v1/credentials`)).text();
    expect(list).toContain('hello-cert');
    expect(list).not.toContain('PRIVATE KEY');

    const server = ssl.dnsCert('other', 'localhost');
    const wrongKey = ssl.dnsCert('wrong', 'localhost');
    const mismatch = await putCredential('bad', { certChain: readFileSync(server.cert, 'utf8'), privateKey: readFileSync(wrongKey.key, 'utf8') });
    expect(mismatch.status).toBe(400);
    expect(JSON.parse(mismatch.text)).toMatchObject({ code: 'CREDENTIAL_INVALID', message: expect.stringMatching(/^privateKey: is not the key/) });
    const notPem = await putCredential('bad', { certChain: 'hello', privateKey: readFileSync(server.key, 'utf8') });
    expect(notPem.status).toBe(400);
    expect(notPem.text).toMatch(/certChain: holds no PEM certificate/);
    expect(notPem.text).not.toContain('PRIVATE KEY');
    expect((await putCredential('bad', { certChain: readFileSync(server.cert, 'utf8') })).text).toMatch(/privateKey: is required/);
    expect((await putCredential('ok', { certChain: readFileSync(server.cert, 'utf8'), privateKey: readFileSync(server.key, 'utf8') }, 'wrong-token')).status).toBe(401);
    expect((await fetch(`${PILOT}/api/v1/credentials/istio-system/bad`)).status).toBe(404);
    // The pilot log never holds key material.
    expect(readFileSync(join(mesh.stateDir, 'logs', 'pilot.log'), 'utf8')).not.toContain('PRIVATE KEY');
  });

  it('MUTUAL: without a client certificate the handshake fails; with one signed by the credential\'s CA, 200', async () => {
    const server = ssl.dnsCert('mtls', 'localhost');
    const client = ssl.spiffeCert('client', 'spiffe://example.test/client');
    const put = await putCredential('mtls-cert', { certChain: readFileSync(server.cert, 'utf8'), privateKey: readFileSync(server.key, 'utf8'), caCert: readFileSync(ssl.path('ca.crt'), 'utf8') });
    expect(put.status, put.text).toBe(201);
    await apply(mesh, gatewayToHelloV1('tls-test', [
      `{ port: { number: 8444, name: https-mutual, protocol: HTTPS }, hosts: ['*'], tls: { mode: MUTUAL, credentialName: mtls-cert } }`,
      `{ port: { number: 8081, name: http-redirect, protocol: HTTP }, hosts: ['*'], tls: { httpsRedirect: true } }`,
    ]));
    const ca = readFileSync(ssl.path('ca.crt'), 'utf8');
    const cert = readFileSync(client.cert, 'utf8');
    const key = readFileSync(client.key, 'utf8');
    const ok = await until('MUTUAL 200 on 8444', async () => {
      const r = await httpsGet(8444, ca, { cert, key });
      return r.status === 200 ? r : undefined;
    }, 30_000);
    expect(ok.body).toMatch(/^hello from hello v1/);
    await expect(httpsGet(8444, ca)).rejects.toThrow(/certificate|ECONNRESET|socket hang up|alert/i);
    const without = sClient(8444, ['-CAfile', ssl.path('ca.crt')]);
    expect(without.output).not.toMatch(/HTTP\/1\.1 200/);
    expect(without.output).toMatch(/alert|certificate required|handshake failure/i);
    const withCert = sClient(8444, ['-CAfile', ssl.path('ca.crt'), '-cert', client.cert, '-key', client.key]);
    expect(withCert.output).toContain('Verify return code: 0 (ok)');
    expect(withCert.output).toMatch(/HTTP\/1\.1 200/);
    // A client certificate from another CA is refused too.
    const other = new OpenSsl();
    try {
      other.ca();
      const stranger = other.spiffeCert('stranger', 'spiffe://example.test/stranger');
      await expect(httpsGet(8444, ca, { cert: readFileSync(stranger.cert, 'utf8'), key: readFileSync(stranger.key, 'utf8') })).rejects.toThrow();
    } finally {
      other.cleanup();
    }
  });

  it('egress to an external host registered by a ServiceEntry (MESH_EXTERNAL, DNS): the demo routes /external/ there', async () => {
    const r = await until('the external service through the ingress', async () => {
      const res = await fetch('http://127.0.0.1:8080/external/', { signal: AbortSignal.timeout(5_000) });
      const body = await res.text();
      return res.status === 200 ? body : undefined;
    }, 30_000);
    expect(r.trim()).toBe('hello from weather external');
  });

  it('httpsRedirect: the HTTP server answers 301 to https', async () => {
    const r = await until('301 on 8081', async () => {
      const a = await httpGet(8081);
      return a.status === 301 ? a : undefined;
    }, 30_000);
    expect(String(r.headers['location'])).toMatch(/^https:\/\/localhost(:\d+)?\/x\?y=1$/);
  });

  it('rotation: a replaced credential is served to new connections; an established keep-alive connection keeps working', async () => {
    const demoCaPem = readFileSync(demoCa(), 'utf8');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await httpsGet(8443, demoCaPem, { agent });
      expect(first.status).toBe(200);
      const oldFingerprint = first.fingerprint;
      const rotated = ssl.dnsCert('rotated', 'localhost');
      const put = await putCredential('hello-cert', { certChain: readFileSync(rotated.cert, 'utf8'), privateKey: readFileSync(rotated.key, 'utf8') });
      expect(put.status, put.text).toBe(200);
      const newFingerprint = fingerprintOf(rotated.cert);
      expect(newFingerprint).not.toBe(oldFingerprint);
      const caPem = readFileSync(ssl.path('ca.crt'), 'utf8');
      const fresh = await until('the rotated certificate on a new connection', async () => {
        const r = await httpsGet(8443, caPem);
        return r.status === 200 && r.fingerprint === newFingerprint ? r : undefined;
      }, 30_000);
      expect(fresh.body).toMatch(/^hello from hello v[12]/);
      expect(sClient(8443, ['-CAfile', ssl.path('ca.crt')]).output).toContain('Verify return code: 0 (ok)');
      // The connection opened before the rotation: still open, still answering, still the old certificate.
      const again = await httpsGet(8443, demoCaPem, { agent });
      expect(again.status).toBe(200);
      expect(again.socket).toBe(first.socket);
      expect(again.fingerprint).toBe(oldFingerprint);
    } finally {
      agent.destroy();
    }
  });

  it('a server naming a missing credential: the gateway restarted with it becomes Ready, that server refuses the handshake, the others serve', async () => {
    await apply(mesh, gatewayToHelloV1('missing-cert', [`{ port: { number: 8445, name: https-missing, protocol: HTTPS }, hosts: ['*'], tls: { mode: SIMPLE, credentialName: no-such-cert } }`]));
    const ingressAdmin = AGENT_ADMINS[0];
    // Pilot has sent it (active, or warming on the Secret until Envoy's initial_fetch_timeout).
    await until('the 8445 listener in the ingress config', async () => ((await (await fetch(`${ingressAdmin}/config_dump?resource=dynamic_listeners`)).text()).includes('"port_value": 8445') ? true : undefined), 30_000);
    // A new gateway process gets the listener in its first LDS response, where a listener waiting
    // for its Secret holds Envoy's initialization (and so the agent's readiness) back.
    const t0 = Date.now();
    process.kill(firstPid(mesh.stateDir, 'gateway'), 'SIGKILL');
    await mesh.waitFor('gateway is ready again (restart 1)', 90_000);
    const readyMs = Date.now() - t0;
    // 8443's certificate: the demo's, or the rotated one if the rotation test ran before.
    const caPem = readFileSync(demoCa(), 'utf8') + readFileSync(ssl.path('ca.crt'), 'utf8');
    const ok = await until('8443 through the restarted gateway', async () => {
      const r = await httpsGet(8443, caPem).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 30_000);
    expect(ok.body).toMatch(/^hello from hello v[12]/);
    expect((await get()).status).toBe(200); // the demo's plain HTTP server on 8080
    await expect(httpsGet(8445, caPem)).rejects.toThrow();
    expect(sClient(8445, ['-CAfile', ssl.path('ca.crt')]).output).not.toMatch(/HTTP\/1\.1 200/);
    console.log(`[tls] gateway SIGKILLed with a server naming a missing credential: ready again after ${readyMs} ms`);
  });
});
