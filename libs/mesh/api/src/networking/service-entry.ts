import Type, { type Static } from 'typebox';
import { Closed, opt, Resource, StringList, StringMap, UInt32, WorkloadSelector } from '../common';
import { networkingVersions } from './versions';

/** Field for field as the ServiceEntry and WorkloadEntry reference pages. */

export const WorkloadEntrySpec = Closed({
  address: opt(Type.String()),
  ports: opt(Type.Record(Type.String(), UInt32)),
  labels: opt(StringMap),
  network: opt(Type.String()),
  locality: opt(Type.String()),
  weight: opt(UInt32),
  serviceAccount: opt(Type.String()),
});
export type WorkloadEntrySpec = Static<typeof WorkloadEntrySpec>;

export const ServicePort = Closed({
  number: UInt32,
  protocol: opt(Type.String()),
  name: Type.String(),
  targetPort: opt(UInt32),
});
export type ServicePort = Static<typeof ServicePort>;

export const ServiceEntrySpec = Closed({
  hosts: StringList,
  addresses: opt(StringList),
  ports: opt(Type.Array(ServicePort)),
  location: opt(Type.Enum(['MESH_EXTERNAL', 'MESH_INTERNAL'])),
  resolution: opt(Type.Enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'])),
  endpoints: opt(Type.Array(WorkloadEntrySpec)),
  workloadSelector: opt(WorkloadSelector),
  exportTo: opt(StringList),
  subjectAltNames: opt(StringList),
});
export type ServiceEntrySpec = Static<typeof ServiceEntrySpec>;

export const ServiceEntrySchema = Resource(
  'ServiceEntry',
  networkingVersions,
  ServiceEntrySpec,
  "Adds entries to the mesh's service registry (networking.istio.io ServiceEntry).",
);
export type ServiceEntry = Static<typeof ServiceEntrySchema>;

export const WorkloadEntrySchema = Resource(
  'WorkloadEntry',
  networkingVersions,
  WorkloadEntrySpec,
  'A non-Kubernetes workload such as a VM or bare-metal server (networking.istio.io WorkloadEntry).',
);
export type WorkloadEntry = Static<typeof WorkloadEntrySchema>;
