import type { FastifyError, FastifyInstance } from 'fastify';
import { isAviaryError, type ErrorKind } from '@aviary/errors';

/** The HTTP status for each canonical error kind; the only place this mapping lives. */
export const httpStatusByKind: Readonly<Record<ErrorKind, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  PAYLOAD_TOO_LARGE: 413,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 412,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  INTERNAL: 500,
};

/** Every error answers `{code, message, details?}`; internal errors never leak their message. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (isAviaryError(err)) {
      const status = httpStatusByKind[err.kind];
      if (status >= 500) request.log.error({ err }, 'request failed');
      return reply.status(status).send(err.toJSON());
    }
    const fe = err as FastifyError;
    if (fe.validation !== undefined) {
      const details = fe.validation.map((v) => ({ path: `${fe.validationContext ?? 'body'}${v.instancePath}`, message: v.message ?? 'invalid' }));
      return reply.status(400).send({ code: 'BAD_REQUEST', message: `invalid request ${fe.validationContext ?? 'body'}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details });
    }
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ code: 'PAYLOAD_TOO_LARGE', message: fe.message });
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(fe.statusCode).send({ code: fe.code ?? 'BAD_REQUEST', message: fe.message });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ code: 'INTERNAL', message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
}
