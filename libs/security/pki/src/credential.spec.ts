import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { OpenSsl } from '@aviary/testing';
import { checkCredential, MAX_CREDENTIAL_CERTIFICATES, MAX_CREDENTIAL_FIELD_BYTES } from './credential';
import { createCsr } from './csr';
import { Issuer } from './issuer';
import { generatePrivateKey, privateKeyToPem } from './keys';

const names = { cert: 'certChain', key: 'privateKey', ca: 'caCert' };

describe('checkCredential (real openssl material)', () => {
  const ssl = new OpenSsl();
  const caPem = readFileSync(ssl.ca(), 'utf8');
  const server = ssl.dnsCert('server', 'hello.example.test');
  const other = ssl.dnsCert('other', 'other.example.test');
  const cert = ssl.read('server.crt');
  const key = ssl.read('server.key');

  afterAll(() => ssl.cleanup());

  it('summarizes a good chain and CA: names, validity, fingerprints (openssl\'s), never the key', () => {
    const s = checkCredential({ certChain: `${cert}${caPem}`, privateKey: key, caCert: caPem }, names);
    expect(s.certificates).toHaveLength(2);
    expect(s.certificates[0]!.dnsNames).toEqual(['hello.example.test']);
    const fp = ssl.run('x509', '-in', server.cert, '-noout', '-fingerprint', '-sha256').trim().split('=')[1]!.replaceAll(':', '').toLowerCase();
    expect(s.certificates[0]!.sha256).toBe(fp);
    expect(new Date(s.certificates[0]!.notAfter).getTime()).toBeGreaterThan(Date.now());
    expect(s.caCertificates[0]!.subject).toContain('CN=test-ca');
    expect(JSON.stringify(s)).not.toContain('PRIVATE KEY');
  });

  it('summarizes a certificate with an empty subject (as Issuer.signServing makes them), its SANs all the same', () => {
    const ca = Issuer.createRoot({ trustDomain: 'demo.local', validitySeconds: 3600 });
    const k = generatePrivateKey();
    const leaf = ca.signServing(createCsr(k, { commonName: 'ignored' }), ['hello.demo.local', '127.0.0.1'], 3600);
    const s = checkCredential({ certChain: leaf.certPem, privateKey: privateKeyToPem(k) }, names);
    expect(s.certificates[0]).toMatchObject({ subject: '', dnsNames: ['hello.demo.local'] });
  });

  it('accepts a CA-only credential (for a MUTUAL server\'s <name>-cacert)', () => {
    expect(checkCredential({ caCert: caPem }, names).certificates).toEqual([]);
  });

  it('refuses, naming the field, and never echoes key material', () => {
    const err = (pem: Parameters<typeof checkCredential>[0]): string => {
      try {
        checkCredential(pem, names);
      } catch (e) {
        expect((e as { code: string }).code).toBe('CREDENTIAL_INVALID');
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(err({})).toMatch(/^certChain: a credential needs certChain and privateKey, or caCert/);
    expect(err({ certChain: cert })).toBe('privateKey: is required with certChain');
    expect(err({ privateKey: key })).toBe('certChain: is required with privateKey');
    expect(err({ certChain: cert, privateKey: readFileSync(other.key, 'utf8') })).toBe('privateKey: is not the key of the first certificate in certChain');
    // The right key, but the chain does not start with its certificate.
    expect(err({ certChain: `${readFileSync(other.cert, 'utf8')}${cert}`, privateKey: key })).toMatch(/^privateKey: is not the key/);
    expect(err({ certChain: 'not pem', privateKey: key })).toMatch(/^certChain: holds no PEM certificate/);
    expect(err({ certChain: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', privateKey: key })).toMatch(/^certChain: certificate 0 does not parse/);
    const garbage = '-----BEGIN PRIVATE KEY-----\nQUJDRA==\n-----END PRIVATE KEY-----\n';
    const m = err({ certChain: cert, privateKey: garbage });
    expect(m).toMatch(/^privateKey: does not parse as a PEM private key/);
    expect(m).not.toContain('QUJDRA');
    expect(err({ certChain: cert, privateKey: key, caCert: 'x' })).toMatch(/^caCert: holds no PEM certificate/);
    expect(err({ certChain: cert.repeat(Math.ceil(MAX_CREDENTIAL_FIELD_BYTES / cert.length) + 1), privateKey: key })).toBe(`certChain: is larger than ${MAX_CREDENTIAL_FIELD_BYTES} bytes`);
    expect(err({ caCert: caPem.repeat(MAX_CREDENTIAL_CERTIFICATES + 1) })).toMatch(/^caCert: holds 17 certificates; at most 16/);
    expect(err({ certChain: cert, privateKey: key.repeat(2) })).toBe('privateKey: must hold exactly one PEM private key block (holds 2 PEM blocks)');
    expect(err({ certChain: cert, privateKey: cert })).toMatch(/^privateKey: must hold exactly one PEM private key block/);
    expect(err({ certChain: cert, privateKey: key.repeat(400) })).toBe(`privateKey: is larger than ${MAX_CREDENTIAL_FIELD_BYTES} bytes`);
  });
});
