export { caProtoText, CA_SERVICE, CREATE_CERTIFICATE_METHOD, caProtoOptions, caProtoRoot, loadCaPackage } from './ca-proto';
export type { IstioCertificateRequest, IstioCertificateResponse } from './ca-proto';
