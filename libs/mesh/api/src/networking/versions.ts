/** apiVersions accepted for networking.istio.io kinds; the first entry is the storage version. */
export const networkingVersions = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;
/** apiVersions accepted for security.istio.io kinds; the first entry is the storage version. */
export const securityVersions = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;
/** Aviary's own kinds. */
export const aviaryNetworkingVersions = ['networking.aviary.dev/v1alpha1'] as const;
