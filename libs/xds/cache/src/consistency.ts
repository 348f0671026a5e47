import { ExtensionTypeUrl } from '@aviary/xds-api';
import type { CanonicalMessage } from '@aviary/xds-protos';

const HCM_TYPE = ExtensionTypeUrl.HttpConnectionManager;

type Obj = Record<string, unknown>;

function asObj(value: unknown): Obj | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** RDS names of HttpConnectionManagers (canonical form: Anys expanded with `@type`). */
function rdsNameOf(hcm: Obj | undefined): string | undefined {
  if (!hcm || hcm['@type'] !== HCM_TYPE) return undefined;
  const name = asObj(hcm.rds)?.route_config_name;
  return typeof name === 'string' ? name : undefined;
}

/** Route configuration names a listener references: the api_listener and every filter chain. */
export function referencedRouteNames(listener: CanonicalMessage): string[] {
  const names: string[] = [];
  const api = rdsNameOf(asObj(asObj(listener.api_listener)?.api_listener));
  if (api !== undefined) names.push(api);
  const chains = [...asArray(listener.filter_chains), listener.default_filter_chain];
  for (const chain of chains) {
    for (const filter of asArray(asObj(chain)?.filters)) {
      const name = rdsNameOf(asObj(asObj(filter)?.typed_config));
      if (name !== undefined) names.push(name);
    }
  }
  return names;
}

/** The ClusterLoadAssignment name an EDS cluster references, or undefined for other types. */
export function referencedEndpointName(cluster: CanonicalMessage): string | undefined {
  if (cluster.type !== 'EDS') return undefined;
  const service = asObj(cluster.eds_cluster_config)?.service_name;
  return typeof service === 'string' && service !== '' ? service : (cluster.name as string);
}

/**
 * Clusters a listener or route configuration names (canonical form): `cluster` and `cluster_name`
 * fields anywhere in it (routes, mirrors, tcp_proxy, gRPC services) and `weighted_clusters`
 * entries. It may name clusters that are not CDS resources (bootstrap clusters such as an access
 * log service's): readers match the names against the clusters they serve.
 */
export function referencedClusterNames(resource: CanonicalMessage): string[] {
  const names = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v);
      return;
    }
    const obj = asObj(value);
    if (!obj) return;
    for (const [key, v] of Object.entries(obj)) {
      if ((key === 'cluster' || key === 'cluster_name') && typeof v === 'string') names.add(v);
      else if (key === 'weighted_clusters') {
        for (const c of asArray(asObj(v)?.clusters)) {
          const name = asObj(c)?.name;
          if (typeof name === 'string') names.add(name);
        }
      } else walk(v);
    }
  };
  walk(resource);
  return [...names].sort();
}

export function consistencyProblems(
  listeners: readonly CanonicalMessage[],
  clusters: readonly CanonicalMessage[],
  routeNames: { has(name: string): boolean },
  endpointNames: { has(name: string): boolean },
): string[] {
  const problems: string[] = [];
  for (const l of listeners) {
    for (const r of referencedRouteNames(l)) {
      if (!routeNames.has(r)) problems.push(`listener ${JSON.stringify(l.name)} references missing route configuration ${JSON.stringify(r)}`);
    }
  }
  for (const c of clusters) {
    const e = referencedEndpointName(c);
    if (e !== undefined && !endpointNames.has(e)) problems.push(`cluster ${JSON.stringify(c.name)} references missing cluster load assignment ${JSON.stringify(e)}`);
  }
  return problems;
}
