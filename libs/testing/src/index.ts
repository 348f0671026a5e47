export { OpenSsl, P256, RSA2048 } from './openssl';
