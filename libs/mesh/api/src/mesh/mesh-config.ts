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

/** HTTP status codes Envoy's `envoy.type.v3.StatusCode` names (what `statusOnError` may be). */
export const envoyStatusCodes: Readonly<Record<string, string>> = Object.freeze({
  '100': 'Continue', '200': 'OK', '201': 'Created', '202': 'Accepted', '203': 'NonAuthoritativeInformation', '204': 'NoContent',
  '205': 'ResetContent', '206': 'PartialContent', '207': 'MultiStatus', '208': 'AlreadyReported', '226': 'IMUsed', '300': 'MultipleChoices',
  '301': 'MovedPermanently', '302': 'Found', '303': 'SeeOther', '304': 'NotModified', '305': 'UseProxy', '307': 'TemporaryRedirect',
  '308': 'PermanentRedirect', '400': 'BadRequest', '401': 'Unauthorized', '402': 'PaymentRequired', '403': 'Forbidden', '404': 'NotFound',
  '405': 'MethodNotAllowed', '406': 'NotAcceptable', '407': 'ProxyAuthenticationRequired', '408': 'RequestTimeout', '409': 'Conflict', '410': 'Gone',
  '411': 'LengthRequired', '412': 'PreconditionFailed', '413': 'PayloadTooLarge', '414': 'URITooLong', '415': 'UnsupportedMediaType',
  '416': 'RangeNotSatisfiable', '417': 'ExpectationFailed', '421': 'MisdirectedRequest', '422': 'UnprocessableEntity', '423': 'Locked',
  '424': 'FailedDependency', '426': 'UpgradeRequired', '428': 'PreconditionRequired', '429': 'TooManyRequests', '431': 'RequestHeaderFieldsTooLarge',
  '500': 'InternalServerError', '501': 'NotImplemented', '502': 'BadGateway', '503': 'ServiceUnavailable', '504': 'GatewayTimeout',
  '505': 'HTTPVersionNotSupported', '506': 'VariantAlsoNegotiates', '507': 'InsufficientStorage', '508': 'LoopDetected', '510': 'NotExtended',
  '511': 'NetworkAuthenticationRequired',
});
