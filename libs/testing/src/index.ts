export { OpenSsl, P256, RSA2048 } from './openssl';
export { RawAdsStream } from './raw-ads';
export { SnapshotCache } from './snapshot-cache';
export type { SnapshotCacheOptions } from './snapshot-cache';
export { testEnvoy, envoyValidate, BOOTSTRAP_TYPE } from './envoy';
export type { TestEnvoy, TestEnvoyOptions, EnvoyValidation } from './envoy';
export { TestSdsServer } from './sds';
