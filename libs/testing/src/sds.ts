import * as grpc from '@grpc/grpc-js';
import { decodeMessageOf, encodeMessageOf, TypeUrl, type CanonicalMessage } from '@aviary/xds-protos';
import { OpenSsl } from './openssl';

/**
 * Tests only: an SDS server (envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets) on a
 * Unix socket, serving `default` (a workload certificate with a SPIFFE URI SAN, signed by a fresh
 * CA) and `ROOTCA` (that CA), as the agent serves them to Envoy. Certificates come from the real
 * `openssl`; `ca`, `cert` and `key` are there for test clients.
 */
export class TestSdsServer {
  private constructor(
    private readonly server: grpc.Server,
    private readonly ssl: OpenSsl,
    readonly socket: string,
    readonly ca: string,
    readonly cert: string,
    readonly key: string,
  ) {}

  static async start(spiffeId: string): Promise<TestSdsServer> {
    const ssl = new OpenSsl();
    ssl.run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/O=aviary-test/CN=root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ssl.run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'w.key', '-out', 'w.csr', '-subj', '/O=aviary-test');
    ssl.write('w.ext', `subjectAltName=critical,URI:${spiffeId}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`);
    ssl.run('x509', '-req', '-in', 'w.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'w.ext', '-out', 'w.pem');
    const [ca, cert, key] = [ssl.read('ca.pem'), ssl.read('w.pem'), ssl.read('w.key')];
    const secrets: Record<string, CanonicalMessage> = {
      default: { '@type': TypeUrl.Secret, name: 'default', tls_certificate: { certificate_chain: { inline_string: cert }, private_key: { inline_string: key } } },
      ROOTCA: { '@type': TypeUrl.Secret, name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca } } },
    };
    const server = new grpc.Server();
    const method = {
      path: '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
      requestStream: true,
      responseStream: true,
      requestSerialize: (o: object) => Buffer.from(encodeMessageOf('envoy.service.discovery.v3.DiscoveryRequest', o)),
      requestDeserialize: (b: Buffer) => decodeMessageOf('envoy.service.discovery.v3.DiscoveryRequest', b),
      responseSerialize: (o: object) => Buffer.from(encodeMessageOf('envoy.service.discovery.v3.DiscoveryResponse', o)),
      responseDeserialize: (b: Buffer) => decodeMessageOf('envoy.service.discovery.v3.DiscoveryResponse', b),
    };
    let nonce = 0;
    server.addService({ StreamSecrets: method } as grpc.ServiceDefinition, {
      StreamSecrets: (call: grpc.ServerDuplexStream<CanonicalMessage, object>) => {
        call.on('data', (req: CanonicalMessage) => {
          if (req.response_nonce) return; // an ACK or NACK of what was sent
          const names = (req.resource_names as string[] | undefined) ?? [];
          const resources = names.flatMap((n) => (secrets[n] ? [secrets[n]] : []));
          call.write({ version_info: '1', type_url: TypeUrl.Secret, nonce: String(++nonce), resources });
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    });
    const socket = ssl.path('sds.sock');
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    return new TestSdsServer(server, ssl, socket, ca, cert, key);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.ssl.cleanup();
  }
}
