import { fromJSON, type PackageDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/**
 * Istio's CA API, `istio.v1.auth.IstioCertificateService` (apps/citadel/proto/ca.proto). The
 * text is embedded so the bundled app needs no file next to it; a test keeps it byte-equal to
 * the .proto file.
 */
export const caProtoText = `// Copyright Istio Authors
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Source: istio/api security/v1alpha1/ca.proto (commit 6673061c8f91dc7d1a3d406327424cf7b0289620).
// Kept verbatim in wire terms; apps/citadel/src/lib/proto.ts embeds this text and a test pins them equal.

syntax = "proto3";

import "google/protobuf/struct.proto";

// Keep this package for backward compatibility.
package istio.v1.auth;

option go_package="istio.io/api/security/v1alpha1";

// Certificate request message. The authentication should be based on:
// 1. Bearer tokens carried in the side channel;
// 2. Client-side certificate via Mutual TLS handshake.
// Note: the service implementation is REQUIRED to verify the authenticated caller is authorize to
// all SANs in the CSR. The server side may overwrite any requested certificate field based on its
// policies.
message IstioCertificateRequest {
  // PEM-encoded certificate request.
  // The public key in the CSR is used to generate the certificate,
  // and other fields in the generated certificate may be overwritten by the CA.
  string csr = 1;
  // Optional: requested certificate validity period, in seconds.
  int64 validity_duration = 3;

  // $hide_from_docs
  // Optional: Opaque metadata provided by the XDS node to Istio.
  // Supported metadata: WorkloadName, WorkloadIP, ClusterID
  google.protobuf.Struct metadata = 4;
}

// Certificate response message.
message IstioCertificateResponse {
  // PEM-encoded certificate chain.
  // The leaf cert is the first element, and the root cert is the last element.
  repeated string cert_chain = 1;
  // Root certificates. This field is newer, and therefor is optional with the following semantics:
  // * if root_cert is specified, cert_chain contains [leaf, intermediate1, intermediate2] (intermediates are optional).
  //   root_cert contains [root1, root2].
  // * if root_cert is not specified, cert_chain contains [leaf, intermediate1, intermediate2, root1+root2] concatenated into one entry.
  // Note that the individual cert_chain is only signed by a single root. The roots provided here is the full bundle of trusted roots.
  Roots root_cert = 2;
}
message Roots {
  repeated string ca_cert = 1;
}

// Service for managing certificates issued by the CA.
service IstioCertificateService {
  // Using provided CSR, returns a signed certificate.
  rpc CreateCertificate(IstioCertificateRequest)
      returns (IstioCertificateResponse) {
  }
}
`;

export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';

/** Field names as in the .proto (snake_case); int64 as string; defaults filled. */
export const caProtoOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

export function loadCaPackage(): PackageDefinition {
  const root = new protobuf.Root();
  root.addJSON(protobuf.common.get('google/protobuf/struct.proto')!.nested!);
  protobuf.parse(caProtoText, root, { keepCase: true });
  return fromJSON(root.toJSON(), caProtoOptions);
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
