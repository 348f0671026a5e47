import Type, { type Static } from 'typebox';
import { Closed, Duration, Int32, MatchLabelsSelector, opt, PortSelector, Resource, StringList, StringMap, UInt32 } from '../common';
import { networkingVersions } from './versions';

/** Field for field as istio.io/latest/docs/reference/config/networking/destination-rule. */

export const HTTPCookie = Closed({
  name: Type.String(),
  path: opt(Type.String()),
  ttl: opt(Duration),
  attributes: opt(Type.Array(Closed({ name: Type.String(), value: opt(Type.String()) }))),
});

export const ConsistentHashLB = Closed({
  httpHeaderName: opt(Type.String()),
  httpCookie: opt(HTTPCookie),
  useSourceIp: opt(Type.Boolean()),
  httpQueryParameterName: opt(Type.String()),
  ringHash: opt(Closed({ minimumRingSize: opt(Type.Integer({ minimum: 0 })) })),
  maglev: opt(Closed({ tableSize: opt(Type.Integer({ minimum: 0 })) })),
  minimumRingSize: opt(Type.Integer({ minimum: 0 })),
});

export const LocalityLoadBalancerSetting = Closed({
  distribute: opt(Type.Array(Closed({ from: opt(Type.String()), to: opt(Type.Record(Type.String(), UInt32)) }))),
  failover: opt(Type.Array(Closed({ from: opt(Type.String()), to: opt(Type.String()) }))),
  failoverPriority: opt(StringList),
  enabled: opt(Type.Boolean()),
});

export const WarmupConfiguration = Closed({
  duration: Duration,
  minimumPercent: opt(Type.Number()),
  aggression: opt(Type.Number()),
});

export const LoadBalancerSettings = Closed({
  simple: opt(Type.Enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'])),
  consistentHash: opt(ConsistentHashLB),
  localityLbSetting: opt(LocalityLoadBalancerSetting),
  zoneAwareLbSetting: opt(
    Closed({
      enabled: opt(Type.Boolean()),
      failover: opt(Type.Array(Closed({ from: opt(Type.String()), to: opt(Type.String()) }))),
      failoverPriority: opt(StringList),
      minClusterSize: opt(Type.Integer({ minimum: 0 })),
    }),
  ),
  warmupDurationSecs: opt(Duration),
  warmup: opt(WarmupConfiguration),
});
export type LoadBalancerSettings = Static<typeof LoadBalancerSettings>;

export const ConnectionPoolSettings = Closed({
  tcp: opt(
    Closed({
      maxConnections: opt(Int32),
      connectTimeout: opt(Duration),
      tcpKeepalive: opt(Closed({ probes: opt(UInt32), time: opt(Duration), interval: opt(Duration) })),
      maxConnectionDuration: opt(Duration),
      idleTimeout: opt(Duration),
    }),
  ),
  http: opt(
    Closed({
      http1MaxPendingRequests: opt(Int32),
      http2MaxRequests: opt(Int32),
      maxRequestsPerConnection: opt(Int32),
      maxRetries: opt(Int32),
      idleTimeout: opt(Duration),
      h2UpgradePolicy: opt(Type.Enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'])),
      useClientProtocol: opt(Type.Boolean()),
      maxConcurrentStreams: opt(Int32),
      http2KeepAlive: opt(Closed({ interval: opt(Duration), timeout: opt(Duration) })),
    }),
  ),
});
export type ConnectionPoolSettings = Static<typeof ConnectionPoolSettings>;

export const OutlierDetection = Closed({
  splitExternalLocalOriginErrors: opt(Type.Boolean()),
  consecutiveLocalOriginFailures: opt(UInt32),
  consecutiveGatewayErrors: opt(UInt32),
  consecutive5xxErrors: opt(UInt32),
  consecutiveErrors: opt(Int32),
  interval: opt(Duration),
  baseEjectionTime: opt(Duration),
  maxEjectionPercent: opt(Int32),
  minHealthPercent: opt(Int32),
  outlierDetectionHttpErrorCodes: opt(Type.Array(UInt32)),
});
export type OutlierDetection = Static<typeof OutlierDetection>;

export const ClientTLSSettings = Closed({
  mode: opt(Type.Enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'])),
  clientCertificate: opt(Type.String()),
  privateKey: opt(Type.String()),
  caCertificates: opt(Type.String()),
  credentialName: opt(Type.String()),
  subjectAltNames: opt(StringList),
  sni: opt(Type.String()),
  insecureSkipVerify: opt(Type.Boolean()),
  caCrl: opt(Type.String()),
});
export type ClientTLSSettings = Static<typeof ClientTLSSettings>;

export const PortTrafficPolicy = Closed({
  port: opt(PortSelector),
  loadBalancer: opt(LoadBalancerSettings),
  connectionPool: opt(ConnectionPoolSettings),
  outlierDetection: opt(OutlierDetection),
  tls: opt(ClientTLSSettings),
});

export const TrafficPolicy = Closed({
  loadBalancer: opt(LoadBalancerSettings),
  connectionPool: opt(ConnectionPoolSettings),
  outlierDetection: opt(OutlierDetection),
  tls: opt(ClientTLSSettings),
  portLevelSettings: opt(Type.Array(PortTrafficPolicy)),
  tunnel: opt(Closed({ protocol: opt(Type.String()), targetHost: Type.String(), targetPort: UInt32 })),
  proxyProtocol: opt(Closed({ version: opt(Type.Enum(['V1', 'V2'])) })),
  retryBudget: opt(Closed({ percent: opt(Type.Number()), minRetryConcurrency: opt(UInt32), budgetInterval: opt(Duration) })),
});
export type TrafficPolicy = Static<typeof TrafficPolicy>;

export const Subset = Closed({
  name: Type.String(),
  labels: opt(StringMap),
  trafficPolicy: opt(TrafficPolicy),
});
export type Subset = Static<typeof Subset>;

export const DestinationRuleSpec = Closed({
  host: Type.String(),
  trafficPolicy: opt(TrafficPolicy),
  subsets: opt(Type.Array(Subset)),
  exportTo: opt(StringList),
  /** istio.type.v1beta1.WorkloadSelector (`matchLabels`), unlike Sidecar's and ServiceEntry's (`labels`). */
  workloadSelector: opt(MatchLabelsSelector),
});
export type DestinationRuleSpec = Static<typeof DestinationRuleSpec>;

export const DestinationRuleSchema = Resource(
  'DestinationRule',
  networkingVersions,
  DestinationRuleSpec,
  'Policies applied to traffic for a service after routing (networking.istio.io DestinationRule).',
);
export type DestinationRule = Static<typeof DestinationRuleSchema>;
