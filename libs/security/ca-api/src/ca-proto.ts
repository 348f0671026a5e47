import { fromJSON, type PackageDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import caProto from '../proto/ca.proto?raw';

/**
 * Istio's CA API, `istio.v1.auth.IstioCertificateService` (libs/ca-api/proto/ca.proto, verbatim
 * from istio/api), shared by citadel (server) and the proxy (client). The file is imported as
 * text, so bundles carry it and there is no second copy.
 */
export const caProtoText: string = caProto;

export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CREATE_CERTIFICATE_METHOD = `/${CA_SERVICE}/CreateCertificate`;

/** Field names as in the .proto (snake_case); int64 as string; defaults filled. */
export const caProtoOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

/** A protobufjs Root with the CA messages (and google.protobuf.Struct), field names as in the .proto. */
export function caProtoRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.addJSON(protobuf.common.get('google/protobuf/struct.proto')!.nested!);
  protobuf.parse(caProtoText, root, { keepCase: true });
  return root;
}

/** The gRPC package definition for servers and clients of the CA API. */
export function loadCaPackage(): PackageDefinition {
  return fromJSON(caProtoRoot().toJSON(), caProtoOptions);
}

/** The wire shapes, as the loader presents them with `caProtoOptions`. */
export interface IstioCertificateRequest {
  csr: string;
  validity_duration: string;
  metadata?: unknown;
}

export interface IstioCertificateResponse {
  cert_chain: string[];
}
