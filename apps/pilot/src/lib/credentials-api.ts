import Type from 'typebox';
import { AviaryError } from '@aviary/errors';
import type { AdminApp } from '@aviary/admin-api';
import type { CredentialMetadata, KvCredentialStore } from '@aviary/config-store';
import { MAX_CREDENTIAL_FIELD_BYTES } from '@aviary/pki';

/** The part of the local secret store the API uses. */
export type CredentialStore = Pick<KvCredentialStore, 'put' | 'get' | 'list' | 'delete'>;

const Pem = (description: string) => Type.String({ minLength: 1, maxLength: MAX_CREDENTIAL_FIELD_BYTES, description });
const CredentialBody = Type.Object(
  {
    certChain: Type.Optional(Pem('PEM certificate chain, leaf first (as tls.crt of a kubernetes.io/tls Secret)')),
    privateKey: Type.Optional(Pem('PEM private key of the leaf (tls.key); stored, never returned')),
    caCert: Type.Optional(Pem('PEM CA certificates client certificates must chain to (ca.crt), for a Gateway server with tls.mode MUTUAL')),
  },
  { additionalProperties: false },
);
const Certificate = Type.Object({
  subject: Type.String(),
  issuer: Type.String(),
  dnsNames: Type.Array(Type.String()),
  notBefore: Type.String({ format: 'date-time' }),
  notAfter: Type.String({ format: 'date-time' }),
  sha256: Type.String({ description: 'SHA-256 fingerprint of the DER, hex' }),
});
const Metadata = Type.Object({
  namespace: Type.String(),
  name: Type.String(),
  revision: Type.String({ description: 'changes with every write' }),
  updatedAt: Type.String({ format: 'date-time' }),
  hasPrivateKey: Type.Boolean(),
  certificates: Type.Array(Certificate, { description: 'the chain, leaf first' }),
  caCertificates: Type.Array(Certificate),
});
const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) });
const NsParams = Type.Object({ namespace: Type.String({ maxLength: 63 }) });
const NameParams = Type.Object({ namespace: Type.String({ maxLength: 63 }), name: Type.String({ maxLength: 253 }) });

const notFound = (namespace: string, name: string): AviaryError => new AviaryError('NOT_FOUND', 'CREDENTIAL_NOT_FOUND', `credential ${namespace}/${name} not found`);

/**
 * Pilot's local secret store API (local mode's TLS Secrets): Gateway servers and
 * DestinationRules name a credential by `credentialName`, resolved in the proxy's namespace as
 * Istio does with Secrets. Writes need the admin token; reads return metadata only.
 */
export function credentialsApi(store: CredentialStore) {
  return async (root: AdminApp): Promise<void> => {
    // The config API reads every body as text (manifests); this API takes JSON objects.
    await root.register(async (app: AdminApp) => {
      app.removeContentTypeParser('application/json');
      app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
        try {
          done(null, JSON.parse(body as string) as unknown);
        } catch (err) {
          done(new AviaryError('INVALID_ARGUMENT', 'BODY_INVALID', `the body is not JSON: ${(err as Error).message}`), undefined);
        }
      });

      app.put(
        '/api/v1/credentials/:namespace/:name',
        {
          schema: {
            tags: ['credentials'],
            summary: 'Create or replace a TLS credential (certificate chain and key, and/or CA certificates)',
            description:
              'The local counterpart of a kubernetes.io/tls Secret for Gateway `tls.credentialName`: a server of a gateway in `namespace` naming `name` gets certChain/privateKey; `<name>-cacert` (or tls.mode MUTUAL) gets caCert. Checked before it is stored: PEM that parses, each field at most 64 KiB, the key of the first certificate; a 400 names the field. Replacing a credential pushes the new certificate to the gateways by SDS; established connections stay up. Answers metadata only.',
            security: [{ bearerAuth: [] }],
            params: NameParams,
            body: CredentialBody,
            response: { 200: Metadata, 201: Metadata, 400: ErrorBody },
          },
        },
        async (req, reply) => {
          const { metadata, created } = await store.put(req.params.namespace, req.params.name, req.body);
          return reply.status(created ? 201 : 200).send(metadata);
        },
      );
      app.get(
        '/api/v1/credentials',
        { schema: { tags: ['credentials'], summary: 'List credentials of every namespace (metadata only)', response: { 200: Type.Object({ items: Type.Array(Metadata) }) } } },
        async () => ({ items: await store.list() }),
      );
      app.get(
        '/api/v1/credentials/:namespace',
        { schema: { tags: ['credentials'], summary: 'List credentials of one namespace (metadata only)', params: NsParams, response: { 200: Type.Object({ items: Type.Array(Metadata) }), 400: ErrorBody } } },
        async (req) => ({ items: await store.list(req.params.namespace) }),
      );
      app.get(
        '/api/v1/credentials/:namespace/:name',
        { schema: { tags: ['credentials'], summary: 'Get one credential\'s metadata (names, validity, fingerprints; never the key)', params: NameParams, response: { 200: Metadata, 400: ErrorBody, 404: ErrorBody } } },
        async (req): Promise<CredentialMetadata> => {
          const m = await store.get(req.params.namespace, req.params.name);
          if (m === undefined) throw notFound(req.params.namespace, req.params.name);
          return m;
        },
      );
      app.delete(
        '/api/v1/credentials/:namespace/:name',
        {
          schema: {
            tags: ['credentials'],
            summary: 'Delete a credential (its data is purged); servers naming it stop serving TLS',
            security: [{ bearerAuth: [] }],
            params: NameParams,
            response: { 200: Type.Object({ deleted: Type.Boolean() }), 400: ErrorBody, 404: ErrorBody },
          },
        },
        async (req) => {
          if (!(await store.delete(req.params.namespace, req.params.name))) throw notFound(req.params.namespace, req.params.name);
          return { deleted: true };
        },
      );
    });
  };
}
