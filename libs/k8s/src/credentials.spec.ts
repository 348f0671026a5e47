import { readFileSync } from 'node:fs';
import type { V1Secret } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { OpenSsl } from '@aviary/testing';
import { credentialFromSecret, MAX_CREDENTIAL_FIELD_BYTES } from './index';

const ssl = new OpenSsl();
afterAll(() => ssl.cleanup());
const caPem = readFileSync(ssl.ca(), 'utf8');
const server = ssl.dnsCert('server', 'hello.example.com');
const other = ssl.dnsCert('other', 'other.example.com');
const certPem = readFileSync(server.cert, 'utf8');
const keyPem = readFileSync(server.key, 'utf8');
const otherKey = readFileSync(other.key, 'utf8');
const b64 = (s: string): string => Buffer.from(s).toString('base64');

function secret(data: Record<string, string>, type = 'kubernetes.io/tls'): V1Secret {
  return { metadata: { name: 'hello-cert', namespace: 'istio-system', resourceVersion: '7' }, type, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
}

describe('credentialFromSecret (what pilot serves for credentialName)', () => {
  it('reads a kubernetes.io/tls Secret: certificate, key and optional ca.crt, with its resourceVersion', () => {
    expect(credentialFromSecret(secret({ 'tls.crt': certPem, 'tls.key': keyPem, 'ca.crt': caPem }))).toEqual({ credential: { version: '7', certChain: certPem, privateKey: keyPem, caCert: caPem } });
  });

  it("reads Istio's generic keys (cert, key, cacert) and a CA-only Secret", () => {
    expect(credentialFromSecret(secret({ cert: certPem, key: keyPem }, 'Opaque'))).toEqual({ credential: { version: '7', certChain: certPem, privateKey: keyPem } });
    expect(credentialFromSecret(secret({ cacert: caPem }, 'Opaque'))).toEqual({ credential: { version: '7', caCert: caPem } });
  });

  it('refuses a broken credential with what is wrong, so it is never served', () => {
    expect(credentialFromSecret(secret({ 'tls.crt': certPem, 'tls.key': otherKey }))).toEqual({ error: 'tls.key is not the key of the certificate in tls.crt' });
    expect(credentialFromSecret(secret({ 'tls.crt': certPem }))).toEqual({ error: 'has tls.crt without tls.key' });
    expect(credentialFromSecret(secret({ 'tls.crt': 'not a certificate', 'tls.key': keyPem }))).toEqual({ error: 'tls.crt is not a PEM certificate' });
    expect(credentialFromSecret(secret({ 'tls.crt': certPem, 'tls.key': 'garbage' }))).toMatchObject({ error: expect.stringMatching(/^tls\.key does not parse as a private key/) });
    expect(credentialFromSecret(secret({ 'ca.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }))).toMatchObject({ error: expect.stringMatching(/^ca\.crt does not parse as an X\.509 certificate/) });
    expect(credentialFromSecret(secret({ 'tls.crt': 'x'.repeat(MAX_CREDENTIAL_FIELD_BYTES + 10), 'tls.key': keyPem }))).toEqual({ error: `tls.crt is larger than ${MAX_CREDENTIAL_FIELD_BYTES} bytes` });
  });

  it('ignores Secrets that are no credential: other keys, service-account tokens (their ca.crt is the cluster CA)', () => {
    expect(credentialFromSecret(secret({ password: 'x' }, 'Opaque'))).toBeUndefined();
    expect(credentialFromSecret(secret({ 'ca.crt': caPem, token: 'x' }, 'kubernetes.io/service-account-token'))).toBeUndefined();
    expect(credentialFromSecret(secret({ 'ca-cert.pem': caPem, 'ca-key.pem': keyPem }, 'Opaque'))).toBeUndefined();
  });
});
