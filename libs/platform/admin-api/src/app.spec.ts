import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import Type from 'typebox';
import { AviaryError } from '@aviary/errors';
import { buildAdminApp, readinessReport, type AdminApp } from './app';
import { listenAdmin } from './server';

let ready = true;
const apps: AdminApp[] = [];

async function build(token = 'secret-token'): Promise<AdminApp> {
  const app = await buildAdminApp(
    {
      app: 'test',
      version: '1.2.3',
      description: 'test app',
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      adminToken: token,
      bodyLimit: 1024,
      readiness: [{ name: 'nats', ready: () => ready }],
    },
    (scope) => {
      scope.post('/api/v1/echo', { schema: { body: Type.Object({ name: Type.String({ minLength: 1 }) }) } }, async (req) => req.body);
      scope.get('/api/v1/missing', async () => {
        throw new AviaryError('NOT_FOUND', 'THING_NOT_FOUND', 'no such thing', { name: 'x' });
      });
      scope.get('/api/v1/boom', async () => {
        throw new Error('secret internal detail');
      });
    },
  );
  apps.push(app);
  return app;
}

afterAll(async () => {
  for (const app of apps) await app.close();
});

describe('admin API', () => {
  it('answers /healthz, /version and /metrics', async () => {
    const app = await build();
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await app.inject('/version')).json()).toMatchObject({ app: 'test', version: '1.2.3' });
    await app.inject('/healthz');
    const metrics = await app.inject('/metrics');
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toContain('aviary_admin_requests_total{route="/healthz",method="GET",status="2xx"}');
  });

  it('is ready only when its dependencies are', async () => {
    const app = await build();
    ready = true;
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    ready = false;
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not ready', checks: { nats: false } });
    ready = true;
  });

  it('reports an optional check without turning unready (the proxy agent\'s NATS)', () => {
    const report = readinessReport([
      { name: 'nats', ready: () => false, required: false },
      { name: 'envoy', ready: () => true },
    ]);
    expect(report).toEqual({ ok: true, checks: { nats: false, envoy: true } });
    expect(readinessReport([{ name: 'nats', ready: () => true, required: false }, { name: 'envoy', ready: () => { throw new Error('x'); } }])).toEqual({ ok: false, checks: { nats: true, envoy: false } });
  });

  it('serves OpenAPI JSON and the docs UI', async () => {
    const app = await build();
    const spec = (await app.inject('/docs/json')).json() as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz', '/metrics', '/version', '/api/v1/echo']));
    const ui = await app.inject('/docs/');
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
  });

  it('requires the bearer token on writes', async () => {
    const app = await build();
    const body = { name: 'x' };
    expect((await app.inject({ method: 'POST', url: '/api/v1/echo', payload: body })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/api/v1/echo', payload: body, headers: { authorization: 'Bearer wrong' } })).json()).toMatchObject({ code: 'UNAUTHENTICATED' });
    const ok = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: body, headers: { authorization: 'Bearer secret-token' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual(body);
  });

  it('refuses writes when no token is configured', async () => {
    const app = await build('');
    const res = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: { name: 'x' }, headers: { authorization: 'Bearer ' } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'ADMIN_WRITES_DISABLED' });
  });

  it('maps typed errors, validation errors, body limits and unknown errors to {code, message, details}', async () => {
    const app = await build();
    const auth = { authorization: 'Bearer secret-token' };
    expect((await app.inject('/api/v1/missing')).json()).toEqual({ code: 'THING_NOT_FOUND', message: 'no such thing', details: { name: 'x' } });
    const invalid = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: { name: '' }, headers: auth });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toMatchObject({ code: 'BAD_REQUEST', details: [{ path: 'body/name' }] });
    const big = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: { name: 'x'.repeat(5000) }, headers: auth });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    const boom = await app.inject('/api/v1/boom');
    expect(boom.statusCode).toBe(500);
    expect(boom.json()).toEqual({ code: 'INTERNAL', message: 'internal error' });
    expect((await app.inject('/nope')).json()).toEqual({ code: 'NOT_FOUND', message: 'no route GET /nope' });
  });

  it('serves over a real socket', async () => {
    const app = await build();
    const port = await listenAdmin(app, '127.0.0.1', 0);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await res.json()).toEqual({ status: 'ok' });
  });
});
