import { CertificateAuthority, type CaState, type TrustBundle } from '@aviary/ca';
import { Subjects, type Bus } from '@aviary/events';
import { createCsr, generatePrivateKey, privateKeyToPem } from '@aviary/pki';

/** Test helpers of the mTLS xDS specs: citadel's real CA code, in memory, publishing on NATS. */
export const TD = 'cluster.local';

/** A CA whose bundle goes out on aviary.ca.v1.bundle, as citadel's. */
export async function memoryCa(bus: Bus): Promise<CertificateAuthority> {
  let state: CaState | undefined;
  return CertificateAuthority.open({
    trustDomain: TD,
    store: { load: async () => state, save: async (s) => void (state = s) },
    sink: { publish: async (b: TrustBundle) => bus.publish(Subjects.caBundle, { version: b.version, roots: [...b.roots] }) },
    defaultTtlSeconds: 3600,
    maxTtlSeconds: 86_400,
  });
}

/** citadel's aviary.ca.v1.sign responder, on the real CA code. */
export function answerSigning(bus: Bus, ca: CertificateAuthority): void {
  bus.reply(Subjects.caSign, async ({ data }) => {
    const r = await ca.signServing(data.csr, data.dnsNames, data.ttlSeconds);
    return { ok: true as const, certChain: [...r.chain] };
  });
}

/** A workload certificate from the CA for ns/sa, as the agent gets it (join token + CSR). */
export async function workloadCert(authority: CertificateAuthority, namespace: string, serviceAccount: string) {
  const key = generatePrivateKey('ecdsa-p256');
  const { token } = authority.mintToken({ namespace, serviceAccount, ttlSeconds: 600 });
  const issued = await authority.issue({ csr: createCsr(key, {}), credentials: { bearerToken: token } });
  return { certPem: issued.chain.slice(0, -1).join('\n'), keyPem: privateKeyToPem(key), rootPem: issued.chain.at(-1)! };
}
