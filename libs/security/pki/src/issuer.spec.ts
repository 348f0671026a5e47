import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { createCsr, generatePrivateKey, Issuer, parseCsr, pemBlocks, splitCertificates, toPem, uriSans, verifyChain } from './index';
import { OpenSsl, P256, RSA2048 } from '@aviary/testing';

const ID = 'spiffe://cluster.local/ns/shop/sa/checkout';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (isAviaryError(err)) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

describe('Issuer with a self-signed root, checked by openssl', () => {
  const ssl = new OpenSsl();
  const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
  beforeAll(() => ssl.write('root.pem', ca.rootPem));
  afterAll(() => ssl.cleanup());

  it('signs an openssl P-256 CSR: chain verifies, SAN is the authenticated SPIFFE ID only, profile is a TLS leaf', () => {
    const issued = ca.signWorkload(ssl.csr('p256', P256), ID, { ttlSeconds: 3600 });
    expect(issued.chain).toHaveLength(2);
    expect(issued.chain[1]).toBe(ca.rootPem);
    ssl.write('leaf.pem', issued.certPem);
    expect(ssl.run('verify', '-CAfile', 'root.pem', 'leaf.pem').trim()).toBe('leaf.pem: OK');
    expect(ssl.run('verify', '-CAfile', 'root.pem', '-purpose', 'sslclient', 'leaf.pem').trim()).toBe('leaf.pem: OK');
    expect(ssl.run('verify', '-CAfile', 'root.pem', '-purpose', 'sslserver', 'leaf.pem').trim()).toBe('leaf.pem: OK');
    const san = ssl.run('x509', '-in', 'leaf.pem', '-noout', '-ext', 'subjectAltName');
    expect(san).toContain(`URI:${ID}`);
    expect(san).not.toContain('evil');
    const text = ssl.run('x509', '-in', 'leaf.pem', '-noout', '-text');
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toContain('Subject Key Identifier');
    expect(text).toContain('Authority Key Identifier');
    expect(text).not.toContain('ignored.example');
    expect(ssl.run('x509', '-in', 'leaf.pem', '-noout', '-serial').trim().toLowerCase()).toBe(`serial=${issued.serialHex}`);
    expect(issued.serialHex).toMatch(/^[1-9a-f][0-9a-f]{31}$/);
    expect(issued.notAfter.getTime() - issued.notBefore.getTime()).toBe((3600 + 60) * 1000);
  });

  it('signs an openssl RSA-2048 CSR', () => {
    const issued = ca.signWorkload(ssl.csr('rsa', RSA2048), ID, { ttlSeconds: 600 });
    ssl.write('rsa-leaf.pem', issued.certPem);
    expect(ssl.run('verify', '-CAfile', 'root.pem', 'rsa-leaf.pem').trim()).toBe('rsa-leaf.pem: OK');
  });

  it('the root is a 10-year CA with its own subject', () => {
    const text = ssl.run('x509', '-in', 'root.pem', '-noout', '-text');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Certificate Sign, CRL Sign/);
    const root = new X509Certificate(ca.rootPem);
    const years = (Date.parse(root.validTo) - Date.parse(root.validFrom)) / (365 * 86_400_000);
    expect(years).toBeGreaterThan(9.99);
    expect(root.subject).toContain('O=cluster.local');
  });

  it('gives every certificate a different serial', () => {
    const csr = parseCsr(ssl.csr('again', P256));
    const serials = new Set(Array.from({ length: 50 }, () => ca.signWorkload(csr, ID, { ttlSeconds: 60 }).serialHex));
    expect(serials.size).toBe(50);
  });

  it('caps a leaf at the CA expiry and says so', () => {
    const short = Issuer.createRoot({ trustDomain: 'cluster.local', validitySeconds: 3600 });
    const issued = short.signWorkload(ssl.csr('cap', P256), ID, { ttlSeconds: 86_400 });
    expect(issued.clampedByCa).toBe(true);
    expect(issued.notAfter.getTime()).toBe(short.notAfter.getTime());
  });

  it('signs serving certificates with DNS and IP SANs', () => {
    const issued = ca.signServing(ssl.csr('srv', P256), ['citadel.aviary-system.svc', 'localhost', '127.0.0.1', '::1'], 3600);
    ssl.write('srv.pem', issued.certPem);
    const san = ssl.run('x509', '-in', 'srv.pem', '-noout', '-ext', 'subjectAltName');
    expect(san).toContain('DNS:citadel.aviary-system.svc, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(ssl.run('verify', '-CAfile', 'root.pem', '-verify_hostname', 'localhost', 'srv.pem').trim()).toBe('srv.pem: OK');
    expect(codeOf(() => ca.signServing(ssl.read('srv.csr'), ['bad name!'], 60))).toBe('SAN_INVALID');
    expect(codeOf(() => ca.signServing(ssl.read('srv.csr'), [], 60))).toBe('SAN_INVALID');
  });

  it('an RSA-2048 root signs as well', () => {
    const rsa = Issuer.createRoot({ trustDomain: 'cluster.local', algorithm: 'rsa-2048' });
    ssl.write('rsa-root.pem', rsa.rootPem);
    ssl.write('by-rsa.pem', rsa.signWorkload(ssl.csr('byrsa', P256), ID, { ttlSeconds: 60 }).certPem);
    expect(ssl.run('verify', '-CAfile', 'rsa-root.pem', 'by-rsa.pem').trim()).toBe('by-rsa.pem: OK');
    expect(ssl.run('x509', '-in', 'rsa-root.pem', '-noout', '-text')).toContain('sha256WithRSAEncryption');
  });

  it('round-trips through exportPrivateKeyPem / fromPem', () => {
    const again = Issuer.fromPem({ caCertPem: ca.certPem, caKeyPem: ca.exportPrivateKeyPem() });
    ssl.write('again.pem', again.signWorkload(ssl.read('p256.csr'), ID, { ttlSeconds: 60 }).certPem);
    expect(ssl.run('verify', '-CAfile', 'root.pem', 'again.pem').trim()).toBe('again.pem: OK');
  });
});

describe('CSR parsing', () => {
  const ssl = new OpenSsl();
  afterAll(() => ssl.cleanup());

  it('rejects garbage, empty and truncated CSRs as CSR_MALFORMED', () => {
    const good = ssl.csr('good', P256);
    const der = pemBlocks(good)[0]!.der;
    expect(codeOf(() => parseCsr('hello'))).toBe('CSR_MALFORMED');
    expect(codeOf(() => parseCsr(''))).toBe('CSR_MALFORMED');
    expect(codeOf(() => parseCsr(Buffer.from('garbage')))).toBe('CSR_MALFORMED');
    expect(codeOf(() => parseCsr(toPem('CERTIFICATE REQUEST', der.subarray(0, der.length - 10))))).toBe('CSR_MALFORMED');
    expect(codeOf(() => parseCsr(toPem('CERTIFICATE REQUEST', Buffer.concat([der, Buffer.from([0])]))))).toBe('CSR_MALFORMED');
    expect(codeOf(() => parseCsr(toPem('CERTIFICATE REQUEST', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]))))).toBe('CSR_MALFORMED');
    expect(codeOf(() => parseCsr(good))).toBe('NO_ERROR');
  });

  it('rejects a CSR whose signature does not match its key (tampered subject, tampered signature)', () => {
    const der = Buffer.from(pemBlocks(ssl.csr('tamper', P256, '/CN=aaaa'))[0]!.der);
    const cn = der.indexOf(Buffer.from('aaaa'));
    const renamed = Buffer.from(der);
    renamed.write('bbbb', cn, 'ascii');
    expect(codeOf(() => parseCsr(renamed))).toBe('CSR_SIGNATURE_INVALID');
    const badSig = Buffer.from(der);
    badSig[badSig.length - 5]! ^= 0x01;
    expect(codeOf(() => parseCsr(badSig))).toBe('CSR_SIGNATURE_INVALID');
    const rsa = Buffer.from(pemBlocks(ssl.csr('tamper-rsa', RSA2048))[0]!.der);
    rsa[rsa.length - 1]! ^= 0xff;
    expect(codeOf(() => parseCsr(rsa))).toBe('CSR_SIGNATURE_INVALID');
  });

  it('rejects Ed25519 and small RSA keys with their own codes', () => {
    ssl.run('genpkey', '-algorithm', 'ed25519', '-out', 'ed.key');
    ssl.run('req', '-new', '-key', 'ed.key', '-subj', '/CN=ed', '-out', 'ed.csr');
    expect(codeOf(() => parseCsr(ssl.read('ed.csr')))).toBe('KEY_TYPE_UNSUPPORTED');
    expect(codeOf(() => parseCsr(ssl.csr('rsa1024', ['-newkey', 'rsa:1024'])))).toBe('KEY_SIZE_UNSUPPORTED');
    expect(codeOf(() => parseCsr(ssl.csr('k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'])))).toBe('KEY_TYPE_UNSUPPORTED');
  });

  it('rejects RSASSA-PSS signatures as unsupported', () => {
    ssl.run('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'pss.key', '-subj', '/CN=pss', '-sigopt', 'rsa_padding_mode:pss', '-out', 'pss.csr');
    expect(codeOf(() => parseCsr(ssl.read('pss.csr')))).toBe('CSR_SIGNATURE_ALGORITHM_UNSUPPORTED');
  });

  it('createCsr output is accepted by `openssl req -verify` and by parseCsr', () => {
    for (const alg of ['ecdsa-p256', 'rsa-2048'] as const) {
      const pem = createCsr(generatePrivateKey(alg), { commonName: 'x', dnsNames: ['a.example'], uris: [ID] });
      ssl.write(`own-${alg}.csr`, pem);
      expect(ssl.tryRun('req', '-in', `own-${alg}.csr`, '-noout', '-verify').output).toMatch(/verify OK|Certificate request self-signature verify OK/);
      expect(parseCsr(pem).keyType).toBe(alg === 'rsa-2048' ? 'rsa' : 'ec-p256');
    }
  });
});

describe('plug-in CA in Istio cacerts layout', () => {
  const ssl = new OpenSsl();
  beforeAll(() => {
    ssl.run('req', '-x509', ...P256, '-nodes', '-keyout', 'root-key.pem', '-out', 'root-cert.pem', '-days', '3650', '-subj', '/O=Plug/CN=Plug Root',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ssl.run('req', '-new', ...P256, '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.csr', '-subj', '/O=Plug/CN=Plug Intermediate');
    ssl.write('ext.cnf', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    ssl.run('x509', '-req', '-in', 'ca.csr', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-days', '365', '-extfile', 'ext.cnf', '-out', 'ca-cert.pem');
    ssl.write('cert-chain.pem', ssl.read('ca-cert.pem') + ssl.read('root-cert.pem'));
  });
  afterAll(() => ssl.cleanup());

  it('issues leaf → intermediate → root chains that openssl verifies', () => {
    const ca = Issuer.fromPem({ caCertPem: ssl.read('ca-cert.pem'), caKeyPem: ssl.read('ca-key.pem'), rootCertPem: ssl.read('root-cert.pem'), certChainPem: ssl.read('cert-chain.pem') });
    const issued = ca.signWorkload(ssl.csr('w', P256), ID, { ttlSeconds: 3600 });
    expect(issued.chain).toHaveLength(3);
    expect(splitCertificates(issued.chain[2]!)[0]).toBe(splitCertificates(ssl.read('root-cert.pem'))[0]);
    ssl.write('leaf.pem', issued.chain[0]!);
    ssl.write('inter.pem', issued.chain[1]!);
    expect(ssl.run('verify', '-CAfile', 'root-cert.pem', '-untrusted', 'inter.pem', 'leaf.pem').trim()).toBe('leaf.pem: OK');
    expect(ssl.tryRun('verify', '-CAfile', 'root-cert.pem', 'leaf.pem').status).not.toBe(0);
    expect(verifyChain([issued.chain[0]!, issued.chain[1]!], [ca.rootPem]).ok).toBe(true);
    expect(uriSans(issued.certPem)).toEqual([ID]);
  });

  it('works without cert-chain.pem', () => {
    const ca = Issuer.fromPem({ caCertPem: ssl.read('ca-cert.pem'), caKeyPem: ssl.read('ca-key.pem'), rootCertPem: ssl.read('root-cert.pem') });
    expect(ca.caChain).toHaveLength(2);
  });

  it('refuses a key that does not match, a non-CA certificate and a broken chain', () => {
    const wrongKey = ssl.run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256');
    expect(codeOf(() => Issuer.fromPem({ caCertPem: ssl.read('ca-cert.pem'), caKeyPem: wrongKey, rootCertPem: ssl.read('root-cert.pem') }))).toBe('CA_LOAD_FAILED');
    expect(codeOf(() => Issuer.fromPem({ caCertPem: ssl.read('ca-cert.pem'), caKeyPem: 'not a key', rootCertPem: ssl.read('root-cert.pem') }))).toBe('CA_LOAD_FAILED');
    const other = Issuer.createRoot({ trustDomain: 'other' });
    expect(codeOf(() => Issuer.fromPem({ caCertPem: ssl.read('ca-cert.pem'), caKeyPem: ssl.read('ca-key.pem'), rootCertPem: other.rootPem }))).toBe('CA_LOAD_FAILED');
    const leaf = Issuer.fromPem({ caCertPem: ssl.read('ca-cert.pem'), caKeyPem: ssl.read('ca-key.pem'), rootCertPem: ssl.read('root-cert.pem') }).signWorkload(ssl.csr('l', P256), ID, { ttlSeconds: 60 });
    expect(codeOf(() => Issuer.fromPem({ caCertPem: leaf.certPem, caKeyPem: ssl.read('l.key') }))).toBe('CA_LOAD_FAILED');
  });
});

describe('verifyChain', () => {
  const ssl = new OpenSsl();
  afterAll(() => ssl.cleanup());
  it('accepts our leaf, refuses a foreign CA, an expired leaf and a CA as leaf', () => {
    const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const foreign = Issuer.createRoot({ trustDomain: 'cluster.local' });
    const csr = parseCsr(ssl.csr('v', P256));
    const leaf = ca.signWorkload(csr, ID, { ttlSeconds: 60 });
    expect(verifyChain([leaf.certPem], [ca.rootPem])).toMatchObject({ ok: true, peer: { uris: [ID] } });
    expect(verifyChain([foreign.signWorkload(csr, ID, { ttlSeconds: 60 }).certPem], [ca.rootPem]).ok).toBe(false);
    expect(verifyChain([leaf.certPem], [ca.rootPem], new Date(Date.now() + 3_600_000)).ok).toBe(false);
    expect(verifyChain([ca.rootPem], [ca.rootPem]).ok).toBe(false);
    expect(verifyChain([Buffer.from('junk')], [ca.rootPem]).ok).toBe(false);
  });
});
