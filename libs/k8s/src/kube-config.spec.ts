import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PooledKubeConfig } from './kube-config';

/** A TLS server answering every request with an empty NamespaceList, counting TLS handshakes. */
let server: Server;
let ca = '';
let handshakes = 0;
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kube-config-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
  server = createServer({ cert: ca, key: readFileSync(join(dir, 'key.pem')) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  server.on('secureConnection', () => (handshakes += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function configure<T extends KubeConfig>(kc: T): T {
  const port = (server.address() as AddressInfo).port;
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caData: Buffer.from(ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token: 'token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

describe('PooledKubeConfig', () => {
  it('reuses pooled TLS connections for sequential requests, where the plain KubeConfig opens one per request', async () => {
    handshakes = 0;
    const plain = configure(new KubeConfig()).makeApiClient(CoreV1Api);
    for (let i = 0; i < 6; i++) expect((await plain.listNamespace()).items).toEqual([]);
    expect(handshakes).toBe(6);

    handshakes = 0;
    const pooled = configure(new PooledKubeConfig()).makeApiClient(CoreV1Api);
    for (let i = 0; i < 6; i++) expect((await pooled.listNamespace()).items).toEqual([]);
    // undici may open a second connection while the first response is being released; never one per request
    expect(handshakes).toBeLessThanOrEqual(2);
  });
});
