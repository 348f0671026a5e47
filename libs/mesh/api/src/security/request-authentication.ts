import Type, { type Static } from 'typebox';
import { Closed, Duration, MatchLabelsSelector, opt, PolicyTargetReference, Resource, StringList } from '../common';
import { securityVersions } from '../networking/versions';

/** Field for field as istio.io/latest/docs/reference/config/security/request_authentication. */

export const JWTHeader = Closed({ name: Type.String(), prefix: opt(Type.String()) });

export const ClaimToHeader = Closed({ header: Type.String(), claim: Type.String() });

export const JWTRule = Closed({
  issuer: Type.String(),
  audiences: opt(StringList),
  jwksUri: opt(Type.String()),
  jwks: opt(Type.String()),
  fromHeaders: opt(Type.Array(JWTHeader)),
  fromParams: opt(StringList),
  fromCookies: opt(StringList),
  outputPayloadToHeader: opt(Type.String()),
  forwardOriginalToken: opt(Type.Boolean()),
  outputClaimToHeaders: opt(Type.Array(ClaimToHeader)),
  timeout: opt(Duration),
  spaceDelimitedClaims: opt(StringList),
});
export type JWTRule = Static<typeof JWTRule>;

export const RequestAuthenticationSpec = Closed({
  selector: opt(MatchLabelsSelector),
  targetRef: opt(PolicyTargetReference),
  targetRefs: opt(Type.Array(PolicyTargetReference)),
  jwtRules: opt(Type.Array(JWTRule)),
});
export type RequestAuthenticationSpec = Static<typeof RequestAuthenticationSpec>;

export const RequestAuthenticationSchema = Resource(
  'RequestAuthentication',
  securityVersions,
  RequestAuthenticationSpec,
  'Request (JWT) authentication for a workload (security.istio.io RequestAuthentication).',
);
export type RequestAuthentication = Static<typeof RequestAuthenticationSchema>;
