import type { ClientTLSSettings, ServerTLSSettings } from '@aviary/mesh-api';
import { N, T, typed, wrap, type Msg } from './envoy';

/**
 * TLS transport sockets as Istio writes them. Sidecars and routers fetch secrets by SDS:
 * `default` is the workload certificate, `ROOTCA` the trust bundle, `kubernetes://<name>` a
 * gateway credential (`<name>-cacert` its CA). Proxyless gRPC clients use certificate provider
 * instances from their bootstrap instead (gRPC does not speak SDS).
 */

export const SECRET_WORKLOAD = 'default';
export const SECRET_ROOT = 'ROOTCA';
const ISTIO_ALPN = ['istio-peer-exchange', 'istio'];

export function sdsConfig(sdsCluster: string): Msg {
  return {
    api_config_source: {
      api_type: 'GRPC',
      transport_api_version: 'V3',
      set_node_on_first_message_only: true,
      grpc_services: [{ envoy_grpc: { cluster_name: sdsCluster } }],
    },
    resource_api_version: 'V3',
  };
}

function sdsSecret(name: string, sdsCluster: string): Msg {
  return { name, sds_config: sdsConfig(sdsCluster) };
}

const tlsParams = { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' };

function sanMatchers(sans: readonly string[]): Msg[] {
  return [...new Set(sans)].sort().map((s) => ({ exact: s }));
}

export function transportSocket(tlsContext: Msg): Msg {
  return { name: N.tls, typed_config: tlsContext };
}

/** UpstreamTlsContext for ISTIO_MUTUAL (and auto mTLS): workload cert + ROOTCA, SANs = expected SPIFFE IDs. */
export function istioMutualUpstream(sdsCluster: string, sans: readonly string[], sni: string): Msg {
  return typed(T.UpstreamTlsContext, {
    common_tls_context: {
      tls_params: tlsParams,
      alpn_protocols: ISTIO_ALPN,
      tls_certificate_sds_secret_configs: [sdsSecret(SECRET_WORKLOAD, sdsCluster)],
      combined_validation_context: {
        default_validation_context: { match_subject_alt_names: sanMatchers(sans) },
        validation_context_sds_secret_config: sdsSecret(SECRET_ROOT, sdsCluster),
      },
    },
    sni,
  });
}

/** UpstreamTlsContext for DestinationRule SIMPLE / MUTUAL (files or credentialName through SDS). */
export function clientTlsUpstream(tls: ClientTLSSettings, sdsCluster: string, defaultSni: string): Msg {
  const common: Msg = { tls_params: tlsParams };
  if (tls.mode === 'MUTUAL') {
    if (tls.credentialName) common.tls_certificate_sds_secret_configs = [sdsSecret(`kubernetes://${tls.credentialName}`, sdsCluster)];
    else if (tls.clientCertificate && tls.privateKey) {
      common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
    }
  }
  if (!tls.insecureSkipVerify) {
    const validation: Msg = {};
    if (tls.subjectAltNames && tls.subjectAltNames.length > 0) validation.match_subject_alt_names = sanMatchers(tls.subjectAltNames);
    if (tls.credentialName) {
      common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: sdsSecret(`kubernetes://${tls.credentialName}-cacert`, sdsCluster) };
    } else {
      if (tls.caCertificates) validation.trusted_ca = { filename: tls.caCertificates };
      if (Object.keys(validation).length > 0) common.validation_context = validation;
    }
  }
  return typed(T.UpstreamTlsContext, { common_tls_context: common, sni: tls.sni ?? defaultSni });
}

/** Proxyless gRPC: certificate provider instances (gRPC A29), as Istio's grpcgen. */
export function proxylessUpstream(instance: string, sans: readonly string[]): Msg {
  return typed(T.UpstreamTlsContext, {
    common_tls_context: {
      tls_certificate_provider_instance: { instance_name: instance, certificate_name: SECRET_WORKLOAD },
      combined_validation_context: {
        default_validation_context: {
          ca_certificate_provider_instance: { instance_name: instance, certificate_name: SECRET_ROOT },
          match_subject_alt_names: sanMatchers(sans),
        },
      },
    },
  });
}

/** Inbound mTLS for a sidecar: workload cert, client cert required and verified against ROOTCA. */
export function istioMutualDownstream(sdsCluster: string, trustDomain: string, alpn: readonly string[]): Msg {
  return typed(T.DownstreamTlsContext, {
    common_tls_context: {
      tls_params: tlsParams,
      alpn_protocols: [...alpn],
      tls_certificate_sds_secret_configs: [sdsSecret(SECRET_WORKLOAD, sdsCluster)],
      combined_validation_context: {
        default_validation_context: { match_subject_alt_names: [{ prefix: `spiffe://${trustDomain}/` }] },
        validation_context_sds_secret_config: sdsSecret(SECRET_ROOT, sdsCluster),
      },
    },
    require_client_certificate: wrap(true),
  });
}

/** Gateway server TLS (SIMPLE, MUTUAL, ISTIO_MUTUAL). */
export function gatewayDownstream(tls: ServerTLSSettings, sdsCluster: string, trustDomain: string): Msg {
  if (tls.mode === 'ISTIO_MUTUAL') return istioMutualDownstream(sdsCluster, trustDomain, ['h2', 'http/1.1']);
  const common: Msg = { alpn_protocols: ['h2', 'http/1.1'] };
  if (tls.minProtocolVersion || tls.maxProtocolVersion) {
    common.tls_params = {
      ...(tls.minProtocolVersion && { tls_minimum_protocol_version: tlsVersion(tls.minProtocolVersion) }),
      ...(tls.maxProtocolVersion && { tls_maximum_protocol_version: tlsVersion(tls.maxProtocolVersion) }),
      ...(tls.cipherSuites && { cipher_suites: tls.cipherSuites }),
    };
  }
  if (tls.credentialName) common.tls_certificate_sds_secret_configs = [sdsSecret(`kubernetes://${tls.credentialName}`, sdsCluster)];
  else if (tls.serverCertificate && tls.privateKey) {
    common.tls_certificates = [{ certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } }];
  }
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  if (mutual) {
    const validation: Msg = {};
    if (tls.subjectAltNames && tls.subjectAltNames.length > 0) validation.match_subject_alt_names = sanMatchers(tls.subjectAltNames);
    if (tls.credentialName) {
      common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: sdsSecret(`kubernetes://${tls.credentialName}-cacert`, sdsCluster) };
    } else {
      if (tls.caCertificates) validation.trusted_ca = { filename: tls.caCertificates };
      common.validation_context = validation;
    }
  }
  return typed(T.DownstreamTlsContext, { common_tls_context: common, ...(mutual && { require_client_certificate: wrap(tls.mode === 'MUTUAL') }) });
}

function tlsVersion(v: string): string {
  return { TLS_AUTO: 'TLS_AUTO', TLSV1_0: 'TLSv1_0', TLSV1_1: 'TLSv1_1', TLSV1_2: 'TLSv1_2', TLSV1_3: 'TLSv1_3' }[v] ?? 'TLS_AUTO';
}

export function rawBufferSocket(): Msg {
  return { name: N.rawBuffer, typed_config: typed(T.RawBuffer) };
}
