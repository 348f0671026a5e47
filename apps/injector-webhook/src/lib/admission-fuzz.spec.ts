import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAdmissionReview } from './admission';
import { testCertificate, testInjector } from './testing';
import { meshValidator } from './validator';
import { buildWebhookServer, type WebhookServer } from './webhook-server';

// Property-based fuzzing of the AdmissionReview handler (both webhooks). Run counts are
// recorded in docs/security.md; change both together.
const fuzzRuns = { text: 2000, reviews: 1500, mutatedFixture: 1000 } as const;

const fixture = readFileSync(new URL('./__fixtures__/admission-review.json', import.meta.url), 'utf8');
const pod = (JSON.parse(fixture) as { request: { object: unknown } }).request.object;

describe('AdmissionReview handler under fuzzing', () => {
  const t = testInjector();
  let server: WebhookServer;
  beforeAll(() => {
    server = buildWebhookServer({ injector: t.injector, validator: meshValidator, metrics: t.metrics, logger: t.logger, bodyLimit: 256 * 1024, certificate: testCertificate() });
  });
  afterAll(async () => server.close());

  /** Every body gets an AdmissionReview echoing its uid (200) or a typed 400/413: never a 5xx. */
  async function answers(path: string, body: string, uid?: string): Promise<void> {
    const res = await server.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload: body });
    expect(res.statusCode, res.body).toBeLessThan(500);
    if (res.statusCode === 200) {
      const review = res.json() as { kind: string; response: { uid: string; allowed: boolean; status?: { code: number } } };
      expect(review.kind).toBe('AdmissionReview');
      if (uid !== undefined) expect(review.response.uid).toBe(uid);
      if (!review.response.allowed) expect(review.response.status?.code).toBeLessThan(500);
    } else {
      expect([400, 413]).toContain(res.statusCode);
      expect(res.json()).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
  }

  it('parses or refuses any text with a typed error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 4 })), (text) => {
        try {
          parseAdmissionReview(text);
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ADMISSION_REVIEW_INVALID');
        }
      }),
      { numRuns: fuzzRuns.text },
    );
  });

  it('answers any well-formed review of any object on /inject and /validate without a 5xx', async () => {
    const object = fc.oneof(fc.constant(pod), fc.anything({ maxDepth: 5 }), fc.record({ metadata: fc.anything({ maxDepth: 2 }), spec: fc.anything({ maxDepth: 4 }) }, { requiredKeys: [] }));
    const review = fc.record({
      uid: fc.string({ minLength: 1, maxLength: 40 }),
      kind: fc.oneof(fc.constant({ group: '', version: 'v1', kind: 'Pod' }), fc.anything({ maxDepth: 1 })),
      operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT', undefined),
      namespace: fc.option(fc.string({ maxLength: 70 }), { nil: undefined }),
      object,
    });
    await fc.assert(
      fc.asyncProperty(review, fc.constantFrom('/inject', '/validate'), async (request, path) => {
        await answers(path, JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request }), request.uid);
      }),
      { numRuns: fuzzRuns.reviews },
    );
  });

  it('answers any single-character change of a real review without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.string({ maxLength: 3 }), fc.constantFrom('/inject', '/validate'), async (at, insert, path) => {
        const i = at % (fixture.length + 1);
        await answers(path, fixture.slice(0, i) + insert + fixture.slice(i + 1));
      }),
      { numRuns: fuzzRuns.mutatedFixture },
    );
  });
});
