import { describe, expect, it } from 'vitest';
import { CREATE_CERTIFICATE_METHOD, caProtoRoot, caProtoText, loadCaPackage } from './ca-proto';

describe("Istio's CA API", () => {
  it('is the istio/api file, with Istio field numbers', () => {
    expect(caProtoText).toContain('service IstioCertificateService');
    const root = caProtoRoot();
    const req = root.lookupType('istio.v1.auth.IstioCertificateRequest');
    expect(Object.fromEntries(Object.values(req.fields).map((f) => [f.name, f.id]))).toEqual({ csr: 1, validity_duration: 3, metadata: 4 });
    const res = root.lookupType('istio.v1.auth.IstioCertificateResponse');
    expect(res.fields['cert_chain']?.id).toBe(1);
  });

  it('defines CreateCertificate for gRPC servers and clients', () => {
    const pkg = loadCaPackage();
    const service = pkg['istio.v1.auth.IstioCertificateService'] as Record<string, { path: string }>;
    expect(service['CreateCertificate']?.path).toBe(CREATE_CERTIFICATE_METHOD);
  });
});
