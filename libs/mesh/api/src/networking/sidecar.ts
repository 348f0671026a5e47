import Type, { type Static } from 'typebox';
import { Closed, opt, Resource, StringList, UInt32, WorkloadSelector } from '../common';
import { ConnectionPoolSettings } from './destination-rule';
import { ServerTLSSettings } from './gateway';
import { Destination } from './virtual-service';
import { networkingVersions } from './versions';

/** Field for field as istio.io/latest/docs/reference/config/networking/sidecar. */

export const SidecarPort = Closed({
  number: opt(UInt32),
  protocol: opt(Type.String()),
  name: opt(Type.String()),
  targetPort: opt(UInt32),
});

const CaptureMode = Type.Enum(['DEFAULT', 'IPTABLES', 'NONE']);

export const IstioIngressListener = Closed({
  port: SidecarPort,
  bind: opt(Type.String()),
  captureMode: opt(CaptureMode),
  defaultEndpoint: opt(Type.String()),
  tls: opt(ServerTLSSettings),
  connectionPool: opt(ConnectionPoolSettings),
});

export const IstioEgressListener = Closed({
  port: opt(SidecarPort),
  bind: opt(Type.String()),
  captureMode: opt(CaptureMode),
  hosts: StringList,
});

export const OutboundTrafficPolicy = Closed({
  mode: opt(Type.Enum(['REGISTRY_ONLY', 'ALLOW_ANY'])),
  egressProxy: opt(Destination),
});

export const SidecarSpec = Closed({
  workloadSelector: opt(WorkloadSelector),
  ingress: opt(Type.Array(IstioIngressListener)),
  egress: opt(Type.Array(IstioEgressListener)),
  inboundConnectionPool: opt(ConnectionPoolSettings),
  outboundTrafficPolicy: opt(OutboundTrafficPolicy),
});
export type SidecarSpec = Static<typeof SidecarSpec>;

export const SidecarSchema = Resource('Sidecar', networkingVersions, SidecarSpec, 'Configuration of a sidecar proxy (networking.istio.io Sidecar).');
export type Sidecar = Static<typeof SidecarSchema>;
