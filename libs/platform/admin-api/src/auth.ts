import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

const readOnly = new Set(['GET', 'HEAD', 'OPTIONS']);

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Bearer-token auth on every non-GET route. With no token configured, writes are refused
 * (403) rather than left open.
 */
export function installWriteAuth(app: FastifyInstance, token: string): void {
  const expected = token === '' ? undefined : digest(token);
  app.addHook('onRequest', async (request, reply) => {
    if (readOnly.has(request.method)) return;
    const routeConfig = request.routeOptions.config as { public?: boolean } | undefined;
    if (routeConfig?.public === true) return;
    if (expected === undefined) {
      return reply.status(403).send({ code: 'ADMIN_WRITES_DISABLED', message: 'no admin token is configured (AVIARY_ADMIN_TOKEN); admin writes are refused' });
    }
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match === null || !timingSafeEqual(digest(match[1] as string), expected)) {
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer realm="aviary-admin"')
        .send({ code: 'UNAUTHENTICATED', message: 'a valid bearer token is required for admin writes' });
    }
  });
}
