import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { installWriteAuth } from './auth';
import { installErrorHandling } from './errors';

export interface ReadinessCheck {
  readonly name: string;
  /** True when this dependency is usable now. Must be cheap and must not throw. */
  readonly ready: () => boolean;
  /**
   * False: reported in `checks` but the component stays ready without it (a dependency it can
   * serve through the loss of, e.g. the proxy agent's NATS). Default true.
   */
  readonly required?: boolean;
}

/** `/readyz`: every check's state, and ready when every required check is. */
export function readinessReport(checks: readonly ReadinessCheck[]): { readonly ok: boolean; readonly checks: Record<string, boolean> } {
  let ok = true;
  const states: Record<string, boolean> = {};
  for (const c of checks) {
    let state = false;
    try {
      state = c.ready();
    } catch {
      state = false;
    }
    states[c.name] = state;
    if (!state && c.required !== false) ok = false;
  }
  return { ok, checks: states };
}

export interface AdminOptions {
  readonly app: string;
  readonly version: string;
  readonly description: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly adminToken: string;
  readonly bodyLimit: number;
  readonly readiness: readonly ReadinessCheck[];
  /** Request timeout for the admin server, ms. */
  readonly requestTimeoutMs?: number;
}

export type AdminApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export const ErrorBody = Type.Object(
  { code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) },
  { $id: 'ErrorBody' },
);

/**
 * Builds the admin REST app every Aviary component mounts: health, readiness, metrics,
 * version, OpenAPI docs, typed errors and bearer auth on writes. `routes` registers the
 * component's own API under the same docs, auth and error handling. The app is not listening.
 */
export async function buildAdminApp(opts: AdminOptions, routes?: (app: AdminApp) => Promise<void> | void): Promise<AdminApp> {
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'admin-api' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    connectionTimeout: opts.requestTimeoutMs ?? 30_000,
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  installErrorHandling(app);
  installWriteAuth(app, opts.adminToken);
  countRequests(app, opts.registry);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: `Aviary ${opts.app} admin API`, description: opts.description, version: opts.version },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const Status = Type.Object({ status: Type.String(), checks: Type.Optional(Type.Record(Type.String(), Type.Boolean())) });
  app.get('/healthz', { schema: { tags: ['health'], summary: 'liveness: the process is up', response: { 200: Status } } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    { schema: { tags: ['health'], summary: 'readiness: every required dependency is usable (checks lists every dependency, optional ones too)', response: { 200: Status, 503: Status } } },
    async (_req, reply) => {
      const { ok, checks } = readinessReport(opts.readiness);
      return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks });
    },
  );
  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics', produces: ['text/plain'] } }, async (_req, reply) => {
    const body = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(body);
  });
  app.get(
    '/version',
    { schema: { tags: ['health'], summary: 'build version', response: { 200: Type.Object({ app: Type.String(), version: Type.String(), node: Type.String() }) } } },
    async () => ({ app: opts.app, version: opts.version, node: process.version }),
  );
  if (routes !== undefined) await app.register(async (scope) => routes(scope));
  await app.ready();
  return app;
}

function countRequests(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({
    name: 'aviary_admin_requests_total',
    help: 'Admin API requests by route template, method and status class',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    // routeOptions.url is the route template (a closed set); unmatched requests share one label.
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ route, method: request.method, status: `${Math.floor(reply.statusCode / 100)}xx` });
  });
}
