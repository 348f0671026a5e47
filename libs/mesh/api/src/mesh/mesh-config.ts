import Type, { type Static } from 'typebox';
import { Closed, Duration, opt, StringList, StringMap, UInt32 } from '../common';

/**
 * The part of Istio's MeshConfig (istio.io/latest/docs/reference/config/istio.mesh.v1alpha1)
 * that Aviary reads: `extensionProviders` of kinds `envoyExtAuthzHttp` and `envoyExtAuthzGrpc`,
 * for AuthorizationPolicy action CUSTOM. Closed: any other field is refused at boot rather
 * than accepted and ignored.
 */

export const ExtAuthzRequestBody = Closed({
  maxRequestBytes: opt(UInt32),
  allowPartialMessage: opt(Type.Boolean()),
  packAsBytes: opt(Type.Boolean()),
});
export type ExtAuthzRequestBody = Static<typeof ExtAuthzRequestBody>;

export const EnvoyExternalAuthorizationHttpProvider = Closed({
  /** `[<namespace>/]<hostname>` of the authorization service (a mesh service). */
  service: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  timeout: opt(Duration),
  pathPrefix: opt(Type.String()),
  failOpen: opt(Type.Boolean()),
  statusOnError: opt(Type.String()),
  includeRequestHeadersInCheck: opt(StringList),
  includeAdditionalHeadersInCheck: opt(StringMap),
  includeRequestBodyInCheck: opt(ExtAuthzRequestBody),
  headersToUpstreamOnAllow: opt(StringList),
  headersToDownstreamOnDeny: opt(StringList),
  headersToDownstreamOnAllow: opt(StringList),
});
export type EnvoyExternalAuthorizationHttpProvider = Static<typeof EnvoyExternalAuthorizationHttpProvider>;

export const EnvoyExternalAuthorizationGrpcProvider = Closed({
  service: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  timeout: opt(Duration),
  failOpen: opt(Type.Boolean()),
  statusOnError: opt(Type.String()),
  includeRequestBodyInCheck: opt(ExtAuthzRequestBody),
});
export type EnvoyExternalAuthorizationGrpcProvider = Static<typeof EnvoyExternalAuthorizationGrpcProvider>;

export const ExtensionProvider = Closed({
  name: Type.String({ minLength: 1 }),
  envoyExtAuthzHttp: opt(EnvoyExternalAuthorizationHttpProvider),
  envoyExtAuthzGrpc: opt(EnvoyExternalAuthorizationGrpcProvider),
});
export type ExtensionProvider = Static<typeof ExtensionProvider>;

export const MeshConfigSchema = Closed(
  { extensionProviders: opt(Type.Array(ExtensionProvider)) },
  { description: 'Mesh-wide configuration (the supported part of Istio MeshConfig).' },
);
export type MeshConfig = Static<typeof MeshConfigSchema>;
