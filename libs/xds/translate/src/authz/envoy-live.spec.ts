import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type JwksResolution, type ModelObject } from '@aviary/mesh-model';
import { decodeMessageOf, encodeMessageOf, initXdsRoot } from '@aviary/xds-protos';
import { Server as GrpcServer, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import type { Msg } from '../envoy';
import { translate } from '../translate';
import { testEnvoy } from '@aviary/testing';
import { freePort, startEnvoy, staticBootstrap, type RunningEnvoy } from './__fixtures__/envoy-harness';

/**
 * Through a REAL Envoy: pilot's translation of RequestAuthentication and AuthorizationPolicy
 * for a router (Gateway-targeted policies) and a sidecar's inbound TCP chains, in a static
 * bootstrap, with a local HTTP backend, a local ext_authz HTTP server and two TCP echo servers,
 * all on ephemeral loopback ports. Tokens are signed here with keys made here (RS256, ES256).
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto', 'envoy/service/auth/v3/external_auth.proto'] });
const envoy0 = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const envoyPath = envoy0.path;

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

interface SigningKey {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly jwks: string;
}

function signingKey(alg: 'RS256' | 'ES256', kid: string): SigningKey {
  const { privateKey, publicKey } = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { alg, kid, privateKey, jwks: JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' }] }) };
}

function token(key: SigningKey, claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const data = `${b64url(JSON.stringify({ alg: key.alg, typ: 'JWT', kid: key.kid }))}.${b64url(JSON.stringify({ iat: now, exp: now + 600, ...claims }))}`;
  const signature = key.alg === 'RS256' ? sign('sha256', Buffer.from(data), key.privateKey) : sign('sha256', Buffer.from(data), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${data}.${b64url(signature)}`;
}

const rs = signingKey('RS256', 'rs-1');
const es = signingKey('ES256', 'es-1');
const impostor = signingKey('RS256', 'rs-1'); // same kid as `rs`, different key
const RS_ISS = 'https://rs.example';

function listen(server: HttpServer | TcpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

/** A port free on both 127.0.0.1 (echo server) and 127.0.0.2 (Envoy, the workload's own IP). */
async function dualPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    const probe = createTcpServer();
    const ok = await listen(probe, '127.0.0.2', port).then(
      () => true,
      () => false,
    );
    await new Promise((r) => probe.close(() => r(undefined)));
    if (ok) return port;
  }
}

function echoServer(): TcpServer {
  return createTcpServer((s) => s.pipe(s));
}

/** Sends `hello` and returns what comes back before the connection closes (or 2 s pass). */
function tcpExchange(port: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = connect({ host: '127.0.0.2', port }, () => s.write('hello'));
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, 2_000);
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'hello') done();
    });
    s.on('close', done);
    s.on('error', done);
  });
}

/** A real gRPC ext_authz server (envoy.service.auth.v3.Authorization/Check): allows when `x-ext-authz: allow`. */
async function grpcExtAuthz(calls: string[]): Promise<{ server: GrpcServer; port: number }> {
  const server = new GrpcServer();
  type Check = { attributes?: { request?: { http?: { path?: string; headers?: Record<string, string> } } } };
  server.addService(
    {
      Check: {
        path: '/envoy.service.auth.v3.Authorization/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: Check) => Buffer.from(encodeMessageOf('envoy.service.auth.v3.CheckRequest', m)),
        requestDeserialize: (b: Buffer) => decodeMessageOf('envoy.service.auth.v3.CheckRequest', b) as Check,
        responseSerialize: (m: Msg) => Buffer.from(encodeMessageOf('envoy.service.auth.v3.CheckResponse', m)),
        responseDeserialize: (b: Buffer) => decodeMessageOf('envoy.service.auth.v3.CheckResponse', b) as Msg,
      },
    },
    {
      Check: (call: ServerUnaryCall<Check, Msg>, cb: sendUnaryData<Msg>) => {
        const http = call.request.attributes?.request?.http;
        calls.push(http?.path ?? '');
        const allow = http?.headers?.['x-ext-authz'] === 'allow';
        cb(null, allow ? { status: { code: 0 } } : { status: { code: 7 }, denied_response: { status: { code: 'Forbidden' }, body: 'denied by grpc' } });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { server, port };
}

const obj = (kind: string, namespace: string, name: string, spec: unknown): ModelObject => ({ apiVersion: kind.endsWith('Authentication') || kind === 'AuthorizationPolicy' ? 'security.istio.io/v1' : 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec });

describe.skipIf(envoyPath === undefined)('security filters through a real Envoy', () => {
  const servers: (HttpServer | TcpServer)[] = [];
  let envoy: RunningEnvoy | undefined;
  let gatewayPort = 0;
  let tcpDenied = 0;
  let tcpAllowed = 0;
  const extAuthzCalls: string[] = [];
  const grpcCalls: string[] = [];
  let grpcAuthz: GrpcServer | undefined;
  let sidecarHttp = 0;
  let lastHeaders: IncomingHttpHeaders = {};

  beforeAll(async () => {
    const backend = createHttpServer((req, res) => {
      lastHeaders = req.headers;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${req.url}`);
    });
    const extAuthz = createHttpServer((req, res) => {
      extAuthzCalls.push(req.url ?? '');
      res.writeHead(req.headers['x-ext-authz'] === 'allow' ? 200 : 403).end();
    });
    const [backendPort, extPort] = [await freePort(), await freePort()];
    await listen(backend, '127.0.0.1', backendPort);
    await listen(extAuthz, '127.0.0.1', extPort);
    tcpDenied = await dualPort();
    const echoA = echoServer();
    await listen(echoA, '127.0.0.1', tcpDenied);
    tcpAllowed = await dualPort();
    const echoB = echoServer();
    await listen(echoB, '127.0.0.1', tcpAllowed);
    gatewayPort = await freePort();
    sidecarHttp = await dualPort();
    const appHttp = createHttpServer((req, res) => res.writeHead(200).end(`app ${req.url}`));
    await listen(appHttp, '127.0.0.1', sidecarHttp);
    servers.push(appHttp);
    const grpc = await grpcExtAuthz(grpcCalls);
    grpcAuthz = grpc.server;
    servers.push(backend, extAuthz, echoA, echoB);

    const gw = { kind: 'Gateway', group: 'networking.istio.io', name: 'ingress' };
    const objects: ModelObject[] = [
      obj('ServiceEntry', 'test', 'backend', {
        hosts: ['backend.test.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 8000, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1', ports: { http: backendPort } }],
      }),
      obj('ServiceEntry', 'test', 'ext-authz', {
        hosts: ['ext-authz.test.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 8000, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1', ports: { http: extPort } }],
      }),
      obj('Gateway', 'istio-system', 'ingress', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: gatewayPort, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] }),
      obj('VirtualService', 'istio-system', 'backend', { hosts: ['*'], gateways: ['istio-system/ingress'], http: [{ route: [{ destination: { host: 'backend.test.svc.cluster.local', port: { number: 8000 } } }] }] }),
      obj('RequestAuthentication', 'istio-system', 'jwt', {
        targetRef: gw,
        jwtRules: [
          { issuer: RS_ISS, jwks: rs.jwks, outputPayloadToHeader: 'x-jwt-payload', outputClaimToHeaders: [{ header: 'x-jwt-sub', claim: 'sub' }], forwardOriginalToken: true },
          { issuer: 'es-issuer', jwksUri: 'https://es.example/jwks.json', fromHeaders: [{ name: 'x-es-token', prefix: 'Token ' }], fromParams: ['es_token'] },
          { issuer: 'down-issuer', jwksUri: 'https://down.example/jwks.json' },
        ],
      }),
      obj('AuthorizationPolicy', 'istio-system', 'gate', {
        targetRefs: [gw],
        rules: [
          { from: [{ source: { requestPrincipals: [`${RS_ISS}/*`, 'es-issuer/*'] } }], to: [{ operation: { paths: ['/secure/*'] } }] },
          { to: [{ operation: { paths: ['/claims/*'] } }], when: [{ key: 'request.auth.claims[realm][role]', values: ['admin'] }] },
          { to: [{ operation: { notPaths: ['/secure/*', '/claims/*'] } }] },
        ],
      }),
      obj('AuthorizationPolicy', 'istio-system', 'deny-host', { targetRefs: [gw], action: 'DENY', rules: [{ to: [{ operation: { hosts: ['blocked.example'] } }] }] }),
      obj('AuthorizationPolicy', 'istio-system', 'ext', { targetRefs: [gw], action: 'CUSTOM', provider: { name: 'http-authz' }, rules: [{ to: [{ operation: { paths: ['/ext/*'] } }] }] }),
      // The sidecar of `echo` (TCP ports only): a DENY rule whose HTTP-only field cannot be evaluated on TCP.
      obj('ServiceEntry', 'tcp', 'echo', {
        hosts: ['echo.tcp.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [
          { number: 9001, name: 'tcp-a', protocol: 'TCP' },
          { number: 9002, name: 'tcp-b', protocol: 'TCP' },
          { number: 9003, name: 'http', protocol: 'HTTP' },
        ],
        workloadSelector: { labels: { app: 'echo' } },
      }),
      obj('WorkloadEntry', 'tcp', 'echo-1', { address: '127.0.0.2', labels: { app: 'echo' }, ports: { 'tcp-a': tcpDenied, 'tcp-b': tcpAllowed, http: sidecarHttp }, serviceAccount: 'echo' }),
      obj('ServiceEntry', 'tcp', 'grpc-authz', {
        hosts: ['grpc-authz.tcp.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 9000, name: 'grpc', protocol: 'GRPC' }],
        endpoints: [{ address: '127.0.0.1', ports: { grpc: grpc.port } }],
      }),
      // CUSTOM with the gRPC provider on the sidecar's HTTP port (by port, so its TCP ports are not concerned).
      obj('AuthorizationPolicy', 'tcp', 'grpc-ext', {
        selector: { matchLabels: { app: 'echo' } },
        action: 'CUSTOM',
        provider: { name: 'grpc-authz' },
        rules: [{ to: [{ operation: { ports: [String(sidecarHttp)], paths: ['/guarded/*'] } }] }],
      }),
      obj('AuthorizationPolicy', 'tcp', 'deny-admin', { selector: { matchLabels: { app: 'echo' } }, action: 'DENY', rules: [{ to: [{ operation: { ports: [String(tcpDenied)], paths: ['/admin/*'] } }] }] }),
    ];
    const jwks = new Map<string, JwksResolution>([
      ['https://es.example/jwks.json', { jwks: es.jwks }],
      ['https://down.example/jwks.json', { error: 'connect ECONNREFUSED' }],
    ]);
    const mesh = buildSnapshot(objects, { trustDomain: 'cluster.local', extensionProviders: [
          { name: 'http-authz', envoyExtAuthzHttp: { service: 'ext-authz.test.svc.cluster.local', port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'], timeout: '2s' } },
          { name: 'grpc-authz', envoyExtAuthzGrpc: { service: 'tcp/grpc-authz.tcp.svc.cluster.local', port: 9000, timeout: '2s' } },
        ],
      }, jwks);
    const router = translate(parseNode({ id: 'router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local', metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } } }), mesh);
    const sidecar = translate(parseNode({ id: 'sidecar~127.0.0.2~echo-1.tcp~tcp.svc.cluster.local', metadata: { NAMESPACE: 'tcp', LABELS: { app: 'echo' } } }), mesh);

    const gwListener = router.listeners.find((l) => l.name === `0.0.0.0_${gatewayPort}`)!.resource;
    const inbound = sidecar.listeners.find((l) => l.name === 'virtualInbound')!.resource;
    const tcpListener = (port: number): Msg => {
      const { filter_chain_match: _m, ...chain } = (inbound.filter_chains as Msg[]).find((c) => c.name === `inbound_${port}_plaintext`)!;
      return { name: `tcp_${port}`, address: { socket_address: { address: '127.0.0.2', port_value: port } }, filter_chains: [chain] };
    };
    const listeners = [{ ...gwListener, address: { socket_address: { address: '127.0.0.1', port_value: gatewayPort } } }, tcpListener(tcpDenied), tcpListener(tcpAllowed), tcpListener(sidecarHttp)];
    const byName = <T extends { name: string }>(lists: T[][]) => [...new Map(lists.flat().map((x) => [x.name, x])).values()];
    // Auto mTLS: clusters carry a transport_socket_match to ISTIO_MUTUAL (SDS) for `tlsMode: istio`
    // endpoints. This mesh has none (plaintext applies), and no SDS server runs here, whose absence
    // would keep Envoy warming: the matches are dropped.
    const plain = (list: readonly { name: string; resource: Msg }[]) => list.map(({ name, resource: { transport_socket_matches: _m, ...resource } }) => ({ name, resource }));
    const resources = {
      routes: router.routes,
      clusters: plain(byName([router.clusters as never[], sidecar.clusters as never[]])),
      endpoints: byName([router.endpoints as never[], sidecar.endpoints as never[]]),
    };
    envoy = await startEnvoy(envoyPath!, staticBootstrap('router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local', resources, listeners), [gatewayPort, tcpDenied, tcpAllowed, sidecarHttp]);
  });

  afterAll(async () => {
    await envoy?.stop();
    grpcAuthz?.forceShutdown();
    for (const s of servers) await new Promise((r) => s.close(() => r(undefined)));
  });

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`http://127.0.0.1:${gatewayPort}${path}`, { headers });
    await res.arrayBuffer();
    return res.status;
  };
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('no token and no policy requiring one: 200', async () => {
    expect(await get('/open/a')).toBe(200);
  });
  it('a valid RS256 token: 200', async () => {
    expect(await get('/open/a', bearer(token(rs, { iss: RS_ISS, sub: 'alice' })))).toBe(200);
  });
  it('an expired token: 401', async () => {
    const past = Math.floor(Date.now() / 1000) - 3_600;
    expect(await get('/open/a', bearer(token(rs, { iss: RS_ISS, sub: 'alice', iat: past - 60, exp: past })))).toBe(401);
  });
  it('a token of an issuer no rule names: 401', async () => {
    expect(await get('/open/a', bearer(token(rs, { iss: 'https://evil.example', sub: 'alice' })))).toBe(401);
  });
  it('a token signed with the wrong key (same kid): 401', async () => {
    expect(await get('/open/a', bearer(token(impostor, { iss: RS_ISS, sub: 'alice' })))).toBe(401);
  });
  it('an issuer whose JWKS pilot could not fetch fails closed: 401', async () => {
    expect(await get('/open/a', bearer(token(rs, { iss: 'down-issuer', sub: 'alice' })))).toBe(401);
  });
  it('ALLOW requestPrincipals: no token 403; RS256 and ES256 (JWKS from jwksUri, resolved by pilot) 200', async () => {
    expect(await get('/secure/x')).toBe(403);
    expect(await get('/secure/x', bearer(token(rs, { iss: RS_ISS, sub: 'alice' })))).toBe(200);
    const esToken = token(es, { iss: 'es-issuer', sub: 'bob' });
    expect(await get('/secure/x', { 'x-es-token': `Token ${esToken}` })).toBe(200);
    expect(await get(`/secure/x?es_token=${esToken}`)).toBe(200);
    // Not where that issuer's rule looks (fromHeaders/fromParams replace the default Authorization header).
    expect(await get('/secure/x', bearer(esToken))).toBe(401);
  });
  it('outputPayloadToHeader, outputClaimToHeaders and forwardOriginalToken reach the backend', async () => {
    const t = token(rs, { iss: RS_ISS, sub: 'carol' });
    expect(await get('/open/h', bearer(t))).toBe(200);
    expect(lastHeaders['x-jwt-sub']).toBe('carol');
    expect(JSON.parse(Buffer.from(String(lastHeaders['x-jwt-payload']), 'base64url').toString())).toMatchObject({ iss: RS_ISS, sub: 'carol' });
    expect(lastHeaders.authorization).toBe(`Bearer ${t}`);
  });
  it('a nested claim condition: role admin 200, role user 403, no token 403', async () => {
    expect(await get('/claims/x', bearer(token(rs, { iss: RS_ISS, sub: 'alice', realm: { role: 'admin' } })))).toBe(200);
    expect(await get('/claims/x', bearer(token(rs, { iss: RS_ISS, sub: 'alice', realm: { role: 'user' } })))).toBe(403);
    expect(await get('/claims/x')).toBe(403);
  });
  it('CUSTOM: the ext_authz server decides for the paths the policy names, and is not asked for others', async () => {
    extAuthzCalls.length = 0;
    expect(await get('/ext/x', { 'x-ext-authz': 'allow' })).toBe(200);
    expect(await get('/ext/y', { 'x-ext-authz': 'deny' })).toBe(403);
    expect(await get('/open/z', { 'x-ext-authz': 'deny' })).toBe(200);
    expect(extAuthzCalls).toEqual(['/ext/x', '/ext/y']);
  });
  it('DENY on hosts matches the Host header with or without a port, any case', async () => {
    const withHost = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: gatewayPort, path: '/open/h', headers: { host } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await withHost('blocked.example')).toBe(403);
    expect(await withHost(`Blocked.Example:${gatewayPort}`)).toBe(403);
    expect(await withHost('other.example')).toBe(200);
  });
  it('CUSTOM with a gRPC provider on a sidecar inbound HTTP port: the gRPC server decides', async () => {
    const at = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`http://127.0.0.2:${sidecarHttp}${path}`, { headers });
      await res.arrayBuffer();
      return res.status;
    };
    grpcCalls.length = 0;
    expect(await at('/guarded/a', { 'x-ext-authz': 'allow' })).toBe(200);
    expect(await at('/guarded/b', { 'x-ext-authz': 'deny' })).toBe(403);
    expect(await at('/free/c')).toBe(200);
    expect(grpcCalls).toEqual(['/guarded/a', '/guarded/b']);
  });
  it('TCP: a DENY rule with an HTTP-only field denies the whole port (fail closed); the other port echoes', async () => {
    expect(await tcpExchange(tcpAllowed)).toBe('hello');
    expect(await tcpExchange(tcpDenied)).toBe('');
  });
});
