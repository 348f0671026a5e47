import type { ClientTLSSettings, ServerTLSSettings } from '@aviary/mesh-api';
import { CREDENTIAL_PREFIX } from '@aviary/mesh-model';
import { N, T, typed, wrap, type Msg } from './envoy';

/**
 * TLS transport sockets as Istio writes them. Sidecars and routers fetch secrets by SDS:
 * `default` is the workload certificate and `ROOTCA` the trust bundle (both from the agent),
 * `kubernetes://<name>` a credential (`<name>-cacert` its CA) from pilot over ADS. Proxyless gRPC clients use certificate provider
 * instances from their bootstrap instead (gRPC does not speak SDS).
 */

export const SECRET_WORKLOAD = 'default';
export const SECRET_ROOT = 'ROOTCA';

/**
 * SDS from the agent (contract: bootstrap cluster `sds-grpc`). `initial_fetch_timeout: 0s`, as
 * Istio: a listener or cluster waits for its secrets instead of going live without them after
 * Envoy's default 15 s (and answering 503); the agent holds readiness until they are there.
 */
export function sdsConfig(sdsCluster: string): Msg {
  return {
    initial_fetch_timeout: { seconds: 0 },
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

/**
 * A `credentialName` (a Kubernetes Secret of the proxy's namespace) by SDS over the ADS stream
 * to pilot, as Istio: pilot reads the Secret and serves it only to an authenticated proxy of
 * that namespace (the agent never sees it). Envoy's default `initial_fetch_timeout` (15 s), as
 * Istio, unlike the workload certificate's 0 s: the Secret is the user's and may be missing or
 * malformed, and a listener of the first LDS response that waits for it would keep Envoy from
 * ever going live, so one bad Secret would take every server of the gateway (and its readiness)
 * down. After the timeout the listener or cluster goes live without the certificate: its TLS
 * handshakes fail (closed, never plaintext) until pilot serves a usable Secret.
 */
function credentialSecret(credentialName: string): Msg {
  return { name: `${CREDENTIAL_PREFIX}${credentialName}`, sds_config: { ads: {}, resource_api_version: 'V3' } };
}

const tlsParams = { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' };

/** The SAN type a subjectAltNames entry names: SPIFFE IDs (any `scheme:`) are URIs. */
function sanType(san: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(san)) return 'URI';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(san) || (san.includes(':') && /^[0-9a-f:.]+$/i.test(san))) return 'IP_ADDRESS';
  if (san.includes('@')) return 'EMAIL';
  return 'DNS';
}

/** `match_typed_subject_alt_names` (the untyped `match_subject_alt_names` is deprecated). */
function sanMatchers(sans: readonly string[]): Msg[] {
  return [...new Set(sans)].sort().map((s) => ({ san_type: sanType(s), matcher: { exact: s } }));
}

/** gRPC clients read only the untyped `match_subject_alt_names` (gRPC A29; grpc-js-xds 1.14). */
function untypedSanMatchers(sans: readonly string[]): Msg[] {
  return [...new Set(sans)].sort().map((s) => ({ exact: s }));
}

export function transportSocket(tlsContext: Msg): Msg {
  return { name: N.tls, typed_config: tlsContext };
}

/**
 * The ALPN a sidecar offers on ISTIO_MUTUAL: the protocol it will speak on the connection
 * (`h2` or `http/1.1`; none for TCP). The peer's inbound HTTP chains serve `h2, http/1.1` and
 * their connection manager picks its codec from the negotiated protocol, so offering the real
 * one is what lets Envoy talk to Envoy (and to any TLS server that refuses unknown ALPN, like
 * Node's). Istio's `istio-peer-exchange, istio` tokens need Istio's own filters (metadata
 * exchange, `istio.alpn`) that upstream Envoy does not have: offered to a server that lists
 * `istio-peer-exchange` first (Istio's inbound does), it is selected and an HTTP/2 client then
 * meets an HTTP/1.1 codec.
 */
export type UpstreamAlpn = 'h2' | 'http/1.1' | 'none';

/** UpstreamTlsContext for ISTIO_MUTUAL (and auto mTLS): workload cert + ROOTCA, SANs = expected SPIFFE IDs. */
export function istioMutualUpstream(sdsCluster: string, sans: readonly string[], sni: string, alpn: UpstreamAlpn): Msg {
  return typed(T.UpstreamTlsContext, {
    common_tls_context: {
      tls_params: tlsParams,
      ...(alpn !== 'none' && { alpn_protocols: [alpn] }),
      tls_certificate_sds_secret_configs: [sdsSecret(SECRET_WORKLOAD, sdsCluster)],
      combined_validation_context: {
        default_validation_context: { match_typed_subject_alt_names: sanMatchers(sans) },
        validation_context_sds_secret_config: sdsSecret(SECRET_ROOT, sdsCluster),
      },
    },
    sni,
  });
}

/**
 * UpstreamTlsContext for DestinationRule SIMPLE / MUTUAL (files, or credentialName by SDS from
 * the agent, which does not serve such names yet: the cluster waits). Not over ADS as gateway
 * servers: Envoy 1.40 --mode validate crashes on a static cluster with ADS-sourced SDS, so that
 * path needs a real-Envoy test over CDS first.
 */
export function clientTlsUpstream(tls: ClientTLSSettings, sdsCluster: string, defaultSni: string): Msg {
  const common: Msg = { tls_params: tlsParams };
  if (tls.mode === 'MUTUAL') {
    if (tls.credentialName) common.tls_certificate_sds_secret_configs = [sdsSecret(`${CREDENTIAL_PREFIX}${tls.credentialName}`, sdsCluster)];
    else if (tls.clientCertificate && tls.privateKey) {
      common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
    }
  }
  if (!tls.insecureSkipVerify) {
    const validation: Msg = {};
    if (tls.subjectAltNames && tls.subjectAltNames.length > 0) validation.match_typed_subject_alt_names = sanMatchers(tls.subjectAltNames);
    if (tls.credentialName) {
      common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: sdsSecret(`${CREDENTIAL_PREFIX}${tls.credentialName}-cacert`, sdsCluster) };
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
          match_subject_alt_names: untypedSanMatchers(sans),
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
        default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${trustDomain}/` } }] },
        validation_context_sds_secret_config: sdsSecret(SECRET_ROOT, sdsCluster),
      },
    },
    require_client_certificate: wrap(true),
  });
}

/** Gateway server TLS (SIMPLE, MUTUAL, ISTIO_MUTUAL); ALPN `h2, http/1.1` for HTTPS, none for TLS carrying TCP. */
export function gatewayDownstream(tls: ServerTLSSettings, sdsCluster: string, trustDomain: string, alpn: readonly string[] = ['h2', 'http/1.1']): Msg {
  if (tls.mode === 'ISTIO_MUTUAL') return istioMutualDownstream(sdsCluster, trustDomain, alpn);
  const common: Msg = alpn.length > 0 ? { alpn_protocols: [...alpn] } : {};
  if (tls.minProtocolVersion || tls.maxProtocolVersion || tls.cipherSuites) {
    common.tls_params = {
      ...(tls.minProtocolVersion && { tls_minimum_protocol_version: tlsVersion(tls.minProtocolVersion) }),
      ...(tls.maxProtocolVersion && { tls_maximum_protocol_version: tlsVersion(tls.maxProtocolVersion) }),
      ...(tls.cipherSuites && { cipher_suites: tls.cipherSuites }),
    };
  }
  if (tls.credentialName) common.tls_certificate_sds_secret_configs = [credentialSecret(tls.credentialName)];
  else if (tls.serverCertificate && tls.privateKey) {
    common.tls_certificates = [{ certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } }];
  }
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  if (mutual) {
    const validation: Msg = {};
    if (tls.subjectAltNames && tls.subjectAltNames.length > 0) validation.match_typed_subject_alt_names = sanMatchers(tls.subjectAltNames);
    if (tls.credentialName) {
      common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: credentialSecret(`${tls.credentialName}-cacert`) };
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
