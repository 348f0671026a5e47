/**
 * Gateway API status conditions (gateway-api.sigs.k8s.io/reference/spec, "Condition" types and
 * reasons), computed by the converter without a clock: pilot's status writer adds
 * `lastTransitionTime` (kept while a condition's status and reason hold) before it writes them.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

/** The reasons the spec defines for each condition Aviary writes (a closed set). */
export const reasons = {
  gatewayClass: { Accepted: ['Accepted', 'InvalidParameters'] },
  gateway: { Accepted: ['Accepted', 'Invalid'], Programmed: ['Programmed', 'Invalid'] },
  listener: {
    Accepted: ['Accepted', 'ProtocolConflict'],
    Conflicted: ['NoConflicts', 'ProtocolConflict'],
    Programmed: ['Programmed', 'Invalid'],
    ResolvedRefs: ['ResolvedRefs', 'RefNotPermitted', 'InvalidCertificateRef', 'InvalidRouteKinds'],
  },
  route: {
    Accepted: ['Accepted', 'NotAllowedByListeners', 'NoMatchingListenerHostname', 'NoMatchingParent', 'UnsupportedValue'],
    ResolvedRefs: ['ResolvedRefs', 'RefNotPermitted', 'InvalidKind', 'BackendNotFound'],
  },
} as const;

export function condition(type: string, ok: boolean, reason: string, message: string, generation: number): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message, observedGeneration: generation };
}

/** A status object with conditions, in the shape the Gateway API CRDs define. */
export interface ComputedStatus {
  readonly ref: { readonly kind: string; readonly namespace: string; readonly name: string };
  readonly status: Readonly<Record<string, unknown>>;
}
