import { createPrivateKey, X509Certificate } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityManager, type IdentityEvent, type WorkloadCertificate } from './identity';
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

  it('computes half-life and back-off', () => {
    expect(IdentityManager.renewalDelayMs(new Date(1_000_000), new Date(4_600_000), 1_000_000)).toBe(1_800_000);
    expect(IdentityManager.renewalDelayMs(new Date(1_000_000), new Date(4_600_000), 4_000_000)).toBe(0);
    expect([1, 2, 3, 4, 10].map((n) => IdentityManager.backoffMs(n, 500, 30_000))).toEqual([500, 1000, 2000, 4000, 30_000]);
  });
});
