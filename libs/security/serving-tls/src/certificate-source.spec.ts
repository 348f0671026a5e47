import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { createLogger } from '@aviary/observability';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { CertificateSource, type ActiveCertificate, type SignRequest } from './certificate-source';

/** A throwaway CA and a serving certificate for `dnsNames`. */
function testCertificate(dnsNames: string[] = ['localhost', '127.0.0.1']) {
  const ca = Issuer.createRoot({ trustDomain: 'test.local' });
  const key = generatePrivateKey('ecdsa-p256');
  const issued = ca.signServing(createCsr(key, { dnsNames }), dnsNames, 3600);
  return { certPem: issued.certPem, keyPem: privateKeyToPem(key) };
}

const logger = createLogger('tls-test', 'silent');
const base = { dnsNames: ['injector.aviary-system.svc', 'localhost'], ttlSeconds: 3600, reloadIntervalMs: 60_000, signTimeoutMs: 2_000, trustDomain: 'cluster.local', logger };
const noSigner: SignRequest = async () => ({ ok: false, code: 'NO_RESPONDER', message: 'nobody home' });

describe('CertificateSource', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aviary-serving-tls-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('loads tlsCertFile/tlsKeyFile and picks up a rotated pair on refresh', async () => {
    const first = testCertificate();
    await writeFile(join(dir, 'tls.crt'), first.certPem);
    await writeFile(join(dir, 'tls.key'), first.keyPem);
    const changes: ActiveCertificate[] = [];
    const source = new CertificateSource({ ...base, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sign: noSigner }, (c) => changes.push(c));
    try {
      expect((await source.start())?.origin).toBe('files');
      await source.refresh();
      expect(changes).toHaveLength(0);
      const second = testCertificate();
      await writeFile(join(dir, 'tls.crt'), second.certPem);
      await writeFile(join(dir, 'tls.key'), second.keyPem);
      await source.refresh();
      expect(changes.map((c) => c.certPem)).toEqual([second.certPem]);
      // A half-written pair (new cert, old key) is refused; the last good one keeps serving.
      await writeFile(join(dir, 'tls.crt'), testCertificate().certPem);
      await source.refresh();
      expect(source.current.certPem).toBe(second.certPem);
    } finally {
      source.stop();
    }
  });

  it('refuses to start on a mismatched pair or a lone file', async () => {
    const a = testCertificate();
    await writeFile(join(dir, 'a.crt'), a.certPem);
    await writeFile(join(dir, 'b.key'), testCertificate().keyPem);
    const source = new CertificateSource({ ...base, certFile: join(dir, 'a.crt'), keyFile: join(dir, 'b.key'), sign: noSigner });
    await expect(source.start()).rejects.toSatisfy((e) => isAviaryError(e) && e.code === 'TLS_KEY_MISMATCH');
    source.stop();
    expect(() => new CertificateSource({ ...base, certFile: join(dir, 'a.crt'), keyFile: '', sign: noSigner })).toThrow(/set together/);
  });

  describe('with citadel over NATS', () => {
    let nats: NatsServer;
    let bus: Bus;
    const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
    beforeAll(async () => {
      nats = await NatsServer.start();
      bus = await Bus.connect({ url: nats.url, source: 'serving-tls-test', logger, registry: new Registry() });
    });
    afterAll(async () => {
      await bus.close();
      await nats.stop();
    });
    const sign: SignRequest = (data, timeoutMs) => bus.request('aviary.ca.v1.sign', data, timeoutMs);

    it('falls back to a self-signed certificate while citadel is away, then switches to a citadel-signed one', async () => {
      const changes: ActiveCertificate[] = [];
      const source = new CertificateSource({ ...base, certFile: '', keyFile: '', sign }, (c) => changes.push(c));
      try {
        const fallback = (await source.start())!;
        expect(fallback.origin).toBe('self-signed');
        expect(new X509Certificate(fallback.certPem).verify(new X509Certificate(fallback.caPem!).publicKey)).toBe(true);

        const responder = bus.reply('aviary.ca.v1.sign', async ({ data }) => ({
          ok: true as const,
          certChain: [ca.signServing(data.csr, data.dnsNames, data.ttlSeconds).certPem, ca.rootPem],
        }));
        try {
          await source.refresh();
        } finally {
          await responder.stop();
        }
        expect(changes.map((c) => c.origin)).toEqual(['citadel']);
        const leaf = new X509Certificate(source.current.certPem);
        expect(leaf.verify(new X509Certificate(ca.rootPem).publicKey)).toBe(true);
        expect(leaf.subjectAltName).toContain('DNS:injector.aviary-system.svc');
        expect(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(source.current.keyPem))).toBe(true);
      } finally {
        source.stop();
      }
    });
  });
});
