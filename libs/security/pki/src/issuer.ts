import { randomBytes, type KeyObject } from 'node:crypto';
import { encodeName, encodeTbs, ipVersion, keyIdentifier, parseCertificate, randomSerial, signTbs, type CertificateInfo, type SubjectAltName } from './cert';
import { parseCsr, type ParsedCsr } from './csr';
import { pkiError } from './errors';
import { generatePrivateKey, privateKeyFromPem, privateKeyToPem, signerFor, spkiOf, type KeyAlgorithm, type Signer } from './keys';
import { splitCertificates, toPem } from './pem';

/** Leaves are backdated this much to tolerate clock skew between peers. */
export const BACKDATE_SECONDS = 60;
export const ROOT_VALIDITY_SECONDS = 10 * 365 * 86_400;

export interface IssuedCertificate {
  readonly certPem: string;
  readonly certDer: Buffer;
  /** Leaf first, then intermediates, root last (Istio's `cert_chain` order). */
  readonly chain: readonly string[];
  /** Lowercase hex, as `openssl x509 -serial` prints it. */
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** True when the lifetime was cut short by the signing CA's own expiry. */
  readonly clampedByCa: boolean;
}

export interface IssueOptions {
  readonly ttlSeconds: number;
  readonly now?: Date;
}

/**
 * A signing CA: a CA certificate, its key and its chain up to a root. Self-signed roots sign
 * directly (chain = [leaf, root]); a plug-in CA signs with its intermediate (chain = [leaf,
 * intermediate…, root]). Issuance is one TBS encoding and one node:crypto signature.
 */
export class Issuer {
  private readonly signer: Signer;
  private readonly chainTail: readonly string[];

  private constructor(
    readonly cert: CertificateInfo,
    private readonly key: KeyObject,
    chain: readonly CertificateInfo[],
  ) {
    this.signer = signerFor(key);
    this.chainTail = chain.map((c) => toPem('CERTIFICATE', c.der));
  }

  /** PEM of the certificate that signs. */
  get certPem(): string {
    return this.chainTail[0]!;
  }

  /** PEM of the root at the end of the chain. */
  get rootPem(): string {
    return this.chainTail[this.chainTail.length - 1]!;
  }

  /** The signing cert and every CA above it, root last. */
  get caChain(): readonly string[] {
    return this.chainTail;
  }

  get notAfter(): Date {
    return this.cert.notAfter;
  }

  get selfSigned(): boolean {
    return this.chainTail.length === 1;
  }

  /**
   * The private key as PKCS#8 PEM, for the persistence adapter only. Never log it, put it in an
   * error or return it from an API.
   */
  exportPrivateKeyPem(): string {
    return privateKeyToPem(this.key);
  }

  /** A new self-signed root (10 years by default) with subject `O=<trustDomain>, CN=Aviary Root CA <id>`. */
  static createRoot(opts: { trustDomain: string; algorithm?: KeyAlgorithm; validitySeconds?: number; now?: Date }): Issuer {
    const key = generatePrivateKey(opts.algorithm);
    const now = wholeSeconds(opts.now ?? new Date());
    const spki = spkiOf(key);
    const ski = keyIdentifier(spki);
    const name = encodeName({ organization: opts.trustDomain, commonName: `Aviary Root CA ${randomBytes(4).toString('hex')}` });
    const tbs = encodeTbs(
      {
        serial: randomSerial(),
        issuerName: name,
        subjectName: name,
        notBefore: new Date(now.getTime() - BACKDATE_SECONDS * 1000),
        notAfter: new Date(now.getTime() + (opts.validitySeconds ?? ROOT_VALIDITY_SECONDS) * 1000),
        spki,
        subjectKeyId: ski,
        sans: [],
        profile: 'ca',
      },
      signerFor(key).algorithmIdentifier,
    );
    const cert = parseCertificate(signTbs(tbs, signerFor(key)));
    return new Issuer(cert, key, [cert]);
  }

  /**
   * Loads a CA from PEM material in Istio's `cacerts` layout: `ca-cert.pem` (the signing CA),
   * `ca-key.pem`, `root-cert.pem` and optionally `cert-chain.pem` (ca-cert up to the root).
   * Checks that the key matches the certificate and that every link of the chain verifies.
   */
  static fromPem(material: { caCertPem: string; caKeyPem: string; rootCertPem?: string; certChainPem?: string }): Issuer {
    const key = privateKeyFromPem(material.caKeyPem);
    const caCert = loadCa(material.caCertPem, 'ca-cert.pem');
    if (!spkiOf(key).equals(caCert.spki)) throw pkiError('CA_LOAD_FAILED', 'ca-key.pem does not match the public key of ca-cert.pem');
    const chain: CertificateInfo[] = splitCertificates(material.certChainPem ?? '').map((p) => loadCa(p, 'cert-chain.pem'));
    if (chain[0] === undefined || !chain[0].der.equals(caCert.der)) chain.unshift(caCert);
    if (material.rootCertPem !== undefined && material.rootCertPem.trim() !== '') {
      const root = loadCa(material.rootCertPem, 'root-cert.pem');
      if (!chain[chain.length - 1]!.der.equals(root.der)) chain.push(root);
    }
    for (let i = 0; i < chain.length; i++) {
      const cert = chain[i]!;
      const parent = chain[i + 1] ?? cert;
      if (!cert.x509.checkIssued(parent.x509) || !cert.x509.verify(parent.x509.publicKey)) {
        const what = parent === cert ? 'the last certificate of the chain is not a self-signed root' : `chain certificate ${i} is not signed by certificate ${i + 1}`;
        throw pkiError('CA_LOAD_FAILED', `${what} (ca-cert.pem, cert-chain.pem, root-cert.pem)`);
      }
    }
    return new Issuer(caCert, key, chain);
  }

  /** Signs a workload certificate for `spiffeId` (a URI SAN) with the CSR's public key only. */
  signWorkload(csr: ParsedCsr | string | Buffer, spiffeId: string, opts: IssueOptions): IssuedCertificate {
    const parsed = typeof csr === 'string' || Buffer.isBuffer(csr) ? parseCsr(csr) : csr;
    if (!/^spiffe:\/\/[\x21-\x7e]+$/.test(spiffeId)) throw pkiError('SAN_INVALID', `${JSON.stringify(spiffeId)} is not a SPIFFE ID`);
    return this.issue(parsed.spki, [{ uri: spiffeId }], opts);
  }

  /**
   * Signs a control-plane serving certificate with DNS SANs (IP literals become IP SANs).
   * `dnsNames` come from the trusted caller, never from the CSR.
   */
  signServing(csr: ParsedCsr | string | Buffer, dnsNames: readonly string[], ttlSeconds: number, now?: Date): IssuedCertificate {
    const parsed = typeof csr === 'string' || Buffer.isBuffer(csr) ? parseCsr(csr) : csr;
    if (dnsNames.length === 0) throw pkiError('SAN_INVALID', 'a serving certificate needs at least one DNS name');
    const sans = dnsNames.map((n): SubjectAltName => {
      if (ipVersion(n) !== 0) return { ip: n };
      if (!DNS_NAME.test(n) || n.length > 253) throw pkiError('SAN_INVALID', `${JSON.stringify(n)} is not a DNS name or IP address`);
      return { dns: n.toLowerCase() };
    });
    return this.issue(parsed.spki, sans, now === undefined ? { ttlSeconds } : { ttlSeconds, now });
  }

  private issue(spki: Buffer, sans: readonly SubjectAltName[], opts: IssueOptions): IssuedCertificate {
    const now = wholeSeconds(opts.now ?? new Date());
    const caFrom = this.cert.notBefore.getTime();
    const caTo = this.cert.notAfter.getTime();
    if (now.getTime() >= caTo || now.getTime() < caFrom) throw pkiError('CA_EXPIRED', 'the signing CA certificate is not valid now');
    const notBefore = new Date(Math.max(now.getTime() - BACKDATE_SECONDS * 1000, caFrom));
    const wanted = now.getTime() + opts.ttlSeconds * 1000;
    const notAfter = new Date(Math.min(wanted, caTo));
    const serial = randomSerial();
    const tbs = encodeTbs(
      {
        serial,
        issuerName: this.cert.subjectName,
        subjectName: EMPTY_NAME,
        notBefore,
        notAfter,
        spki,
        subjectKeyId: keyIdentifier(spki),
        authorityKeyId: this.cert.subjectKeyId,
        sans,
        profile: 'leaf',
      },
      this.signer.algorithmIdentifier,
    );
    const certDer = signTbs(tbs, this.signer);
    const certPem = toPem('CERTIFICATE', certDer);
    return {
      certPem,
      certDer,
      chain: [certPem, ...this.chainTail],
      serialHex: serial.toString('hex'),
      notBefore,
      notAfter,
      clampedByCa: wanted > caTo,
    };
  }
}

const EMPTY_NAME = Buffer.from([0x30, 0x00]);
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

function loadCa(pem: string, file: string): CertificateInfo {
  let cert: CertificateInfo;
  try {
    cert = parseCertificate(pem);
  } catch (err) {
    throw pkiError('CA_LOAD_FAILED', `${file} does not hold a readable certificate`, undefined, err);
  }
  if (!cert.isCa) throw pkiError('CA_LOAD_FAILED', `${file}: certificate is not a CA (basicConstraints CA:false)`);
  return cert;
}
