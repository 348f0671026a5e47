import { envoyStatusCodes, type EnvoyExternalAuthorizationGrpcProvider, type EnvoyExternalAuthorizationHttpProvider, type ExtAuthzRequestBody, type ExtensionProvider } from '@aviary/mesh-api';
import type { Service } from '@aviary/mesh-model';
import { clusterName, type Ctx } from '../context';
import { duration, durationMs, typed, type Msg } from '../envoy';
import { stringValueMatcher } from '../rbac';
import { AN, AT, EXT_AUTHZ_POLICY_PREFIX, EXT_AUTHZ_SHADOW_PREFIX } from './names';

/**
 * MeshConfig `extensionProviders` → `envoy.filters.http.ext_authz`, as Istio's
 * extensionproviders builder: the provider's service must be a mesh service with that port
 * (its outbound cluster `outbound|<port>||<host>` carries the check); default timeout 600s;
 * the filter runs only for requests a CUSTOM policy rule matched (`filter_enabled_metadata` on
 * the shadow RBAC result that the CUSTOM RBAC filter writes).
 */

export interface ResolvedProvider {
  readonly name: string;
  readonly service: Service;
  readonly port: number;
  readonly cluster: string;
  readonly http?: EnvoyExternalAuthorizationHttpProvider;
  readonly grpc?: EnvoyExternalAuthorizationGrpcProvider;
}

const DEFAULT_TIMEOUT = durationMs(600_000);

/** The provider named `name`, or why it cannot be used (the caller then fails closed). */
export function resolveProvider(ctx: Ctx, name: string): ResolvedProvider | { error: string } {
  const p: ExtensionProvider | undefined = ctx.snapshot.options.extensionProviders.find((x) => x.name === name);
  if (!p) return { error: `extension provider ${JSON.stringify(name)} is not in MeshConfig extensionProviders` };
  const cfg = p.envoyExtAuthzHttp ?? p.envoyExtAuthzGrpc;
  if (!cfg) return { error: `extension provider ${JSON.stringify(name)} is not an ext_authz provider` };
  const slash = cfg.service.indexOf('/');
  const ns = slash < 0 ? undefined : cfg.service.slice(0, slash);
  const host = slash < 0 ? cfg.service : cfg.service.slice(slash + 1);
  const service = ctx.snapshot.services.get(host);
  if (!service || (ns !== undefined && service.namespace !== ns)) return { error: `extension provider ${JSON.stringify(name)}: service ${cfg.service} is not in the registry` };
  if (!service.ports.some((x) => x.number === cfg.port)) return { error: `extension provider ${JSON.stringify(name)}: service ${host} has no port ${cfg.port}` };
  return {
    name,
    service,
    port: cfg.port,
    cluster: clusterName('outbound', cfg.port, '', host),
    ...(p.envoyExtAuthzHttp ? { http: p.envoyExtAuthzHttp } : { grpc: p.envoyExtAuthzGrpc! }),
  };
}

function patterns(names: readonly string[] | undefined): Msg | undefined {
  return names && names.length > 0 ? { patterns: names.map((n) => stringValueMatcher(n, '', true)) } : undefined;
}

function body(b: ExtAuthzRequestBody | undefined): Msg | undefined {
  if (!b) return undefined;
  return { max_request_bytes: b.maxRequestBytes ?? 0, ...(b.allowPartialMessage === true && { allow_partial_message: true }), ...(b.packAsBytes === true && { pack_as_bytes: true }) };
}

/** Matches requests whose CUSTOM shadow RBAC found a matching policy. */
function enabledMetadata(): Msg {
  return { filter: AN.httpRbac, path: [{ key: `${EXT_AUTHZ_SHADOW_PREFIX}shadow_effective_policy_id` }], value: { string_match: { prefix: EXT_AUTHZ_POLICY_PREFIX } } };
}

/** The ext_authz HTTP filter for a resolved provider. */
export function extAuthzFilter(p: ResolvedProvider): Msg {
  const cfg = p.http ?? p.grpc!;
  const timeout = duration(cfg.timeout) ?? DEFAULT_TIMEOUT;
  const common = {
    transport_api_version: 'V3',
    ...(cfg.failOpen === true && { failure_mode_allow: true }),
    ...(cfg.statusOnError !== undefined && { status_on_error: { code: envoyStatusCodes[cfg.statusOnError] ?? 'Forbidden' } }),
    with_request_body: body(cfg.includeRequestBodyInCheck),
    filter_enabled_metadata: enabledMetadata(),
  };
  if (p.grpc) {
    return { name: AN.extAuthz, typed_config: typed(AT.ExtAuthz, { grpc_service: { envoy_grpc: { cluster_name: p.cluster, authority: p.service.hostname }, timeout }, ...common }) };
  }
  const h = p.http!;
  const headersToAdd = Object.keys(h.includeAdditionalHeadersInCheck ?? {})
    .sort()
    .map((key) => ({ key, value: h.includeAdditionalHeadersInCheck![key]! }));
  return {
    name: AN.extAuthz,
    typed_config: typed(AT.ExtAuthz, {
      http_service: {
        server_uri: { uri: `http://${p.service.hostname}:${p.port}`, cluster: p.cluster, timeout },
        ...(h.pathPrefix !== undefined && { path_prefix: h.pathPrefix }),
        authorization_request: { headers_to_add: headersToAdd },
        authorization_response: {
          allowed_upstream_headers: patterns(h.headersToUpstreamOnAllow),
          allowed_client_headers: patterns(h.headersToDownstreamOnDeny),
          allowed_client_headers_on_success: patterns(h.headersToDownstreamOnAllow),
        },
      },
      allowed_headers: patterns(h.includeRequestHeadersInCheck),
      ...common,
    }),
  };
}
