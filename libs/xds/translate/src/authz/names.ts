import { ExtensionTypeUrl } from '@aviary/xds-api';

/**
 * Type URLs (@aviary/xds-api's) and filter names of the security filters. The protos behind them
 * are in @aviary/xds-protos's default files.
 */
export const AT = {
  JwtAuthentication: ExtensionTypeUrl.JwtAuthentication,
  ExtAuthz: ExtensionTypeUrl.ExtAuthz,
  NetworkRBAC: ExtensionTypeUrl.NetworkRBAC,
} as const;

export const AN = {
  jwtAuthn: 'envoy.filters.http.jwt_authn',
  extAuthz: 'envoy.filters.http.ext_authz',
  /** The HTTP RBAC filter's name as Envoy writes its dynamic metadata namespace. */
  httpRbac: 'envoy.filters.http.rbac',
  networkRbac: 'envoy.filters.network.rbac',
} as const;

/** Key under which jwt_authn writes a verified token's payload (`payload_in_metadata`). */
export const JWT_PAYLOAD_KEY = 'payload';

/** Istio's shadow-rule stat prefix for CUSTOM policies; ext_authz runs only when one matched. */
export const EXT_AUTHZ_SHADOW_PREFIX = 'istio_ext_authz_';
export const EXT_AUTHZ_POLICY_PREFIX = 'istio-ext-authz-';
