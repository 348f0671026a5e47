import type { Identity } from './identity';

/**
 * The port through which the CA learns who is asking (linkerd2 `pkg/identity` `Validator`).
 * Adapters: `JoinTokenValidator` (local mode, here) and Kubernetes TokenReview with audience
 * `istio-ca` (issue 9, in a transport library). Implementations throw an UNAUTHENTICATED
 * `AviaryError` (TOKEN_*) for a token they do not accept.
 */
export interface TokenValidator {
  validate(token: string): Promise<Identity>;
}
