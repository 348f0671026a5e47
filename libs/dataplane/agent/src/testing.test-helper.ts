import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority, type CaState, type CaStateStore, type TrustBundle } from '@aviary/ca';
import { loadCaPackage, type IstioCertificateRequest, type IstioCertificateResponse } from '@aviary/ca-api';

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
  ) {}

  static async start(): Promise<TestCitadel> {
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
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const self = new TestCitadel(ca, server, `127.0.0.1:${port}`);
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
