import type { PolicyTargetReference } from '@aviary/mesh-api';
import type { ConfigEntry, Service } from './types';
import { labelsMatch } from './util';

/**
 * Which proxies a security policy (AuthorizationPolicy, RequestAuthentication) applies to, as
 * Istio: a policy with `targetRef`/`targetRefs` applies only to what it names (a Gateway's
 * routers, a Service's or ServiceEntry's workloads), never to the whole namespace; one with a
 * selector to the workloads it selects in its namespace; one with neither to its namespace, or
 * mesh-wide from the root namespace. Targets never cross namespaces (validation refuses a
 * targetRef namespace).
 */

export type PolicyTargetKind = 'Gateway' | 'Service' | 'ServiceEntry';

/** A thing a policy can target: `kind` `namespace/name`. */
export interface PolicyTarget {
  readonly kind: PolicyTargetKind;
  readonly namespace: string;
  readonly name: string;
}

interface TargetedSpec {
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly targetRef?: PolicyTargetReference;
  readonly targetRefs?: readonly PolicyTargetReference[];
}

export function targetRefsOf(spec: TargetedSpec): readonly PolicyTargetReference[] {
  return spec.targetRefs ?? (spec.targetRef !== undefined ? [spec.targetRef] : []);
}

function hasSelector(spec: TargetedSpec): boolean {
  return spec.selector?.matchLabels !== undefined && Object.keys(spec.selector.matchLabels).length > 0;
}

/** Whether a selector-or-namespace policy applies to a workload (policies with targets never do). */
export function appliesToWorkload(entry: ConfigEntry<TargetedSpec>, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>): boolean {
  if (targetRefsOf(entry.spec).length > 0) return false;
  if (entry.namespace !== rootNamespace && entry.namespace !== namespace) return false;
  return !hasSelector(entry.spec) || labelsMatch(entry.spec.selector!.matchLabels, labels);
}

/** Whether a policy names one of `targets`. */
export function appliesToTargets(entry: ConfigEntry<TargetedSpec>, targets: readonly PolicyTarget[]): boolean {
  const refs = targetRefsOf(entry.spec);
  return refs.some((r) => targets.some((t) => r.kind === t.kind && r.name === t.name && (r.namespace ?? entry.namespace) === t.namespace && entry.namespace === t.namespace));
}

/** Prefix of the ServiceEntries the Kubernetes registry makes from Services (`k8s-service.<name>`). */
const K8S_SERVICE_PREFIX = 'k8s-service.';

/**
 * The targets a service answers to: the ServiceEntry that declared it, and the Kubernetes
 * Service it stands for (a registry ServiceEntry `k8s-service.<name>`, or a host
 * `<name>.<namespace>.svc.<domainSuffix>`).
 */
export function serviceTargets(service: Service, domainSuffix: string): PolicyTarget[] {
  const [, ns = service.namespace, seName = ''] = service.source.split('/');
  const out: PolicyTarget[] = [{ kind: 'ServiceEntry', namespace: ns, name: seName }];
  if (seName.startsWith(K8S_SERVICE_PREFIX)) out.push({ kind: 'Service', namespace: ns, name: seName.slice(K8S_SERVICE_PREFIX.length) });
  const suffix = `.${service.namespace}.svc.${domainSuffix}`;
  if (service.hostname.endsWith(suffix)) {
    const name = service.hostname.slice(0, -suffix.length);
    if (!name.includes('.') && !out.some((t) => t.kind === 'Service' && t.name === name)) out.push({ kind: 'Service', namespace: service.namespace, name });
  }
  return out;
}
