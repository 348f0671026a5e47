import type { ServiceEntrySpec, WorkloadEntrySpec } from '@aviary/mesh-api';
import type { ConfigEntry, Endpoint, Locality, ModelProblem, ResolvedMeshOptions, Service, ServicePortInfo } from './types';
import { compareStrings, deepFreeze, isIpLiteral, labelsMatch } from './util';

/**
 * Services and their endpoints, from ServiceEntry (hosts × ports) and WorkloadEntry (selected
 * by a ServiceEntry's workloadSelector in the same namespace, as Istio does).
 */

/** Problem codes produced while building services and endpoints. */
export const registryProblemCodes: ReadonlySet<string> = new Set(['ENDPOINT_ADDRESS_NOT_IP', 'DUPLICATE_SERVICE_HOST']);

export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

export class ServiceIndex {
  private readonly byHost: ReadonlyMap<string, Service>;
  private readonly sorted: readonly Service[];

  constructor(services: readonly Service[]) {
    this.sorted = Object.freeze([...services].sort((a, b) => compareStrings(a.hostname, b.hostname)));
    this.byHost = new Map(this.sorted.map((s) => [s.hostname, s]));
  }

  /** Every service, sorted by hostname. */
  all(): readonly Service[] {
    return this.sorted;
  }

  get(hostname: string): Service | undefined {
    return this.byHost.get(hostname);
  }

  get size(): number {
    return this.sorted.length;
  }
}

const emptyEndpoints: readonly Endpoint[] = Object.freeze([]);
const emptyHosts: ReadonlySet<string> = new Set();

export class EndpointIndex {
  /** address → hostnames with an endpoint there; built on first use (the index is immutable). */
  private byAddress: Map<string, Set<string>> | undefined;

  /** hostname → service port → endpoints (sorted by address, port, source). */
  constructor(private readonly byService: ReadonlyMap<string, ReadonlyMap<number, readonly Endpoint[]>>) {}

  /** Hostnames of the services with at least one endpoint at `address` (a workload's own services). */
  hostsAt(address: string): ReadonlySet<string> {
    if (!this.byAddress) {
      const index = new Map<string, Set<string>>();
      for (const [hostname, ports] of this.byService) {
        for (const list of ports.values()) {
          for (const e of list) {
            const hosts = index.get(e.address);
            if (hosts) hosts.add(hostname);
            else index.set(e.address, new Set([hostname]));
          }
        }
      }
      this.byAddress = index;
    }
    return this.byAddress.get(address) ?? emptyHosts;
  }

  forServicePort(hostname: string, port: number): readonly Endpoint[] {
    return this.byService.get(hostname)?.get(port) ?? emptyEndpoints;
  }

  /** Every endpoint of a service, all ports. */
  forService(hostname: string): ReadonlyMap<number, readonly Endpoint[]> {
    return this.byService.get(hostname) ?? new Map();
  }

  /** A fingerprint of one service's endpoints, for change detection. */
  fingerprint(hostname: string): string {
    const ports = this.byService.get(hostname);
    if (!ports) return '';
    return JSON.stringify([...ports.entries()]);
  }

  hostnames(): string[] {
    return [...this.byService.keys()];
  }

  /** A new index with the endpoints of `replaced` hosts swapped in (every other list shared by reference). */
  withServices(replaced: ReadonlyMap<string, ReadonlyMap<number, readonly Endpoint[]>>): EndpointIndex {
    const next = new Map(this.byService);
    for (const [host, ports] of replaced) next.set(host, ports);
    return new EndpointIndex(next);
  }
}

export function parseLocality(value: string | undefined): Locality {
  const [region = '', zone = '', subzone = ''] = (value ?? '').split('/');
  return { region, zone, subzone };
}

const namedProtocols = new Set(['HTTP', 'HTTP2', 'HTTPS', 'GRPC', 'GRPC-WEB', 'TCP', 'TLS', 'MONGO', 'REDIS', 'MYSQL', 'UDP']);

/** Protocol of a port: `protocol`, else the port name's prefix (`http-web` → HTTP, Istio's convention), else TCP. */
export function portProtocol(protocol: string | undefined, name: string): string {
  if (protocol) return protocol.toUpperCase();
  const lower = name.toLowerCase();
  for (const candidate of ['grpc-web', 'http2', 'https', 'http', 'grpc', 'tcp', 'tls', 'mongo', 'redis', 'mysql', 'udp']) {
    if (lower === candidate || lower.startsWith(`${candidate}-`)) return candidate.toUpperCase();
  }
  return namedProtocols.has(name.toUpperCase()) ? name.toUpperCase() : 'TCP';
}

function normalisePort(p: NonNullable<ServiceEntrySpec['ports']>[number]): ServicePortInfo {
  return {
    number: p.number,
    name: p.name,
    protocol: portProtocol(p.protocol, p.name),
    ...(p.targetPort !== undefined && { targetPort: p.targetPort }),
  };
}

export interface ServiceBuild {
  readonly services: ServiceIndex;
  readonly endpoints: EndpointIndex;
  readonly problems: readonly ModelProblem[];
}

/** What one ServiceEntry contributed to a build; reused while its inputs stay the same objects. */
export interface EntryBuild {
  readonly se: ConfigEntry<ServiceEntrySpec>;
  readonly options: ResolvedMeshOptions;
  readonly hosts: readonly string[];
  readonly workloads: readonly ConfigEntry<WorkloadEntrySpec>[];
  readonly services: readonly Service[];
  readonly endpoints: ReadonlyMap<string, ReadonlyMap<number, readonly Endpoint[]>>;
  readonly problems: readonly ModelProblem[];
}

/**
 * How a registry build came about, for the next incremental one: each ServiceEntry's result (by
 * entry key, only entries that claimed a host) and the host-claim problems (which depend on the
 * ServiceEntries alone). Keyed by the build's EndpointIndex, which every registry build makes anew.
 */
export interface RegistryState {
  readonly builds: ReadonlyMap<string, EntryBuild>;
  readonly hostProblems: readonly ModelProblem[];
}

const registryStates = new WeakMap<EndpointIndex, RegistryState>();

/** The per-ServiceEntry results behind `build` (undefined for an index not made by `buildServices`/`rebuildEntries`). */
export function registryStateOf(build: ServiceBuild): RegistryState | undefined {
  return registryStates.get(build.endpoints);
}

export function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Services and endpoints of all ServiceEntries. With `previous` (the last build),
 * a ServiceEntry whose entry, claimed hosts and selected WorkloadEntries are the very same
 * objects as then reuses its frozen services and endpoint lists, so a change to one
 * WorkloadEntry costs one service's work (and unchanged services stay identical by reference,
 * which `diffSnapshots` relies on to skip them).
 */
export function buildServices(
  serviceEntries: readonly ConfigEntry<ServiceEntrySpec>[],
  workloadEntries: readonly ConfigEntry<WorkloadEntrySpec>[],
  options: ResolvedMeshOptions,
  previous?: ServiceBuild,
): ServiceBuild {
  const services: Service[] = [];
  const claimed = new Map<string, string>();
  const endpoints = new Map<string, ReadonlyMap<number, readonly Endpoint[]>>();
  const weIndex = indexWorkloads(workloadEntries);
  const before = previous && registryStateOf(previous);
  const builds = new Map<string, EntryBuild>();
  const hostProblems: ModelProblem[] = [];

  for (const se of serviceEntries) {
    const hosts: string[] = [];
    for (const hostname of [...new Set(se.spec.hosts)].sort(compareStrings)) {
      const existing = claimed.get(hostname);
      if (existing !== undefined) {
        hostProblems.push({
          code: 'DUPLICATE_SERVICE_HOST',
          resource: se.key,
          message: `host ${hostname} is already declared by ${existing}; this declaration is ignored`,
        });
        continue;
      }
      claimed.set(hostname, se.key);
      hosts.push(hostname);
    }
    if (hosts.length === 0) continue;
    const selector = se.spec.workloadSelector;
    const selected = selector ? selectWorkloads(weIndex, se.namespace, selector.labels ?? {}) : [];
    const last = before?.builds.get(se.key);
    const build = last && sameDefinition(last, se, hosts, options) && sameList(last.workloads, selected) ? last : buildEntry(se, hosts, selected, options, last);
    builds.set(se.key, build);
    services.push(...build.services);
    for (const [host, ports] of build.endpoints) endpoints.set(host, ports);
  }

  const endpointIndex = new EndpointIndex(endpoints);
  const state: RegistryState = { builds, hostProblems };
  registryStates.set(endpointIndex, state);
  return { services: new ServiceIndex(services), endpoints: endpointIndex, problems: registryProblems(state) };
}

/** Whether `build` was made from this very ServiceEntry, claiming the same hosts (so its Services stand). */
export function sameDefinition(build: EntryBuild, se: ConfigEntry<ServiceEntrySpec>, hosts: readonly string[], options: ResolvedMeshOptions): boolean {
  return build.se === se && build.options === options && sameList(build.hosts, hosts);
}

/** Every registry problem of a build: host claims, then each ServiceEntry's endpoint problems. */
export function registryProblems(state: RegistryState): ModelProblem[] {
  const problems = [...state.hostProblems];
  for (const build of state.builds.values()) problems.push(...build.problems);
  return problems;
}

/**
 * Records a registry build made by replacing some ServiceEntries' results of `previous` (the
 * WorkloadEntry-only path of `SnapshotBuilder`), so the next build can start from it.
 */
export function rebuildEntries(previous: ServiceBuild, state: RegistryState, replaced: ReadonlyMap<string, EntryBuild>): ServiceBuild {
  const builds = new Map(state.builds);
  const endpoints = new Map<string, ReadonlyMap<number, readonly Endpoint[]>>();
  for (const [key, build] of replaced) {
    builds.set(key, build);
    for (const [host, ports] of build.endpoints) endpoints.set(host, ports);
  }
  const endpointIndex = previous.endpoints.withServices(endpoints);
  const next: RegistryState = { builds, hostProblems: state.hostProblems };
  registryStates.set(endpointIndex, next);
  return { services: previous.services, endpoints: endpointIndex, problems: registryProblems(next) };
}

/**
 * One ServiceEntry's services and endpoints. With `last` made from the same entry and hosts,
 * its frozen Service objects are kept, so a change of workloads leaves the services identical
 * by reference.
 */
export function buildEntry(
  se: ConfigEntry<ServiceEntrySpec>,
  hosts: readonly string[],
  selected: readonly ConfigEntry<WorkloadEntrySpec>[],
  options: ResolvedMeshOptions,
  last?: EntryBuild,
): EntryBuild {
  const spec = se.spec;
  const problems: ModelProblem[] = [];
  const ports = (spec.ports ?? []).map(normalisePort).sort((a, b) => a.number - b.number);
  const sameServices = last !== undefined && sameDefinition(last, se, hosts, options);
  const declared: readonly Service[] = sameServices ? last.services : hosts.map((hostname) =>
    deepFreeze({
      hostname,
      namespace: se.namespace,
      ports,
      resolution: spec.resolution ?? 'NONE',
      location: spec.location ?? 'MESH_EXTERNAL',
      addresses: [...(spec.addresses ?? [])],
      exportTo: [...(spec.exportTo ?? ['*'])],
      subjectAltNames: [...(spec.subjectAltNames ?? [])],
      ...(spec.workloadSelector?.labels && { workloadSelector: { ...spec.workloadSelector.labels } }),
      source: se.key,
    }),
  );

  const workloads: { spec: WorkloadEntrySpec; source: string; namespace: string }[] = [];
  (spec.endpoints ?? []).forEach((ep, i) => workloads.push({ spec: ep, source: `${se.key}#${i}`, namespace: se.namespace }));
  for (const we of selected) workloads.push({ spec: we.spec, source: we.key, namespace: we.namespace });
  // DNS resolution: endpoints may be hostnames the proxy resolves; without any, each host is its own endpoint (as Istio).
  const dns = spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN';
  const selfResolved = dns && workloads.length === 0 && spec.workloadSelector === undefined;

  const endpoints = new Map<string, ReadonlyMap<number, readonly Endpoint[]>>();
  for (const service of declared) {
    const perPort = new Map<number, Endpoint[]>();
    for (const port of ports) perPort.set(port.number, []);
    const own = selfResolved ? [{ spec: { address: service.hostname }, source: `${se.key}#host`, namespace: se.namespace }] : workloads;
    for (const w of own) {
      const address = w.spec.address ?? '';
      if (!isIpLiteral(address) && !(dns && isHostname(address))) {
        if (service === declared[0]) {
          problems.push({
            code: 'ENDPOINT_ADDRESS_NOT_IP',
            resource: w.source.split('#')[0]!,
            message: `endpoint address ${JSON.stringify(address)} of ${w.source} is not an IP literal; xDS clients accept only IP addresses, so it is left out`,
          });
        }
        continue;
      }
      for (const port of ports) {
        const target = w.spec.ports?.[port.name] ?? port.targetPort ?? port.number;
        perPort.get(port.number)!.push(endpointOf(w, address, target, port.number, options));
      }
    }
    endpoints.set(service.hostname, new Map([...perPort].map(([p, list]) => [p, Object.freeze(list.sort(compareEndpoints))])));
  }
  return { se, options, hosts, workloads: selected, services: declared, endpoints, problems };
}

/** A DNS name a proxy can resolve (no wildcard, no unix:// path, no port). */
function isHostname(address: string): boolean {
  return /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(address);
}

function endpointOf(
  w: { spec: WorkloadEntrySpec; source: string; namespace: string },
  address: string,
  port: number,
  servicePort: number,
  options: ResolvedMeshOptions,
): Endpoint {
  const labels = { ...(w.spec.labels ?? {}) };
  const sa = w.spec.serviceAccount;
  return deepFreeze({
    address,
    port,
    servicePort,
    labels,
    locality: parseLocality(w.spec.locality),
    weight: w.spec.weight && w.spec.weight > 0 ? w.spec.weight : 1,
    namespace: w.namespace,
    ...(sa && { serviceAccount: sa, identity: `spiffe://${options.trustDomain}/ns/${w.namespace}/sa/${sa}` }),
    tlsMode: labels[TLS_MODE_LABEL] === 'istio' ? 'istio' : 'disabled',
    ...(w.spec.network && { network: w.spec.network }),
    source: w.source,
  } satisfies Endpoint);
}

type WorkloadIndex = Map<string, { all: ConfigEntry<WorkloadEntrySpec>[]; byLabel: Map<string, ConfigEntry<WorkloadEntrySpec>[]> }>;

/** WorkloadEntries by namespace and by `key=value` label, so selection is not a full scan per ServiceEntry. */
function indexWorkloads(workloadEntries: readonly ConfigEntry<WorkloadEntrySpec>[]): WorkloadIndex {
  const index: WorkloadIndex = new Map();
  for (const we of workloadEntries) {
    let ns = index.get(we.namespace);
    if (!ns) index.set(we.namespace, (ns = { all: [], byLabel: new Map() }));
    ns.all.push(we);
    for (const [k, v] of Object.entries(we.spec.labels ?? {})) {
      const key = `${k}=${v}`;
      const list = ns.byLabel.get(key);
      if (list) list.push(we);
      else ns.byLabel.set(key, [we]);
    }
  }
  return index;
}

function selectWorkloads(index: WorkloadIndex, namespace: string, selector: Readonly<Record<string, string>>): ConfigEntry<WorkloadEntrySpec>[] {
  const ns = index.get(namespace);
  if (!ns) return [];
  let candidates = ns.all;
  for (const [k, v] of Object.entries(selector)) {
    const list = ns.byLabel.get(`${k}=${v}`) ?? [];
    if (list.length < candidates.length) candidates = list;
  }
  return candidates.filter((we) => labelsMatch(selector, we.spec.labels ?? {}));
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return compareStrings(a.address, b.address) || a.port - b.port || compareStrings(a.source, b.source);
}
