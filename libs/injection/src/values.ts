/** Injector-wide settings that the template and the policy read (config of the injector-webhook app). */
export interface InjectionValues {
  /** Matched against `istio.io/rev` labels; the `default` revision also serves `istio-injection=enabled`. */
  readonly revision: string;
  /** Whether this injector answers for `istio-injection=enabled` namespaces (Istio's default tag). */
  readonly defaultRevision: boolean;
  readonly proxyImage: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  readonly pilotAddress: string;
  readonly citadelAddress: string;
  readonly natsUrl: string;
  /** Envoy's ADS flavour in injected proxies (the agent's AVIARY_XDS_PROTOCOL). */
  readonly xdsProtocol: 'sotw' | 'delta';
  /** NATS user and password of injected proxies (the gateway bus role); empty: no authentication. */
  readonly natsUser: string;
  readonly natsPassword: string;
  readonly trustDomain: string;
  readonly proxyUid: number;
  readonly proxyGid: number;
  /** Run the proxy as a native sidecar (init container with restartPolicy Always). */
  readonly nativeSidecar: boolean;
  readonly holdApplicationUntilProxyStarts: boolean;
  /** Inject pods in namespaces that carry neither istio-injection nor istio.io/rev. */
  readonly enableNamespacesByDefault: boolean;
  readonly rewriteAppHTTPProbe: boolean;
  /** Never injected, whatever their labels say. */
  readonly excludedNamespaces: readonly string[];
  readonly proxyResources: {
    readonly requests: { readonly cpu: string; readonly memory: string };
    readonly limits: { readonly cpu: string; readonly memory: string };
  };
  readonly ports: {
    readonly admin: number;
    readonly stats: number;
    readonly status: number;
    /** Envoy's readiness listener (Istio's 15021, `/healthz/ready`): the pod's readiness probe. */
    readonly ready: number;
    readonly inbound: number;
    readonly outbound: number;
  };
  readonly capture: {
    readonly includeInboundPorts: string;
    /** Always excluded in addition to the annotation's ports: the proxy's own ports. */
    readonly excludeInboundPorts: string;
    readonly includeOutboundIPRanges: string;
    readonly excludeOutboundIPRanges: string;
    readonly excludeOutboundPorts: string;
  };
  readonly limits: InjectionLimits;
}

/** Bounds on what the injector accepts and produces (Kubernetes' own limits where it has them). */
export interface InjectionLimits {
  readonly maxContainers: number;
  /** Kubernetes rejects pods whose annotations total more than 256 KiB. */
  readonly maxAnnotationBytes: number;
  /** Largest pod (JSON) after injection; etcd's default request limit is 1.5 MiB. */
  readonly maxPodBytes: number;
}

export const defaultInjectionValues: InjectionValues = {
  revision: 'default',
  defaultRevision: true,
  proxyImage: 'aviary/gateway:latest',
  imagePullPolicy: 'IfNotPresent',
  pilotAddress: 'aviary-pilot.istio-system.svc:15012',
  citadelAddress: 'aviary-citadel.istio-system.svc:15013',
  natsUrl: 'nats://aviary-nats.istio-system.svc:4222',
  xdsProtocol: 'delta',
  natsUser: '',
  natsPassword: '',
  trustDomain: 'cluster.local',
  proxyUid: 1337,
  proxyGid: 1337,
  nativeSidecar: false,
  holdApplicationUntilProxyStarts: false,
  enableNamespacesByDefault: false,
  rewriteAppHTTPProbe: true,
  excludedNamespaces: ['kube-system', 'kube-public', 'kube-node-lease', 'istio-system'],
  proxyResources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1Gi' } },
  ports: { admin: 15000, stats: 15090, status: 15020, ready: 15021, inbound: 15006, outbound: 15001 },
  capture: {
    includeInboundPorts: '*',
    excludeInboundPorts: '',
    includeOutboundIPRanges: '*',
    excludeOutboundIPRanges: '',
    excludeOutboundPorts: '',
  },
  limits: { maxContainers: 64, maxAnnotationBytes: 256 * 1024, maxPodBytes: 1536 * 1024 },
};

/** Defaults overlaid with `overrides` (one level deep for the nested groups). */
export function injectionValues(overrides: Partial<InjectionValues> = {}): InjectionValues {
  const d = defaultInjectionValues;
  return Object.freeze({
    ...d,
    ...overrides,
    proxyResources: overrides.proxyResources ?? d.proxyResources,
    ports: { ...d.ports, ...overrides.ports },
    capture: { ...d.capture, ...overrides.capture },
    limits: { ...d.limits, ...overrides.limits },
  });
}
