import Type, { type Static } from 'typebox';
import { Closed, MatchLabelsSelector, opt, PolicyTargetReference, Resource, StringList } from '../common';
import { securityVersions } from '../networking/versions';

/** Field for field as istio.io/latest/docs/reference/config/security/authorization-policy. */

export const Source = Closed({
  principals: opt(StringList),
  notPrincipals: opt(StringList),
  requestPrincipals: opt(StringList),
  notRequestPrincipals: opt(StringList),
  namespaces: opt(StringList),
  notNamespaces: opt(StringList),
  ipBlocks: opt(StringList),
  notIpBlocks: opt(StringList),
  remoteIpBlocks: opt(StringList),
  notRemoteIpBlocks: opt(StringList),
  serviceAccounts: opt(StringList),
  notServiceAccounts: opt(StringList),
  trustDomains: opt(StringList),
  notTrustDomains: opt(StringList),
});
export type Source = Static<typeof Source>;

export const Operation = Closed({
  hosts: opt(StringList),
  notHosts: opt(StringList),
  ports: opt(StringList),
  notPorts: opt(StringList),
  methods: opt(StringList),
  notMethods: opt(StringList),
  paths: opt(StringList),
  notPaths: opt(StringList),
});
export type Operation = Static<typeof Operation>;

export const Condition = Closed({
  key: Type.String(),
  values: opt(StringList),
  notValues: opt(StringList),
});
export type Condition = Static<typeof Condition>;

export const Rule = Closed({
  from: opt(Type.Array(Closed({ source: opt(Source) }))),
  to: opt(Type.Array(Closed({ operation: opt(Operation) }))),
  when: opt(Type.Array(Condition)),
});
export type Rule = Static<typeof Rule>;

export const authorizationActions = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;

export const AuthorizationPolicySpec = Closed({
  selector: opt(MatchLabelsSelector),
  targetRef: opt(PolicyTargetReference),
  targetRefs: opt(Type.Array(PolicyTargetReference)),
  rules: opt(Type.Array(Rule)),
  action: opt(Type.Enum([...authorizationActions])),
  provider: opt(Closed({ name: opt(Type.String()) })),
});
export type AuthorizationPolicySpec = Static<typeof AuthorizationPolicySpec>;

export const AuthorizationPolicySchema = Resource(
  'AuthorizationPolicy',
  securityVersions,
  AuthorizationPolicySpec,
  'Access control on workloads (security.istio.io AuthorizationPolicy).',
);
export type AuthorizationPolicy = Static<typeof AuthorizationPolicySchema>;
