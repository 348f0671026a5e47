import { durableStreams, Subjects } from './subjects';

/**
 * Who may do what on the bus. nats-server enforces it: every app connects as its own user,
 * and a publish or subscribe outside that user's permissions is refused by the server
 * ("Permissions Violation"), whatever the client's code does.
 *
 * The control-plane apps get everything except what belongs to another app: only citadel
 * answers `aviary.ca.v1.sign` and writes the CA's bucket and stream; only pilot announces config
 * and writes the config bucket; only the collector publishes summaries and manages the
 * telemetry stream. The gateway credentials (the `credentials` bucket: private keys) are pilot's
 * alone to read too: every other role is denied the bucket's subjects, the read API of its stream
 * and pilot's inbox. Proxies (the `gateway` role: sidecars and ingress agents) get an allow list:
 * publish request records into the telemetry stream and read the trust bundle, nothing else. An `observer` (an
 * operator's or a test's `nats sub`) reads Aviary's subjects and publishes nothing.
 */
export type BusRole = 'pilot' | 'citadel' | 'injector-webhook' | 'telemetry-collector' | 'gateway' | 'observer';

export const busRoles: readonly BusRole[] = ['pilot', 'citadel', 'injector-webhook', 'telemetry-collector', 'gateway', 'observer'];

/** The role an app's bus user has (every proxy process is a `gateway`). */
export function busRoleOf(app: string): BusRole {
  return (busRoles as readonly string[]).includes(app) && app !== 'observer' ? (app as BusRole) : 'gateway';
}

/** nats-server's permission block for one user (server config `permissions`). */
export interface NatsPermissions {
  readonly publish: { readonly allow?: readonly string[]; readonly deny?: readonly string[] };
  readonly subscribe: { readonly allow?: readonly string[]; readonly deny?: readonly string[] };
}

/**
 * The JetStream KV buckets (names as the apps create them). `config` and `ca` have one owner
 * each (below); `lease` is the name prefix of LeaderLease's buckets (one per lease), which the
 * control-plane apps share and proxies never see.
 */
export const busBuckets = { config: 'aviary_config', ca: 'aviary-ca', lease: 'aviary_lease_', credentials: 'aviary_credentials' } as const;

/**
 * Pilot's reply subjects: its requests' replies and its consumers' deliveries (the credential
 * bucket's included) come on this prefix, which no other role may subscribe to (every other
 * role's `_INBOX.>` does not match it).
 */
export const PILOT_INBOX_PREFIX = '_INBOX_pilot';

/** The inbox prefix of a role's NATS connection. */
export function busInboxPrefix(role: BusRole): string {
  return role === 'pilot' ? PILOT_INBOX_PREFIX : '_INBOX';
}

/**
 * JetStream API subjects that read a stream's messages: direct and stream message gets, and
 * consumer creation (of any name and filter).
 */
const streamRead = (stream: string): string[] => [
  `$JS.API.DIRECT.GET.${stream}`,
  `$JS.API.DIRECT.GET.${stream}.>`,
  `$JS.API.STREAM.MSG.GET.${stream}`,
  `$JS.API.CONSUMER.CREATE.${stream}`,
  `$JS.API.CONSUMER.CREATE.${stream}.>`,
  `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.>`,
];

const streamOf = (subject: string): string => durableStreams.find((s) => (s.subjects as readonly string[]).includes(subject))!.name;

/** JetStream API subjects that change or remove a stream (the owner's alone). */
const streamAdmin = (stream: string): string[] => ['CREATE', 'UPDATE', 'DELETE', 'PURGE', 'MSG.DELETE'].map((op) => `$JS.API.STREAM.${op}.${stream}`);

/** What each owner alone may publish; everyone else is denied it. */
const owned: Record<Exclude<BusRole, 'gateway' | 'observer'>, { publish: string[]; subscribe: string[] }> = {
  citadel: {
    publish: [Subjects.caBundle, Subjects.caIssued, `$KV.${busBuckets.ca}.>`, ...streamAdmin(`KV_${busBuckets.ca}`), ...streamAdmin(streamOf(Subjects.caIssued))],
    subscribe: [Subjects.caSign],
  },
  pilot: {
    publish: [
      Subjects.configChanged,
      Subjects.registryEndpoints,
      Subjects.xdsStatus,
      `$KV.${busBuckets.config}.>`,
      ...streamAdmin(`KV_${busBuckets.config}`),
      ...streamAdmin(streamOf(Subjects.configChanged)),
      `$KV.${busBuckets.credentials}.>`,
      ...streamAdmin(`KV_${busBuckets.credentials}`),
      ...streamRead(`KV_${busBuckets.credentials}`),
    ],
    subscribe: [`$KV.${busBuckets.credentials}.>`, `${PILOT_INBOX_PREFIX}.>`],
  },
  'telemetry-collector': {
    publish: [Subjects.telemetrySummary, ...streamAdmin(streamOf(Subjects.telemetryRequests))],
    subscribe: [],
  },
  'injector-webhook': { publish: [], subscribe: [] },
};

/** The permissions of one role. */
export function busPermissions(role: BusRole): NatsPermissions {
  if (role === 'gateway') {
    const telemetry = streamOf(Subjects.telemetryRequests);
    const ca = `KV_${busBuckets.ca}`;
    return {
      // JetStream publish of request records (the stream's ack comes back on an inbox); stream
      // info to find the stream (the collector creates it); a read of the CA's trust bundle
      // (bucket lookup and get), then its updates.
      publish: {
        allow: [Subjects.telemetryRequests, '$JS.API.INFO', `$JS.API.STREAM.INFO.${telemetry}`, `$JS.API.STREAM.INFO.${ca}`, `$JS.API.DIRECT.GET.${ca}.>`, `$JS.API.STREAM.MSG.GET.${ca}`],
      },
      subscribe: { allow: ['_INBOX.>', Subjects.caBundle] },
    };
  }
  if (role === 'observer') return { publish: { deny: ['>'] }, subscribe: { allow: ['aviary.>', '_INBOX.>'] } };
  const others = (Object.keys(owned) as Array<keyof typeof owned>).filter((r) => r !== role);
  return {
    // Proxies alone publish request records.
    publish: { deny: [...others.flatMap((r) => owned[r].publish), Subjects.telemetryRequests] },
    subscribe: { deny: others.flatMap((r) => owned[r].subscribe) },
  };
}

export interface BusUser {
  readonly user: string;
  /** The password, or a nats-server variable reference such as `$AVIARY_NATS_PILOT_PASSWORD`. */
  readonly password: string;
  readonly role: BusRole;
}

const quote = (s: string): string => JSON.stringify(s);
const list = (xs: readonly string[]): string => `[${xs.map(quote).join(', ')}]`;

function rule(r: { readonly allow?: readonly string[]; readonly deny?: readonly string[] }): string {
  return [r.allow === undefined ? '' : `allow: ${list(r.allow)}`, r.deny === undefined ? '' : `deny: ${list(r.deny)}`].filter((s) => s !== '').join(', ');
}

/**
 * The `authorization` block of a nats-server config for these users. A password that starts
 * with `$` is left unquoted, so nats-server reads it from that variable (the chart passes
 * Secret-backed environment variables that way).
 */
export function natsAuthorizationConfig(users: readonly BusUser[]): string {
  const lines = users.map((u) => {
    const p = busPermissions(u.role);
    const password = /^\$[A-Z_][A-Z0-9_]*$/.test(u.password) ? u.password : quote(u.password);
    return `    { user: ${quote(u.user)}, password: ${password}, permissions: { publish: { ${rule(p.publish)} }, subscribe: { ${rule(p.subscribe)} } } }`;
  });
  return `authorization {\n  users: [\n${lines.join('\n')}\n  ]\n}\n`;
}
