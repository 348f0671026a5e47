export { OpenSsl, P256, RSA2048 } from './openssl';
export { RawAdsStream } from './raw-ads';
