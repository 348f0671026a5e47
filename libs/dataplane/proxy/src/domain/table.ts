import { TypeUrl } from '@aviary/xds-api';
import { compileCluster, compileLoadAssignment, compileSecret, type Cluster, type Endpoint, type Secret } from './cluster';
import { compileListener, type Listener } from './listener';
import { isObj, ProxyConfigError } from './raw';
import { compileRouteConfiguration, type RouteConfig } from './routes';

/** The four xDS resource kinds the proxy consumes, plus SDS. */
export type ResourceKind = 'lds' | 'rds' | 'cds' | 'eds' | 'sds';

export const kindTypeUrl: Readonly<Record<ResourceKind, string>> = {
  lds: TypeUrl.Listener,
  rds: TypeUrl.RouteConfiguration,
  cds: TypeUrl.Cluster,
  eds: TypeUrl.ClusterLoadAssignment,
  sds: TypeUrl.Secret,
};

type Compiled = { lds: Listener; rds: RouteConfig; cds: Cluster; eds: { name: string; endpoints: readonly Endpoint[] }; sds: Secret };

const compilers: { [K in ResourceKind]: (raw: unknown, path: string) => Compiled[K] } = {
  lds: compileListener,
  rds: compileRouteConfiguration,
  cds: compileCluster,
  eds: (raw, path) => compileLoadAssignment(raw, path, true),
  sds: compileSecret,
};

const labels: Readonly<Record<ResourceKind, string>> = { lds: 'Listener', rds: 'RouteConfiguration', cds: 'Cluster', eds: 'ClusterLoadAssignment', sds: 'Secret' };

function nameOf(kind: ResourceKind, raw: unknown): string {
  if (!isObj(raw)) return '?';
  const n = kind === 'eds' ? raw.cluster_name : raw.name;
  return typeof n === 'string' ? n : '?';
}

export interface CompileResult<K extends ResourceKind> {
  readonly resources: ReadonlyMap<string, Compiled[K]>;
  /** One line per rejected resource; the whole response is NACKed with these joined. */
  readonly errors: readonly string[];
}

/**
 * Compiles every resource of one xDS response. A response is applied all-or-nothing: any error
 * NACKs it and the previous resources of that type stay in force (Envoy's behaviour).
 */
export function compileResources<K extends ResourceKind>(kind: K, raws: readonly unknown[]): CompileResult<K> {
  const resources = new Map<string, Compiled[K]>();
  const errors: string[] = [];
  for (const raw of raws) {
    const name = nameOf(kind, raw);
    try {
      const compiled = compilers[kind](raw, `${labels[kind]}[${name}]`);
      if (resources.has(name)) errors.push(`${labels[kind]}[${name}]: duplicate resource name`);
      resources.set(name, compiled);
    } catch (err) {
      if (err instanceof ProxyConfigError) errors.push(err.message);
      else throw err;
    }
  }
  return { resources, errors };
}

/**
 * The routing table: an immutable snapshot of every compiled resource. The transport swaps
 * the whole table atomically; a request holds the table it started with until it finishes.
 */
export class RoutingTable {
  constructor(
    readonly version: string,
    readonly listeners: ReadonlyMap<string, Listener>,
    readonly routeConfigs: ReadonlyMap<string, RouteConfig>,
    readonly clusters: ReadonlyMap<string, Cluster>,
    readonly loadAssignments: ReadonlyMap<string, readonly Endpoint[]>,
    readonly secrets: ReadonlyMap<string, Secret>,
  ) {
    Object.freeze(this);
  }

  static empty(): RoutingTable {
    return new RoutingTable('', new Map(), new Map(), new Map(), new Map(), new Map());
  }

  /** Builds a table straight from raw resources (tests, static bootstrap). Throws on the first invalid resource. */
  static fromResources(raw: { listeners?: unknown[]; routes?: unknown[]; clusters?: unknown[]; endpoints?: unknown[]; secrets?: unknown[] }, version = 'static'): RoutingTable {
    const get = <K extends ResourceKind>(kind: K, list: unknown[] | undefined): ReadonlyMap<string, Compiled[K]> => {
      const r = compileResources(kind, list ?? []);
      if (r.errors.length > 0) throw new ProxyConfigError(labels[kind], r.errors.join('; '));
      return r.resources;
    };
    const eds = get('eds', raw.endpoints);
    return new RoutingTable(
      version,
      get('lds', raw.listeners),
      get('rds', raw.routes),
      get('cds', raw.clusters),
      new Map([...eds].map(([k, v]) => [k, v.endpoints])),
      get('sds', raw.secrets),
    );
  }

  with(parts: Partial<{ listeners: ReadonlyMap<string, Listener>; routeConfigs: ReadonlyMap<string, RouteConfig>; clusters: ReadonlyMap<string, Cluster>; loadAssignments: ReadonlyMap<string, readonly Endpoint[]>; secrets: ReadonlyMap<string, Secret> }>, version: string): RoutingTable {
    return new RoutingTable(
      version,
      parts.listeners ?? this.listeners,
      parts.routeConfigs ?? this.routeConfigs,
      parts.clusters ?? this.clusters,
      parts.loadAssignments ?? this.loadAssignments,
      parts.secrets ?? this.secrets,
    );
  }

  /** The endpoints of a cluster: its EDS assignment or its static load_assignment. */
  endpointsOf(cluster: Cluster): readonly Endpoint[] {
    if (cluster.edsName !== undefined) return this.loadAssignments.get(cluster.edsName) ?? [];
    return cluster.staticEndpoints;
  }

  /** RDS names every HTTP listener references (what to subscribe to). */
  routeNames(): string[] {
    const names = new Set<string>();
    for (const l of this.listeners.values()) {
      for (const c of [...l.filterChains, ...(l.defaultChain ? [l.defaultChain] : [])]) {
        if (c.terminal.kind === 'http' && c.terminal.rdsName !== undefined) names.add(c.terminal.rdsName);
      }
    }
    return [...names].sort();
  }

  /** EDS names every EDS cluster references. */
  edsNames(): string[] {
    return [...new Set([...this.clusters.values()].flatMap((c) => (c.edsName === undefined ? [] : [c.edsName])))].sort();
  }
}
