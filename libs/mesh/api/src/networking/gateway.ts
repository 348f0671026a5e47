import Type, { type Static } from 'typebox';
import { Closed, opt, Resource, StringList, StringMap, UInt32 } from '../common';
import { networkingVersions } from './versions';

/** Field for field as istio.io/latest/docs/reference/config/networking/gateway. */

export const Port = Closed({
  number: UInt32,
  protocol: Type.String({ description: 'HTTP|HTTPS|GRPC|GRPC-WEB|HTTP2|MONGO|TCP|TLS' }),
  name: opt(Type.String()),
  targetPort: opt(UInt32),
});
export type Port = Static<typeof Port>;

export const tlsProtocolVersions = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

export const ServerTLSSettings = Closed({
  httpsRedirect: opt(Type.Boolean()),
  mode: opt(Type.Enum(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'])),
  serverCertificate: opt(Type.String()),
  privateKey: opt(Type.String()),
  caCertificates: opt(Type.String()),
  caCrl: opt(Type.String()),
  credentialName: opt(Type.String()),
  credentialNames: opt(StringList),
  caCertCredentialName: opt(Type.String()),
  tlsCertificates: opt(Type.Array(Closed({ serverCertificate: opt(Type.String()), privateKey: opt(Type.String()), caCertificates: opt(Type.String()) }))),
  subjectAltNames: opt(StringList),
  verifyCertificateSpki: opt(StringList),
  verifyCertificateHash: opt(StringList),
  minProtocolVersion: opt(Type.Enum([...tlsProtocolVersions])),
  maxProtocolVersion: opt(Type.Enum([...tlsProtocolVersions])),
  cipherSuites: opt(StringList),
  insecureSkipVerify: opt(Type.Boolean()),
});
export type ServerTLSSettings = Static<typeof ServerTLSSettings>;

export const Server = Closed({
  port: Port,
  bind: opt(Type.String()),
  hosts: StringList,
  tls: opt(ServerTLSSettings),
  defaultEndpoint: opt(Type.String()),
  name: opt(Type.String()),
});
export type Server = Static<typeof Server>;

export const GatewaySpec = Closed({
  servers: opt(Type.Array(Server)),
  selector: opt(StringMap),
});
export type GatewaySpec = Static<typeof GatewaySpec>;

export const GatewaySchema = Resource('Gateway', networkingVersions, GatewaySpec, 'A load balancer at the edge of the mesh (networking.istio.io Gateway).');
export type Gateway = Static<typeof GatewaySchema>;
