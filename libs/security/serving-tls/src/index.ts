export { CertificateSource } from './certificate-source';
export type { ActiveCertificate, CertificateOrigin, CertificateSourceOptions, ServingCertificate, SignRequest } from './certificate-source';
export { BUNDLE_BUCKET, BUNDLE_KEY, followTrustBundle } from './trust-bundle';
export { ReloadableTlsProvider, mtlsServerCredentials } from './mtls-credentials';
export { proxylessXdsBootstrap, writeXdsClientFiles } from './proxyless';
export type { XdsClientFiles } from './proxyless';
