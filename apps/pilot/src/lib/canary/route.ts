import type { CanaryDestination, CanarySpec, DestinationRule, StoredObject, VirtualService } from '@aviary/mesh-api';

/**
 * Reading and writing the canary's target: one HTTP route of a VirtualService whose destinations
 * are exactly the stable and the canary (any order). Pure: objects in, objects or a problem out.
 */

export type RouteResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

type VsSpec = VirtualService['spec'];
type HttpRoute = NonNullable<VsSpec['http']>[number];

const sameDestination = (d: { host: string; subset?: string | undefined }, want: CanaryDestination): boolean => d.host === want.host && (d.subset ?? '') === (want.subset ?? '');

/** The target route's index, after checking that it lists the stable and canary destinations and nothing else. */
export function findRoute(spec: CanarySpec, vs: StoredObject): RouteResult<number> {
  const what = `VirtualService ${vs.metadata.namespace}/${vs.metadata.name}`;
  const http = (vs.spec as VsSpec).http ?? [];
  const index = spec.target.route !== undefined ? http.findIndex((r) => r.name === spec.target.route) : (spec.target.routeIndex ?? -1);
  const route: HttpRoute | undefined = index >= 0 ? http[index] : undefined;
  if (route === undefined) {
    return { ok: false, problem: spec.target.route !== undefined ? `${what} has no HTTP route named ${JSON.stringify(spec.target.route)}` : `${what} has no http[${spec.target.routeIndex}]` };
  }
  const dests = route.route ?? [];
  const at = `${what} http[${index}]`;
  if (!dests.some((d) => sameDestination(d.destination, spec.stable))) return { ok: false, problem: `${at} has no destination ${describe(spec.stable)} (stable)` };
  if (!dests.some((d) => sameDestination(d.destination, spec.canary))) return { ok: false, problem: `${at} has no destination ${describe(spec.canary)} (canary)` };
  const other = dests.find((d) => !sameDestination(d.destination, spec.stable) && !sameDestination(d.destination, spec.canary));
  if (other !== undefined) return { ok: false, problem: `${at} also routes to ${describe(other.destination)}: a canary route must list only the stable and canary destinations` };
  return { ok: true, value: index };
}

function describe(d: { host: string; subset?: string | undefined }): string {
  return d.subset === undefined ? d.host : `${d.host} subset ${d.subset}`;
}

/** The canary's share of the route now (0 when the canary destination carries no weight). */
export function routeWeight(spec: CanarySpec, vs: StoredObject, index: number): number {
  const dests = (vs.spec as VsSpec).http?.[index]?.route ?? [];
  const canary = dests.filter((d) => sameDestination(d.destination, spec.canary)).reduce((sum, d) => sum + (d.weight ?? 0), 0);
  const total = dests.reduce((sum, d) => sum + (d.weight ?? 0), 0);
  if (total === 0) return dests.length === 1 && sameDestination(dests[0]!.destination, spec.canary) ? 100 : 0;
  return Math.round((canary * 100) / total);
}

/**
 * The VirtualService with the target route's weights set to `100 - weight` (stable) and `weight`
 * (canary), everything else as it was; undefined when they are already so.
 */
export function withWeight(spec: CanarySpec, vs: StoredObject, index: number, weight: number): StoredObject | undefined {
  const vsSpec = vs.spec as VsSpec;
  const http = vsSpec.http ?? [];
  const route = http[index]!;
  const dests = route.route ?? [];
  const want = (d: { host: string; subset?: string | undefined }): number => (sameDestination(d, spec.canary) ? weight : 100 - weight);
  if (dests.every((d) => (d.weight ?? 0) === want(d.destination))) return undefined;
  const nextRoute: HttpRoute = { ...route, route: dests.map((d) => ({ ...d, weight: want(d.destination) })) };
  const nextHttp = http.map((r, i) => (i === index ? nextRoute : r));
  return { ...vs, spec: { ...vsSpec, http: nextHttp } };
}

/**
 * The telemetry key of a destination: its fully qualified host and, with a subset, the
 * `version` label the subset selects (from the DestinationRules of that host). A subset without
 * a `version` label has no per-version telemetry: a problem.
 */
export function telemetryKey(
  d: CanaryDestination,
  namespace: string,
  domainSuffix: string,
  destinationRules: readonly StoredObject[],
): RouteResult<{ readonly service: string; readonly version?: string }> {
  const service = d.host.includes('.') ? d.host : `${d.host}.${namespace}.svc.${domainSuffix}`;
  if (d.subset === undefined) return { ok: true, value: { service } };
  for (const dr of destinationRules) {
    const drSpec = dr.spec as DestinationRule['spec'];
    const drHost = drSpec.host.includes('.') ? drSpec.host : `${drSpec.host}.${dr.metadata.namespace}.svc.${domainSuffix}`;
    if (drHost !== service) continue;
    const subset = (drSpec.subsets ?? []).find((s) => s.name === d.subset);
    if (subset === undefined) continue;
    const version = subset.labels?.['version'];
    if (version === undefined || version === '') return { ok: false, problem: `subset ${d.subset} of ${service} (DestinationRule ${dr.metadata.namespace}/${dr.metadata.name}) has no version label: no per-version telemetry to judge it by` };
    return { ok: true, value: { service, version } };
  }
  return { ok: false, problem: `no DestinationRule defines subset ${d.subset} of ${service}` };
}
