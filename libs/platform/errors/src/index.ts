export { AviaryError, isAviaryError, errorKinds } from './errors';
export type { ErrorKind, ErrorDetails } from './errors';
