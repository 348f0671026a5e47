import { serviceTargets, type PolicyTarget, type Service } from '@aviary/mesh-model';
import type { Ctx } from '../context';
import type { SecurityScope } from './filters';

/**
 * Policies for a sidecar's inbound traffic to `service`: selector/namespace ones plus those
 * targeting the service (none for a Sidecar ingress port that is no service's).
 */
export function inboundScope(ctx: Ctx, service: Service | undefined): SecurityScope {
  return scopeFor(ctx, service ? serviceTargets(service, ctx.snapshot.options.domainSuffix) : []);
}

/** Policies for a router: selector/namespace ones plus those targeting a Gateway it serves. */
export function routerScope(ctx: Ctx): SecurityScope {
  const targets: PolicyTarget[] = ctx.snapshot.gateways.forProxy(ctx.proxy.labels).map((g) => ({ kind: 'Gateway', namespace: g.namespace, name: g.name }));
  return scopeFor(ctx, targets);
}

function scopeFor(ctx: Ctx, targets: readonly PolicyTarget[]): SecurityScope {
  const { namespace, labels } = ctx.proxy;
  return {
    policies: ctx.snapshot.authorizationPolicies.forWorkload(namespace, labels, targets),
    requestAuthentications: ctx.snapshot.requestAuthentications.forWorkload(namespace, labels, targets),
  };
}
