import { createPrivateKey, X509Certificate } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { citadelTlsSetting, IdentityManager, type IdentityEvent, type WorkloadCertificate } from './identity';
import { TestCitadel } from './testing.test-helper';

const SPIFFE = 'spiffe://cluster.local/ns/demo/sa/hello';
let citadel: TestCitadel;

beforeAll(async () => {
  citadel = await TestCitadel.start();
});
afterAll(() => citadel?.stop());

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('IdentityManager against citadel\'s CA', () => {
  it('gets a certificate for its own key with the join token, for the token\'s identity, and renews at half-life with a new key', async () => {
    const certs: WorkloadCertificate[] = [];
    const token = citadel.token();
    const m = new IdentityManager({ address: citadel.address, token: () => token, spiffeId: SPIFFE, ttlSeconds: 2, onCertificate: (c) => certs.push(c) });
    try {
      m.start();
      await until('the first certificate', () => certs.length === 1);
      const first = certs[0]!;
      const leaf = new X509Certificate(first.certChain);
      expect(leaf.checkPrivateKey(createPrivateKey(first.privateKey))).toBe(true);
      expect(leaf.subjectAltName).toBe(`URI:${SPIFFE}`);
      expect(first.caRoots).toEqual(citadel.ca.bundle().roots);
      expect(m.valid()).toBe(true);
      await until('a renewal', () => certs.length === 2, 5_000);
      expect(certs[1]!.version).toBe(2);
      expect(certs[1]!.privateKey).not.toBe(first.privateKey);
      expect(certs[1]!.serial).not.toBe(first.serial);
    } finally {
      m.stop();
    }
  });

  it('never gives up: counts and reports every failure, backs off, is invalid once expired, and recovers', async () => {
    const registry = new Registry();
    const events: { event: IdentityEvent; details: Record<string, unknown> }[] = [];
    const certs: WorkloadCertificate[] = [];
    const token = citadel.token();
    const m = new IdentityManager({
      address: citadel.address,
      token: () => token,
      spiffeId: SPIFFE,
      ttlSeconds: 2,
      registry,
      backoff: { initialMs: 50, maxMs: 200 },
      onCertificate: (c) => certs.push(c),
      onEvent: (event, details) => events.push({ event, details }),
    });
    try {
      m.start();
      await until('the first certificate', () => certs.length === 1);
      citadel.down = true;
      await until('the certificate to expire', () => events.some((e) => e.event === 'certificate_expired'), 5_000);
      expect(m.valid()).toBe(false);
      const failures = events.filter((e) => e.event === 'certificate_renewal_failed');
      expect(failures.length).toBeGreaterThanOrEqual(3);
      expect(failures[0]!.details).toMatchObject({ attempt: 1, retryInMs: 50, expired: false });
      expect(failures.map((f) => f.details['retryInMs'])).toContain(200);
      expect(failures.at(-1)!.details['err']).toMatch(/citadel is down/);
      const metric = await registry.getSingleMetricAsString('aviary_agent_certificate_request_failures_total');
      expect(metric).toMatch(new RegExp(`phase="renewal"} ${m.consecutiveFailures}$`, 'm'));
      // Still retrying after expiry: citadel comes back, a new certificate arrives.
      citadel.down = false;
      await until('a new certificate after the outage', () => certs.length === 2, 5_000);
      expect(m.valid()).toBe(true);
      expect(m.consecutiveFailures).toBe(0);
      expect(await registry.getSingleMetricAsString('aviary_agent_certificate_expiry_timestamp_seconds')).toContain(String(certs[1]!.notAfter.getTime() / 1000));
    } finally {
      citadel.down = false;
      m.stop();
    }
  });

  it('keeps retrying the first certificate while the token is refused', async () => {
    const events: IdentityEvent[] = [];
    const m = new IdentityManager({ address: citadel.address, token: () => 'not-a-token', spiffeId: SPIFFE, ttlSeconds: 60, backoff: { initialMs: 20, maxMs: 40 }, onCertificate: () => undefined, onEvent: (e) => events.push(e) });
    try {
      m.start();
      await until('three failures', () => events.length >= 3);
      expect(new Set(events)).toEqual(new Set(['certificate_request_failed']));
      expect(m.valid()).toBe(false);
    } finally {
      m.stop();
    }
  });

  it('with several citadel addresses, a failed request moves the next one to the next address', async () => {
    const { createServer } = await import('node:net');
    // A port nothing answers on: a citadel replica that died.
    const dead = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => resolve(port));
      });
    });
    const events: Array<[IdentityEvent, Record<string, unknown>]> = [];
    const certs: WorkloadCertificate[] = [];
    const token = citadel.token();
    const m = new IdentityManager({
      address: `127.0.0.1:${dead}`,
      otherAddresses: [citadel.address],
      token: () => token,
      spiffeId: SPIFFE,
      ttlSeconds: 60,
      backoff: { initialMs: 20, maxMs: 40 },
      onCertificate: (c) => certs.push(c),
      onEvent: (e, d) => events.push([e, d]),
    });
    try {
      m.start();
      await until('a certificate', () => certs.length === 1);
      expect(events.map(([e]) => e)).toEqual(['certificate_request_failed', 'certificate_issued']);
      expect(events[0]![1]).toMatchObject({ attempt: 1, nextAddress: citadel.address });
    } finally {
      m.stop();
    }
  });

  it('computes half-life and back-off', () => {
    expect(IdentityManager.renewalDelayMs(new Date(1_000_000), new Date(4_600_000), 1_000_000)).toBe(1_800_000);
    expect(IdentityManager.renewalDelayMs(new Date(1_000_000), new Date(4_600_000), 4_000_000)).toBe(0);
    expect([1, 2, 3, 4, 10].map((n) => IdentityManager.backoffMs(n, 500, 30_000))).toEqual([500, 1000, 2000, 4000, 30_000]);
  });
});

describe('IdentityManager over citadel\'s TLS port (Kubernetes: istio-ca-root-cert, projected token)', () => {
  const NAME = 'aviary-citadel.istio-system.svc';
  let tlsCitadel: TestCitadel;
  let other: TestCitadel;
  beforeAll(async () => {
    tlsCitadel = await TestCitadel.start({ tlsDnsNames: [NAME, 'localhost'] });
    other = await TestCitadel.start();
  });
  afterAll(() => {
    tlsCitadel?.stop();
    other?.stop();
  });

  const manager = (roots: () => string, serverName: string, certs: WorkloadCertificate[], events: IdentityEvent[]): IdentityManager => {
    const token = tlsCitadel.token();
    return new IdentityManager({
      address: tlsCitadel.tlsAddress!,
      token: () => token,
      spiffeId: SPIFFE,
      ttlSeconds: 600,
      tls: { roots, serverName },
      backoff: { initialMs: 20, maxMs: 40 },
      onCertificate: (c) => certs.push(c),
      onEvent: (e) => events.push(e),
    });
  };

  it('verifies citadel against the mesh roots and its Service name, then gets the certificate', async () => {
    const certs: WorkloadCertificate[] = [];
    const m = manager(() => tlsCitadel.ca.bundle().roots.join(''), NAME, certs, []);
    try {
      m.start();
      await until('the certificate over TLS', () => certs.length === 1);
      expect(new X509Certificate(certs[0]!.certChain).subjectAltName).toBe(`URI:${SPIFFE}`);
    } finally {
      m.stop();
    }
  });

  it('never sends the token to a citadel it cannot verify (other roots, wrong name); picks up new roots at the next attempt', async () => {
    const before = tlsCitadel.requests;
    for (const [roots, name] of [
      [() => other.ca.bundle().roots.join(''), NAME],
      [() => tlsCitadel.ca.bundle().roots.join(''), 'evil.istio-system.svc'],
    ] as const) {
      const events: IdentityEvent[] = [];
      const certs: WorkloadCertificate[] = [];
      const m = manager(roots, name, certs, events);
      try {
        m.start();
        await until('three failures', () => events.length >= 3);
        expect(new Set(events)).toEqual(new Set(['certificate_request_failed']));
        expect(certs).toEqual([]);
      } finally {
        m.stop();
      }
    }
    expect(tlsCitadel.requests).toBe(before);
    // The roots file is read at each attempt: once it holds citadel's root, the next one works.
    let roots = other.ca.bundle().roots.join('');
    const events: IdentityEvent[] = [];
    const certs: WorkloadCertificate[] = [];
    const m = manager(() => roots, NAME, certs, events);
    try {
      m.start();
      await until('a failure', () => events.length >= 1);
      roots = tlsCitadel.ca.bundle().roots.join('');
      await until('the certificate after the roots changed', () => certs.length === 1);
    } finally {
      m.stop();
    }
  });

  it('fails a request when the roots file holds no certificate', async () => {
    const events: IdentityEvent[] = [];
    const m = manager(() => '', NAME, [], events);
    try {
      await expect(m.renew()).rejects.toThrow(/no PEM certificate/);
    } finally {
      m.stop();
    }
  });
});

describe('citadelTlsSetting', () => {
  const base = { citadelTls: 'auto', platform: 'local', address: '127.0.0.1:8060', caRootPath: '', subjectAltName: '' } as const;
  it('auto: TLS in Kubernetes and at citadel\'s TLS port; plaintext for the local dev port', () => {
    expect(citadelTlsSetting(base)).toBeUndefined();
    expect(citadelTlsSetting({ ...base, platform: 'kubernetes', address: 'aviary-citadel.istio-system.svc:15013', caRootPath: '/r.pem' })).toEqual({ rootsPath: '/r.pem', serverName: 'aviary-citadel.istio-system.svc' });
    expect(citadelTlsSetting({ ...base, address: '127.0.0.1:15013', caRootPath: '/r.pem', subjectAltName: 'citadel' })).toEqual({ rootsPath: '/r.pem', serverName: 'citadel' });
    expect(citadelTlsSetting({ ...base, citadelTls: 'off', platform: 'kubernetes', address: 'c:15013' })).toBeUndefined();
  });

  it('takes a comma-separated list; auto needs every address on the same side of the TLS port', () => {
    expect(citadelTlsSetting({ ...base, address: '127.0.0.1:8060,127.0.0.1:18060' })).toBeUndefined();
    expect(citadelTlsSetting({ ...base, address: '127.0.0.1:15013,127.0.0.1:15013', caRootPath: '/r.pem' })).toEqual({ rootsPath: '/r.pem', serverName: '127.0.0.1' });
    expect(() => citadelTlsSetting({ ...base, address: '127.0.0.1:8060,127.0.0.1:15013' })).toThrow(/every address must be citadel's TLS port/);
    expect(() => citadelTlsSetting({ ...base, address: '127.0.0.1:8060,' })).toThrow(/expected host:port/);
  });

  it('refuses TLS without the roots to verify citadel with (fails closed)', () => {
    let code: string | undefined;
    try {
      citadelTlsSetting({ ...base, citadelTls: 'on' });
    } catch (err) {
      code = isAviaryError(err) ? err.code : undefined;
    }
    expect(code).toBe('AGENT_CA_ROOTS_REQUIRED');
  });
});
