import type { CanaryDestination, CanarySpec, DestinationRule, HTTPRouteSpec, StoredObject, VirtualService } from '@aviary/mesh-api';

/**
 * Reading and writing the canary's target: one HTTP route of a VirtualService (its destinations)
 * or one rule of a Gateway API HTTPRoute (its backendRefs), which must list exactly the stable
 * and the canary (any order). Pure: objects in, objects or a problem out.
 */

export type RouteResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

type VsSpec = VirtualService['spec'];
type VsHttpRoute = NonNullable<VsSpec['http']>[number];
type RouteRule = NonNullable<HTTPRouteSpec['rules']>[number];

/** Where the names in a target resolve: the Canary's namespace (for short hosts) and the mesh's domain suffix. */
export interface TargetContext {
  readonly namespace: string;
  readonly domainSuffix: string;
}

/** The object a Canary's target names: a VirtualService or a Gateway API HTTPRoute. */
export function targetRef(spec: CanarySpec, namespace: string): { readonly kind: 'VirtualService' | 'HTTPRoute'; readonly namespace: string; readonly name: string } {
  const ns = spec.target.namespace ?? namespace;
  if (spec.target.httpRoute !== undefined) return { kind: 'HTTPRoute', namespace: ns, name: spec.target.httpRoute };
  return { kind: 'VirtualService', namespace: ns, name: spec.target.virtualService ?? '' };
}

/** One backend of a route: what it is called in messages, its weight, and whether it is `d`. */
interface Backend {
  readonly label: string;
  readonly weight: number | undefined;
  is(d: CanaryDestination): boolean;
}

/** A target kind's routes as backends, and how to write weights back. */
interface TargetAdapter {
  /** `<Kind> <namespace>/<name>`, for messages. */
  readonly what: string;
  /** The field holding the routes: `http` or `rules`. */
  readonly field: string;
  /** Each route (or rule) with its name, in order. */
  routes(): readonly { readonly name?: string | undefined; readonly backends: readonly Backend[] }[];
  /** The object with route `index`'s backend weights replaced by `weights` (same order). */
  write(index: number, weights: readonly number[]): StoredObject;
}

const fqdn = (host: string, namespace: string, suffix: string): string => (host.includes('.') ? host : `${host}.${namespace}.svc.${suffix}`);

function describe(d: { host: string; subset?: string | undefined }): string {
  return d.subset === undefined ? d.host : `${d.host} subset ${d.subset}`;
}

function adapter(target: StoredObject, ctx: TargetContext): TargetAdapter {
  if (target.kind === 'HTTPRoute') {
    const spec = target.spec as HTTPRouteSpec;
    const rules = spec.rules ?? [];
    // A backendRef names a Service (core group, kind Service by default) by name and namespace
    // (default: the route's); a canary destination without a subset names a host.
    const backend = (ref: NonNullable<RouteRule['backendRefs']>[number]): Backend => {
      const isService = (ref.group ?? '') === '' && (ref.kind ?? 'Service') === 'Service';
      const host = `${ref.name}.${ref.namespace ?? target.metadata.namespace}.svc.${ctx.domainSuffix}`;
      return {
        label: isService ? `Service ${ref.namespace ?? target.metadata.namespace}/${ref.name}` : `${ref.kind ?? 'Service'} ${ref.name}`,
        weight: ref.weight,
        is: (d) => isService && d.subset === undefined && fqdn(d.host, ctx.namespace, ctx.domainSuffix) === host,
      };
    };
    return {
      what: `HTTPRoute ${target.metadata.namespace}/${target.metadata.name}`,
      field: 'rules',
      routes: () => rules.map((r) => ({ name: r.name, backends: (r.backendRefs ?? []).map(backend) })),
      write: (index, weights) => ({
        ...target,
        spec: { ...spec, rules: rules.map((r, i) => (i === index ? { ...r, backendRefs: (r.backendRefs ?? []).map((b, j) => ({ ...b, weight: weights[j]! })) } : r)) },
      }),
    };
  }
  const spec = target.spec as VsSpec;
  const http = spec.http ?? [];
  return {
    what: `VirtualService ${target.metadata.namespace}/${target.metadata.name}`,
    field: 'http',
    routes: () =>
      http.map((r) => ({
        name: r.name,
        backends: (r.route ?? []).map((d) => ({ label: describe(d.destination), weight: d.weight, is: (want: CanaryDestination) => d.destination.host === want.host && (d.destination.subset ?? '') === (want.subset ?? '') })),
      })),
    write: (index, weights) => {
      const route = http[index]!;
      const next: VsHttpRoute = { ...route, route: (route.route ?? []).map((d, j) => ({ ...d, weight: weights[j]! })) };
      return { ...target, spec: { ...spec, http: http.map((r, i) => (i === index ? next : r)) } };
    },
  };
}

/** The target route's index, after checking that it lists the stable and canary destinations and nothing else. */
export function findRoute(spec: CanarySpec, target: StoredObject, ctx: TargetContext): RouteResult<number> {
  const a = adapter(target, ctx);
  const routes = a.routes();
  const index = spec.target.route !== undefined ? routes.findIndex((r) => r.name === spec.target.route) : (spec.target.routeIndex ?? -1);
  const route = index >= 0 ? routes[index] : undefined;
  if (route === undefined) {
    const kind = target.kind === 'HTTPRoute' ? 'rule' : 'HTTP route';
    return { ok: false, problem: spec.target.route !== undefined ? `${a.what} has no ${kind} named ${JSON.stringify(spec.target.route)}` : `${a.what} has no ${a.field}[${spec.target.routeIndex}]` };
  }
  const at = `${a.what} ${a.field}[${index}]`;
  const noun = target.kind === 'HTTPRoute' ? 'backendRef' : 'destination';
  if (!route.backends.some((b) => b.is(spec.stable))) return { ok: false, problem: `${at} has no ${noun} ${describe(spec.stable)} (stable)` };
  if (!route.backends.some((b) => b.is(spec.canary))) return { ok: false, problem: `${at} has no ${noun} ${describe(spec.canary)} (canary)` };
  const other = route.backends.find((b) => !b.is(spec.stable) && !b.is(spec.canary));
  if (other !== undefined) return { ok: false, problem: `${at} also routes to ${other.label}: a canary route must list only the stable and canary ${noun}s` };
  return { ok: true, value: index };
}

/**
 * The canary's share of the route now (0 when the canary carries no weight). An unset weight is
 * VirtualService's 0 and Gateway API's 1.
 */
export function routeWeight(spec: CanarySpec, target: StoredObject, index: number, ctx: TargetContext): number {
  const backends = adapter(target, ctx).routes()[index]?.backends ?? [];
  const unset = target.kind === 'HTTPRoute' ? 1 : 0;
  const canary = backends.filter((b) => b.is(spec.canary)).reduce((sum, b) => sum + (b.weight ?? unset), 0);
  const total = backends.reduce((sum, b) => sum + (b.weight ?? unset), 0);
  if (total === 0) return backends.length === 1 && backends[0]!.is(spec.canary) ? 100 : 0;
  return Math.round((canary * 100) / total);
}

/**
 * The target with the route's weights set to `100 - weight` (stable) and `weight` (canary),
 * everything else as it was; undefined when they are already so.
 */
export function withWeight(spec: CanarySpec, target: StoredObject, index: number, weight: number, ctx: TargetContext): StoredObject | undefined {
  const a = adapter(target, ctx);
  const backends = a.routes()[index]!.backends;
  const want = backends.map((b) => (b.is(spec.canary) ? weight : 100 - weight));
  if (backends.every((b, j) => b.weight === want[j])) return undefined;
  return a.write(index, want);
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
  const service = fqdn(d.host, namespace, domainSuffix);
  if (d.subset === undefined) return { ok: true, value: { service } };
  for (const dr of destinationRules) {
    const drSpec = dr.spec as DestinationRule['spec'];
    const drHost = fqdn(drSpec.host, dr.metadata.namespace, domainSuffix);
    if (drHost !== service) continue;
    const subset = (drSpec.subsets ?? []).find((s) => s.name === d.subset);
    if (subset === undefined) continue;
    const version = subset.labels?.['version'];
    if (version === undefined || version === '') return { ok: false, problem: `subset ${d.subset} of ${service} (DestinationRule ${dr.metadata.namespace}/${dr.metadata.name}) has no version label: no per-version telemetry to judge it by` };
    return { ok: true, value: { service, version } };
  }
  return { ok: false, problem: `no DestinationRule defines subset ${d.subset} of ${service}` };
}
