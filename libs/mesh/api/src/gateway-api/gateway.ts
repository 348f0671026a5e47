import Type, { type Static } from 'typebox';
import { Closed, opt, StringMap } from '../common';
import { gatewayApiVersions, LabelSelector, PortNumber } from './common';
import { ObjectMeta, Status } from '../common';

export const SecretObjectReference = Closed({ group: opt(Type.String()), kind: opt(Type.String()), name: Type.String(), namespace: opt(Type.String()) });
export type SecretObjectReference = Static<typeof SecretObjectReference>;

const FrontendTLSValidation = Closed({
  validation: opt(Closed({ caCertificateRefs: opt(Type.Array(SecretObjectReference)), mode: opt(Type.String()) })),
});

export const GatewayTLSConfig = Closed({
  mode: opt(Type.Enum(['Terminate', 'Passthrough'])),
  certificateRefs: opt(Type.Array(SecretObjectReference)),
  options: opt(StringMap),
});
export type GatewayTLSConfig = Static<typeof GatewayTLSConfig>;

export const RouteGroupKind = Closed({ group: opt(Type.String()), kind: Type.String() });

export const AllowedRoutes = Closed({
  namespaces: opt(Closed({ from: opt(Type.Enum(['All', 'Same', 'Selector'])), selector: opt(LabelSelector) })),
  kinds: opt(Type.Array(RouteGroupKind)),
});
export type AllowedRoutes = Static<typeof AllowedRoutes>;

export const Listener = Closed({
  name: Type.String(),
  hostname: opt(Type.String()),
  port: PortNumber,
  protocol: Type.String({ description: 'HTTP|HTTPS|TLS|TCP|UDP or a domain-prefixed protocol' }),
  tls: opt(GatewayTLSConfig),
  allowedRoutes: opt(AllowedRoutes),
});
export type Listener = Static<typeof Listener>;

export const KubernetesGatewaySpec = Closed({
  gatewayClassName: Type.String(),
  listeners: Type.Array(Listener),
  addresses: opt(Type.Array(Closed({ type: opt(Type.String()), value: opt(Type.String()) }))),
  allowedListeners: opt(Closed({ namespaces: opt(Closed({ from: opt(Type.Enum(['All', 'Same', 'Selector', 'None'])), selector: opt(LabelSelector) })) })),
  tls: opt(
    Closed({
      backend: opt(Closed({ clientCertificateRef: opt(SecretObjectReference) })),
      frontend: opt(
        Closed({
          default: opt(FrontendTLSValidation),
          perPort: opt(Type.Array(Closed({ port: PortNumber, tls: FrontendTLSValidation }))),
        }),
      ),
    }),
  ),
  infrastructure: opt(
    Closed({
      labels: opt(StringMap),
      annotations: opt(StringMap),
      parametersRef: opt(Closed({ group: Type.String(), kind: Type.String(), name: Type.String() })),
    }),
  ),
});
export type KubernetesGatewaySpec = Static<typeof KubernetesGatewaySpec>;

/**
 * The Gateway API's Gateway. Its `kind` in manifests is `Gateway`, the same word as Istio's
 * networking.istio.io Gateway, so Aviary's stores, refs and events call it `KubernetesGateway`
 * (Istio's own internal name for it); manifests, the REST API and Kubernetes keep `Gateway`.
 */
export const KubernetesGatewaySchema = Type.Object(
  {
    apiVersion: Type.Enum(gatewayApiVersions as unknown as (typeof gatewayApiVersions)[number][]),
    kind: Type.Literal('Gateway'),
    metadata: ObjectMeta,
    spec: KubernetesGatewaySpec,
    status: opt(Status),
  },
  { additionalProperties: false, description: 'Listeners of a load balancer and the routes they accept (gateway.networking.k8s.io Gateway).' },
);
export type KubernetesGatewayManifest = Static<typeof KubernetesGatewaySchema>;
/** The Gateway API Gateway under Aviary's internal kind name. */
export type KubernetesGateway = Omit<KubernetesGatewayManifest, 'kind'> & { kind: 'KubernetesGateway' };
