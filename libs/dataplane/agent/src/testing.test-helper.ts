import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority, type CaState, type CaStateStore, type TrustBundle } from '@aviary/ca';
import { loadCaPackage, type IstioCertificateRequest, type IstioCertificateResponse } from '@aviary/ca-api';
import { createCsr, generatePrivateKey, privateKeyToPem } from '@aviary/pki';

/** citadel's CA (libs/ca) behind Istio's CreateCertificate on a loopback gRPC port, for specs. */
export class TestCitadel {
  readonly bundles: TrustBundle[] = [];
  /** While true, every request fails with UNAVAILABLE (citadel down). */
  down = false;
  requests = 0;

  private constructor(
    readonly ca: CertificateAuthority,
    private readonly server: grpc.Server,
    readonly address: string,
    /** `127.0.0.1:<port>` of the TLS port (start({ tlsDnsNames })), serving a certificate the CA signed. */
    readonly tlsAddress: string | undefined,
  ) {}

  /** With `tlsDnsNames`, also a TLS port whose serving certificate (signed by the CA) carries those names. */
  static async start(opts: { readonly tlsDnsNames?: readonly string[] } = {}): Promise<TestCitadel> {
    let state: CaState | undefined;
    const store: CaStateStore = { load: async () => state, save: async (s) => void (state = s) };
    const bundles: TrustBundle[] = [];
    const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', store, sink: { publish: async (b) => void bundles.push(b) }, defaultTtlSeconds: 3600, maxTtlSeconds: 7200 });
    const server = new grpc.Server();
    const def = grpc.loadPackageDefinition(loadCaPackage()) as unknown as { istio: { v1: { auth: { IstioCertificateService: { service: grpc.ServiceDefinition } } } } };
    const ref: { self?: TestCitadel } = {};
    server.addService(def.istio.v1.auth.IstioCertificateService.service, {
      CreateCertificate: (call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, cb: grpc.sendUnaryData<IstioCertificateResponse>) => {
        const self = ref.self;
        if (self === undefined) return;
        self.requests++;
        if (self.down) return cb({ code: grpc.status.UNAVAILABLE, details: 'citadel is down' });
        const auth = String(call.metadata.get('authorization')[0] ?? '').replace(/^Bearer /, '');
        ca.issue({ csr: call.request.csr, validitySeconds: Number(call.request.validity_duration), credentials: { bearerToken: auth } }).then(
          (r) => cb(null, { cert_chain: [...r.chain] }),
          (err: Error) => cb({ code: grpc.status.UNAUTHENTICATED, details: err.message }),
        );
      },
    });
    const bind = (creds: grpc.ServerCredentials): Promise<number> => new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
    const port = await bind(grpc.ServerCredentials.createInsecure());
    let tlsPort: number | undefined;
    if (opts.tlsDnsNames !== undefined) {
      const key = generatePrivateKey('ecdsa-p256');
      const serving = await ca.signServing(createCsr(key), opts.tlsDnsNames, 3600);
      tlsPort = await bind(grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(serving.chain.slice(0, -1).join('')), private_key: Buffer.from(privateKeyToPem(key)) }], false));
    }
    const self = new TestCitadel(ca, server, `127.0.0.1:${port}`, tlsPort === undefined ? undefined : `127.0.0.1:${tlsPort}`);
    ref.self = self;
    self.bundles.push(...bundles);
    return self;
  }

  token(namespace = 'demo', serviceAccount = 'hello'): string {
    return this.ca.mintToken({ namespace, serviceAccount, ttlSeconds: 600 }).token;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}
