import Type, { type Static } from 'typebox';
import { Closed, MatchLabelsSelector, opt, Resource } from '../common';
import { securityVersions } from '../networking/versions';

/** Field for field as istio.io/latest/docs/reference/config/security/peer_authentication. */

export const mtlsModes = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export const MutualTLS = Closed({ mode: opt(Type.Enum([...mtlsModes])) });
export type MutualTLS = Static<typeof MutualTLS>;

export const PeerAuthenticationSpec = Closed({
  selector: opt(MatchLabelsSelector),
  mtls: opt(MutualTLS),
  /** Keys are port numbers (as strings in YAML/JSON); requires a selector. */
  portLevelMtls: opt(Type.Record(Type.String(), MutualTLS)),
});
export type PeerAuthenticationSpec = Static<typeof PeerAuthenticationSpec>;

export const PeerAuthenticationSchema = Resource(
  'PeerAuthentication',
  securityVersions,
  PeerAuthenticationSpec,
  'Mutual TLS mode for traffic a workload receives (security.istio.io PeerAuthentication).',
);
export type PeerAuthentication = Static<typeof PeerAuthenticationSchema>;
