import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { Issuer, parseCsr } from '@aviary/pki';
import { OpenSsl, P256, RSA2048 } from '@aviary/testing';

const FRONT = 'spiffe://cluster.local/ns/shop/sa/frontend';
const BACK = 'spiffe://cluster.local/ns/shop/sa/backend';

interface Party {
  key: string;
  chain: readonly string[];
}

/** One mutual-TLS handshake; resolves with the SAN each side saw of the other, or the error. */
async function handshake(server: Party, client: Party, trusted: string): Promise<{ serverSaw: string; clientSaw: string } | Error> {
  let serverSaw = '';
  const srv = createServer({ key: server.key, cert: server.chain.slice(0, -1).join(''), ca: trusted, requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
    serverSaw = s.getPeerCertificate().subjectaltname ?? '';
    s.end('hi');
    s.on('error', () => undefined);
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const c = connect({ host: '127.0.0.1', port, key: client.key, cert: client.chain.slice(0, -1).join(''), ca: trusted, checkServerIdentity: () => undefined }, () => {
        const clientSaw = c.getPeerCertificate().subjectaltname ?? '';
        c.once('data', () => {
          c.end();
          resolve({ serverSaw, clientSaw });
        });
      });
      // TLS 1.3: a refused client certificate shows up after the client's handshake, as an alert.
      c.on('error', (err) => resolve(err));
      c.on('close', () => resolve(new Error('closed before the server answered')));
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

describe('leaves complete a real mutual-TLS handshake (node:tls)', () => {
  const ssl = new OpenSsl();
  afterAll(() => ssl.cleanup());
  const party = (ca: Issuer, name: string, id: string, keyArgs: readonly string[] = P256): Party => {
    const chain = ca.signWorkload(parseCsr(ssl.csr(name, keyArgs)), id, { ttlSeconds: 600 }).chain;
    return { key: ssl.read(`${name}.key`), chain };
  };

  it('each side sees the other SPIFFE ID', async () => {
    const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const result = await handshake(party(ca, 'back', BACK), party(ca, 'front', FRONT, RSA2048), ca.rootPem);
    expect(result).toEqual({ serverSaw: `URI:${FRONT}`, clientSaw: `URI:${BACK}` });
  });

  it('a client leaf from a foreign CA is refused', async () => {
    const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const foreign = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const result = await handshake(party(ca, 'back2', BACK), party(foreign, 'evil', FRONT), ca.rootPem);
    expect(result).toBeInstanceOf(Error);
  });

  it('after a rotation, old-root and new-root leaves handshake against the bundle', async () => {
    const oldRoot = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const newRoot = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const bundle = oldRoot.rootPem + newRoot.rootPem;
    const result = await handshake(party(oldRoot, 'old', BACK), party(newRoot, 'new', FRONT), bundle);
    expect(result).toEqual({ serverSaw: `URI:${FRONT}`, clientSaw: `URI:${BACK}` });
    const refused = await handshake(party(oldRoot, 'old2', BACK), party(newRoot, 'new2', FRONT), oldRoot.rootPem);
    expect(refused).toBeInstanceOf(Error);
  });
});
