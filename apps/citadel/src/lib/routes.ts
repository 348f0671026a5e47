import Type from 'typebox';
import type { AdminApp } from '@aviary/admin-api';
import { MAX_JOIN_TOKEN_TTL_SECONDS, type IssueResult } from '@aviary/ca';
import type { CitadelService } from './service';

/** Largest body of POST /api/v1/certificates (a CSR is a few KiB). */
export const MAX_CERTIFICATE_BODY_BYTES = 64 * 1024;

const ErrorRef = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) });
const Bundle = Type.Object({ version: Type.Integer(), roots: Type.Array(Type.String()) });
const Issued = Type.Object({
  certChain: Type.Array(Type.String(), { description: 'PEM, leaf first, root last' }),
  serial: Type.String(),
  identity: Type.String(),
  notBefore: Type.String({ format: 'date-time' }),
  notAfter: Type.String({ format: 'date-time' }),
  clamped: Type.Boolean({ description: 'the requested lifetime was cut to the maximum' }),
});
const Summary = Type.Object({
  serial: Type.String(),
  identity: Type.String(),
  kind: Type.String(),
  notBefore: Type.String(),
  notAfter: Type.String(),
  clamped: Type.Boolean(),
});

function issuedBody(r: IssueResult) {
  return { certChain: [...r.chain], serial: r.serialHex, identity: r.identity, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString(), clamped: r.clamped };
}

/**
 * Citadel's REST API. POST /api/v1/certificates is authenticated by the workload's own token
 * (so it is not an admin write); the other writes need the admin token (runtime auth hook).
 */
export function citadelRoutes(service: CitadelService) {
  const ca = service.ca;
  return (app: AdminApp): void => {
    app.post(
      '/api/v1/certificates',
      {
        bodyLimit: MAX_CERTIFICATE_BODY_BYTES,
        config: { public: true },
        schema: {
          tags: ['ca'],
          summary: 'sign a CSR for the caller (same semantics as gRPC CreateCertificate)',
          description: 'Authorization: Bearer <join token>. Only the CSR public key is used; the identity comes from the token.',
          security: [{ bearerAuth: [] }],
          body: Type.Object({
            csr: Type.String({ minLength: 1, maxLength: MAX_CERTIFICATE_BODY_BYTES, description: 'PEM PKCS#10 request' }),
            validityDuration: Type.Optional(Type.Integer({ minimum: 0, description: 'requested lifetime in seconds (0: default)' })),
          }),
          response: { 200: Issued, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 413: ErrorRef },
        },
      },
      async (request) => {
        const body = request.body as { csr: string; validityDuration?: number };
        const header = request.headers.authorization ?? '';
        const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
        const result = await service.createCertificate('rest', {
          csr: body.csr,
          ...(body.validityDuration === undefined ? {} : { validitySeconds: body.validityDuration }),
          credentials: { bearerToken: m === null ? undefined : m[1] },
        });
        return issuedBody(result);
      },
    );

    app.post(
      '/api/v1/tokens',
      {
        schema: {
          tags: ['ca'],
          summary: 'mint a join token for one namespace/service account (admin)',
          security: [{ bearerAuth: [] }],
          body: Type.Object({
            namespace: Type.String({ minLength: 1, maxLength: 63 }),
            serviceAccount: Type.String({ minLength: 1, maxLength: 253 }),
            ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_JOIN_TOKEN_TTL_SECONDS, description: 'seconds (default 3600)' })),
          }),
          response: { 200: Type.Object({ token: Type.String(), expiresAt: Type.String({ format: 'date-time' }) }), 400: ErrorRef, 401: ErrorRef, 403: ErrorRef },
        },
      },
      async (request) => {
        const body = request.body as { namespace: string; serviceAccount: string; ttl?: number };
        const { token, expiresAt } = ca.mintToken({ namespace: body.namespace, serviceAccount: body.serviceAccount, ttlSeconds: body.ttl ?? 3600 });
        request.log.info({ namespace: body.namespace, serviceAccount: body.serviceAccount, expiresAt: expiresAt.toISOString() }, 'join token minted');
        return { token, expiresAt: expiresAt.toISOString() };
      },
    );

    app.get(
      '/api/v1/certificates',
      { schema: { tags: ['ca'], summary: 'recently issued certificates, newest first', response: { 200: Type.Object({ items: Type.Array(Summary) }) } } },
      async () => ({
        items: [...ca.recent()].reverse().map((r) => ({ serial: r.serialHex, identity: r.identity, kind: r.kind, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString(), clamped: r.clamped })),
      }),
    );

    app.get('/api/v1/bundle', { schema: { tags: ['ca'], summary: 'the trust bundle (every root currently trusted)', response: { 200: Bundle } } }, async () => {
      const b = ca.bundle();
      return { version: b.version, roots: [...b.roots] };
    });

    app.post(
      '/api/v1/rotate',
      {
        schema: {
          tags: ['ca'],
          summary: 'rotate the root (admin): the new root joins the bundle before it signs; the old one stays until its leaves expire',
          security: [{ bearerAuth: [] }],
          response: { 200: Bundle, 401: ErrorRef, 403: ErrorRef, 412: ErrorRef, 503: ErrorRef },
        },
      },
      async (request) => {
        const b = await ca.rotate();
        request.log.info({ bundleVersion: b.version, roots: b.roots.length }, 'root rotated');
        return { version: b.version, roots: [...b.roots] };
      },
    );
  };
}
