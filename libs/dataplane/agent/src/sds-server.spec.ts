import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessageOf, encodeMessageOf, TypeUrl, type CanonicalMessage } from '@aviary/xds-protos';
import { SdsServer, tlsCertificateSecret, validationContextSecret, type SdsEvent } from './sds-server';

const dir = mkdtempSync(join(tmpdir(), 'aviary-sds-'));
const socket = join(dir, 'sds.sock');
const events: SdsEvent[] = [];
const server = new SdsServer((e) => events.push(e));
const client = new grpc.Client(`unix:${socket}`, grpc.credentials.createInsecure());

/** A raw SDS stream: requests encoded with the Envoy protos, responses decoded to canonical form. */
function open(method: 'StreamSecrets' | 'DeltaSecrets') {
  const [req, res] = method === 'StreamSecrets' ? ['DiscoveryRequest', 'DiscoveryResponse'] : ['DeltaDiscoveryRequest', 'DeltaDiscoveryResponse'];
  const call = client.makeBidiStreamRequest(
    `/envoy.service.secret.v3.SecretDiscoveryService/${method}`,
    (m: object) => Buffer.from(encodeMessageOf(`envoy.service.discovery.v3.${req}`, m)),
    (b: Buffer) => decodeMessageOf(`envoy.service.discovery.v3.${res}`, b),
  );
  const queue: CanonicalMessage[] = [];
  const waiters: ((m: CanonicalMessage) => void)[] = [];
  call.on('data', (m: CanonicalMessage) => (waiters.length > 0 ? waiters.shift()!(m) : queue.push(m)));
  call.on('error', () => undefined);
  return {
    send: (m: object) => call.write({ type_url: TypeUrl.Secret, ...m }),
    next: (): Promise<CanonicalMessage> => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))),
    get pending() {
      return queue.length;
    },
    close: () => call.cancel(),
  };
}

const names = (r: CanonicalMessage): string[] => ((r.resources as CanonicalMessage[]) ?? []).map((x) => (x.name ?? (x.resource as CanonicalMessage).name) as string);
const pem = (n: number) => `-----BEGIN CERTIFICATE-----\n${'A'.repeat(n)}\n-----END CERTIFICATE-----\n`;

beforeAll(async () => {
  await server.listen(socket);
});
afterAll(async () => {
  client.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('SdsServer', () => {
  it('SotW: answers only when it holds a requested secret, pushes updates, and reports ACK, NACK and unknown names', async () => {
    const s = open('StreamSecrets');
    s.send({ node: { id: 'sidecar~1.2.3.4~a.ns~ns.svc.cluster.local' }, resource_names: ['default', 'kubernetes://gw-cred'] });
    await new Promise((r) => setTimeout(r, 50));
    expect(s.pending).toBe(0);
    expect(events).toContainEqual({ event: 'unknown_secret', protocol: 'sotw', names: ['kubernetes://gw-cred'] });
    server.set(tlsCertificateSecret('default', pem(4), 'key-1'));
    const first = await s.next();
    expect(names(first)).toEqual(['default']);
    expect((first.resources as CanonicalMessage[])[0]).toMatchObject({ tls_certificate: { private_key: { inline_string: 'key-1' } } });
    s.send({ resource_names: ['default', 'kubernetes://gw-cred'], version_info: first.version_info, response_nonce: first.nonce });
    await new Promise((r) => setTimeout(r, 50)); // the ACK lands before the next push (a stale nonce is ignored)
    server.set(tlsCertificateSecret('default', pem(8), 'key-2'));
    const second = await s.next();
    expect((second.resources as CanonicalMessage[])[0]).toMatchObject({ tls_certificate: { private_key: { inline_string: 'key-2' } } });
    s.send({ resource_names: ['default', 'kubernetes://gw-cred'], version_info: first.version_info, response_nonce: second.nonce, error_detail: { code: 3, message: 'bad key' } });
    await new Promise((r) => setTimeout(r, 50));
    expect(events.filter((e) => e.event === 'ack' || e.event === 'nack').map((e) => e.event)).toEqual(['ack', 'nack']);
    s.close();
  });

  it('delta: sends what was subscribed, then only changed secrets; nothing after an unsubscribe', async () => {
    const s = open('DeltaSecrets');
    s.send({ node: { id: 'router~1.2.3.4~gw.ns~ns.svc.cluster.local' }, resource_names_subscribe: ['ROOTCA', 'default'] });
    server.set(validationContextSecret('ROOTCA', [pem(12)]));
    const first = await s.next();
    expect(names(first).sort()).toEqual(['ROOTCA', 'default']);
    s.send({ response_nonce: first.nonce });
    server.set(validationContextSecret('ROOTCA', [pem(12), pem(16)]));
    const second = await s.next();
    expect(names(second)).toEqual(['ROOTCA']);
    s.send({ response_nonce: second.nonce, resource_names_unsubscribe: ['ROOTCA'] });
    await new Promise((r) => setTimeout(r, 50));
    server.set(validationContextSecret('ROOTCA', [pem(20)]));
    server.set(tlsCertificateSecret('default', pem(24), 'key-3'));
    expect(names(await s.next())).toEqual(['default']);
    s.close();
  });

  it('refuses a secret Envoy could not decode, with the field path', () => {
    expect(() => server.set({ name: 'default', tls_certificate: { certificate_chain: 'not-a-data-source' } })).toThrow(/certificate_chain/);
  });
});
