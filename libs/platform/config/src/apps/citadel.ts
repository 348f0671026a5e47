import Type from 'typebox';
import { commonOptions, Host, PortOrZero } from '../common';
import { defineConfig, option } from '../spec';

export const citadelConfig = defineConfig({
  app: 'citadel',
  summary: 'certificate authority for SPIFFE workload identities (Istio CA API)',
  options: {
    ...commonOptions('citadel', 15016),
    caHost: option(Host, '127.0.0.1', 'address the CA gRPC servers bind to'),
    caPort: option(PortOrZero, 8060, 'CA gRPC port, plaintext (loopback/dev only)'),
    caTlsPort: option(PortOrZero, 15013, 'CA gRPC port over TLS'),
    caTlsDnsNames: option(
      Type.String({ maxLength: 4096, pattern: '^([A-Za-z0-9.:-]+(,[A-Za-z0-9.:-]+)*)?$' }),
      '',
      'more comma-separated DNS names (IP literals become IP SANs) of the TLS port\'s serving certificate, e.g. the Service names proxies dial (localhost, citadel, aviary-citadel and caHost are always in it)',
    ),
    certTtlSeconds: option(Type.Integer({ minimum: 60, maximum: 366 * 86400 }), 86_400, 'default workload certificate lifetime'),
    maxCertTtlSeconds: option(Type.Integer({ minimum: 60, maximum: 366 * 86400 }), 7 * 86_400, 'longest workload certificate lifetime; longer requests are clamped'),
    keyAlgorithm: option(Type.Union([Type.Literal('ecdsa-p256'), Type.Literal('rsa-2048')]), 'ecdsa-p256', 'key algorithm for CA keys'),
    tokenReview: option(Type.Boolean(), false, 'authenticate CSRs with Kubernetes service-account tokens (TokenReview, audience istio-ca); join tokens keep working'),
    kubeconfig: option(Type.String(), '', 'kubeconfig file for the Kubernetes features (empty: $KUBECONFIG, ~/.kube/config, then in-cluster)'),
    trustBundleConfigMaps: option(Type.Boolean(), false, 'write the trust bundle to the ConfigMap istio-ca-root-cert (key root-cert.pem) in every namespace'),
    rootCertConfigMap: option(Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' }), 'istio-ca-root-cert', 'name of the trust bundle ConfigMap (trustBundleConfigMaps)'),
    caSecret: option(Type.String({ pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$' }), '', 'keep the CA state (roots and keys) in this Secret, <namespace>/<name> (empty: the data dir)'),
    caCertsDir: option(Type.String(), '', "plug-in CA directory in Istio's cacerts layout (empty: self-signed root in the data dir)"),
  },
});
