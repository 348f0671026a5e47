import { createServer, type Server, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwksResolution } from '@aviary/mesh-model';
import { JwksResolver, normalizeJwks } from './jwks';

const KEYS = { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', kid: 'k1' }] };

/** A real HTTP server on loopback whose answer per path the test sets. */
let server: Server;
let base = '';
const answers = new Map<string, (res: ServerResponse) => void>();
const hits = new Map<string, number>();

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    const answer = answers.get(req.url ?? '');
    if (answer) answer(res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function resolver(over: Partial<ConstructorParameters<typeof JwksResolver>[0]> = {}) {
  const changes: ReadonlyMap<string, JwksResolution>[] = [];
  const r = new JwksResolver({ timeoutMs: 300, maxBytes: 1_000, refreshMs: 60_000, retryMs: 60_000, maxUris: 10, logger: pino({ level: 'silent' }), onChange: (m) => changes.push(m), ...over });
  return { r, changes };
}

async function until(f: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((res) => setTimeout(res, 10));
  }
}

describe('JwksResolver (pilot fetches jwksUri key sets)', () => {
  it('fetches, normalizes and reports a key set', async () => {
    answers.set('/ok', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(KEYS, null, 2)));
    const { r, changes } = resolver();
    r.sync(new Map([[`${base}/ok`, undefined]]));
    await until(() => changes.length > 0);
    expect(r.current().get(`${base}/ok`)).toEqual({ jwks: JSON.stringify(KEYS) });
    r.stop();
  });

  it.each([
    ['a status that is not 2xx', '/missing', undefined, 'HTTP 404'],
    ['a document larger than the limit', '/big', (res: ServerResponse) => res.writeHead(200).end(JSON.stringify({ keys: [{ kty: 'RSA', n: 'x'.repeat(5_000) }] })), 'more than the 1000'],
    ['not JSON', '/html', (res: ServerResponse) => res.writeHead(200).end('<html>'), 'not JSON'],
    ['JSON without keys', '/empty', (res: ServerResponse) => res.writeHead(200).end('{"keys":[]}'), 'no "keys"'],
    ['a redirect', '/redirect', (res: ServerResponse) => res.writeHead(302, { location: '/ok' }).end(), 'fetch failed'],
    ['no answer in time (the rule timeout wins)', '/slow', () => undefined, 'timed out after 200 ms'],
  ])('%s is an error (the translator then fails closed)', async (_what, path, answer, message) => {
    if (answer) answers.set(path, answer);
    const { r, changes } = resolver();
    r.sync(new Map([[`${base}${path}`, path === '/slow' ? 200 : undefined]]));
    await until(() => changes.length > 0);
    const got = r.current().get(`${base}${path}`);
    expect(got && 'error' in got ? got.error : '').toContain(message);
    r.stop();
  });

  it('follows an issuer\'s OpenID Connect discovery document to its jwks_uri', async () => {
    answers.set('/issuer/.well-known/openid-configuration', (res) => res.writeHead(200).end(JSON.stringify({ issuer: `${base}/issuer`, jwks_uri: `${base}/issuer/keys` })));
    answers.set('/issuer/keys', (res) => res.writeHead(200).end(JSON.stringify(KEYS)));
    answers.set('/nokeys/.well-known/openid-configuration', (res) => res.writeHead(200).end('{"issuer":"x"}'));
    const { r, changes } = resolver();
    r.sync(new Map([[`${base}/issuer/.well-known/openid-configuration`, undefined], [`${base}/nokeys/.well-known/openid-configuration`, undefined]]));
    await until(() => r.current().size === 2);
    expect(r.current().get(`${base}/issuer/.well-known/openid-configuration`)).toEqual({ jwks: JSON.stringify(KEYS) });
    expect(r.current().get(`${base}/nokeys/.well-known/openid-configuration`)).toEqual({ error: expect.stringContaining('no http(s) "jwks_uri"') });
    expect(changes.length).toBeGreaterThan(0);
    r.stop();
  });

  it('a failed refresh keeps the last good key set; retries come at the retry interval', async () => {
    let up = true;
    answers.set('/flaky', (res) => (up ? res.writeHead(200).end(JSON.stringify(KEYS)) : res.writeHead(503).end()));
    hits.delete('/flaky');
    const { r, changes } = resolver({ refreshMs: 50, retryMs: 50 });
    r.sync(new Map([[`${base}/flaky`, undefined]]));
    await until(() => changes.length > 0);
    up = false;
    await until(() => (hits.get('/flaky') ?? 0) >= 3);
    expect(r.current().get(`${base}/flaky`)).toEqual({ jwks: JSON.stringify(KEYS) });
    r.stop();
  });

  it('forgets URIs the model no longer names, and bounds how many it follows', async () => {
    answers.set('/ok', (res) => res.writeHead(200).end(JSON.stringify(KEYS)));
    const { r, changes } = resolver({ maxUris: 1 });
    r.sync(new Map([[`${base}/ok`, undefined]]));
    await until(() => changes.length > 0);
    r.sync(new Map([[`${base}/ok`, undefined], [`${base}/other`, undefined]]));
    expect(r.current().get(`${base}/other`)).toEqual({ error: 'more than 1 distinct jwksUri values; not fetched' });
    r.sync(new Map());
    expect(r.current().size).toBe(0);
    r.stop();
  });
});

describe('normalizeJwks', () => {
  it('refuses a key without kty', () => {
    expect(() => normalizeJwks('{"keys":[{"n":"x"}]}')).toThrow('kty');
  });
});
