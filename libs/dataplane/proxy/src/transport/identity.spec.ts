import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Issuer } from '@aviary/pki';
import { IdentityManager } from './identity';
import { spiffeIdOf } from './tls-material';
import { X509Certificate } from 'node:crypto';
import type { WorkloadIdentity } from './tls-material';

const root = protobuf.parse(`syntax = "proto3"; package istio.v1.auth;
message IstioCertificateRequest { string csr = 1; int64 validity_duration = 3; }
message IstioCertificateResponse { repeated string cert_chain = 1; Roots root_cert = 2; }
message Roots { repeated string ca_cert = 1; }`, { keepCase: true }).root;
const Req = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const Res = root.lookupType('istio.v1.auth.IstioCertificateResponse');

const SPIFFE = 'spiffe://cluster.local/ns/default/sa/web';
let server: grpc.Server;
let port = 0;
const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
const seen: { token: string; ttl: number }[] = [];

beforeAll(async () => {
  // A real gRPC CA endpoint with citadel's wire contract, signing with the real issuer.
  server = new grpc.Server();
  server.addService(
    {
      CreateCertificate: {
        path: '/istio.v1.auth.IstioCertificateService/CreateCertificate',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: unknown) => Buffer.from(Req.encode(Req.fromObject(v as object)).finish()),
        requestDeserialize: (b: Buffer) => Req.toObject(Req.decode(b), { longs: Number }),
        responseSerialize: (v: unknown) => Buffer.from(Res.encode(Res.fromObject(v as object)).finish()),
        responseDeserialize: (b: Buffer) => Res.decode(b),
      },
    },
    {
      CreateCertificate: (call: grpc.ServerUnaryCall<{ csr: string; validity_duration: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const token = String(call.metadata.get('authorization')[0] ?? '');
        seen.push({ token, ttl: call.request.validity_duration });
        if (token !== 'Bearer join-token') return cb({ code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
        const issued = ca.signWorkload(call.request.csr, SPIFFE, { ttlSeconds: call.request.validity_duration });
        cb(null, { cert_chain: issued.chain.slice(0, -1), root_cert: { ca_cert: [ca.rootPem] } });
      },
    },
  );
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
});

afterAll(() => {
  server.forceShutdown();
});

describe('IdentityManager', () => {
  it('gets a certificate for its own key with the join token, and renews with a new key', async () => {
    const got: WorkloadIdentity[] = [];
    const m = new IdentityManager({ address: `127.0.0.1:${port}`, token: () => 'join-token', spiffeId: SPIFFE, ttlSeconds: 3600, onIdentity: (i) => got.push(i) });
    try {
      const id = await m.start();
      expect(seen.at(-1)).toEqual({ token: 'Bearer join-token', ttl: 3600 });
      const leaf = new X509Certificate(id.certChain);
      expect(leaf.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(id.privateKey)))).toBe(true);
      expect(spiffeIdOf(leaf.toLegacyObject())).toBe(SPIFFE);
      expect(id.roots).toContain('BEGIN CERTIFICATE');
      const again = await m.renew();
      expect(again.version).toBe(2);
      expect(again.privateKey).not.toBe(id.privateKey);
      m.setRoots([ca.rootPem, Issuer.createRoot({ trustDomain: 'cluster.local' }).rootPem]);
      expect(got.at(-1)!.version).toBe(3);
      expect(got.at(-1)!.certChain).toBe(again.certChain);
    } finally {
      m.stop();
    }
  });

  it('renews at half the lifetime', () => {
    const nb = new Date(1_000_000);
    const na = new Date(1_000_000 + 3_600_000);
    expect(IdentityManager.renewalDelayMs(nb, na, 1_000_000)).toBe(1_800_000);
    expect(IdentityManager.renewalDelayMs(nb, na, 1_000_000 + 3_000_000)).toBe(0);
  });

  it('surfaces a refused token as an error', async () => {
    const m = new IdentityManager({ address: `127.0.0.1:${port}`, token: () => 'wrong', spiffeId: SPIFFE, ttlSeconds: 60, onIdentity: () => undefined });
    try {
      await expect(m.renew()).rejects.toThrow(/bad token/);
    } finally {
      m.stop();
    }
  });
});
