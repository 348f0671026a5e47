export { Bus } from './bus';
export type { BusOptions, Handler, Stoppable } from './bus';
export { createEnvelope, decodeEvent, encodeEvent, Envelope, MAX_EVENT_BYTES } from './envelope';
export type { Event } from './envelope';
export {
  Subjects,
  subjectSchemas,
  replySchemas,
  durableStreams,
  ConfigChanged,
  RegistryEndpoints,
  XdsStatus,
  CaBundle,
  CaIssued,
  CaSignRequest,
  CaSignReply,
  RequestRecord,
  TelemetryRequests,
  TelemetrySummary,
  CanaryEvent,
} from './subjects';
export type { Subject, DurableSubject, EventData, ReplyData, ReplySubject } from './subjects';
export { LeaderLease } from './lease';
export type { LeaseOptions } from './lease';
export { busInboxPrefix, busPermissions, busRoleOf, busRoles, busBuckets, natsAuthorizationConfig, PILOT_INBOX_PREFIX } from './permissions';
export type { BusRole, BusUser, NatsPermissions } from './permissions';
