export { OpenSsl, P256, RSA2048 } from './openssl';
export { RawAdsStream } from './raw-ads';
export { CACHED_ENVOY_PATH, EnvoyProcess, envoyBinary, hasEnvoy, inlineRoutes, staticClusters, toBootstrapJson, unixGrpcCluster } from './envoy-process';
export type { XdsSet } from './envoy-process';
export { helloMesh, routerBootstrap, sidecarInboundBootstrap, staticSecrets, HELLO_HOST, ROUTER_LISTENER, inboundListener } from './hello-mesh';
export type { WorkloadCertFiles } from './hello-mesh';
