import { CREDENTIALS_INPUT, CredentialIndex, type GatewayCredential } from './credentials';
import type { ServiceEntrySpec, WorkloadEntrySpec } from '@aviary/mesh-api';
import { buildServices, type ServiceBuild } from './services';
import { entryOf, JWKS_INPUT, NAMESPACES_INPUT, modelKinds, resolveOptions, snapshotFromEntries, type ConfigEntriesByKind, type MeshSnapshot } from './snapshot';
import type { ConfigEntry, Endpoint, JwksResolution, MeshOptions, ModelChangeEvent, ModelObject, ModelProblem, ResolvedMeshOptions } from './types';
import { compareStrings, keyOf } from './util';
import { updateWorkloads, WorkloadSelection, type WorkloadChange } from './workloads';

/** What one `SnapshotBuilder.build()` changed, so pilot can push as little as possible. */
export interface SnapshotDelta {
  readonly snapshot: MeshSnapshot;
  readonly previous: MeshSnapshot | undefined;
  /** Kinds with at least one effective change since the previous build, sorted. */
  readonly changedKinds: readonly string[];
  /**
   * True when anything but endpoint lists changed: routing/security config, a service's
   * definition (hosts, ports, resolution, exportTo), or the identities serving a service
   * (they appear in clusters' SAN matchers). Then every xDS type may change. When false and
   * `endpointsChanged` is non-empty, only ClusterLoadAssignments of those services changed
   * (plus the inbound side of proxies at `affectedAddresses`).
   */
  readonly configChanged: boolean;
  /** Hostnames of services added, removed or redefined. */
  readonly servicesChanged: readonly string[];
  /** Hostnames of services whose endpoints changed. */
  readonly endpointsChanged: readonly string[];
  /**
   * Addresses of endpoints that appeared, disappeared or changed: sidecars at these IPs may
   * have new inbound listeners/clusters (their own service instances changed).
   */
  readonly affectedAddresses: readonly string[];
}

const registryKinds = new Set(['ServiceEntry', 'WorkloadEntry']);

/**
 * The incremental path: feed ConfigStore change events (`watch()` delivers every existing
 * object as `created`, then changes), then `build()` a new snapshot. Indexes of kinds that did
 * not change are reused from the previous snapshot; updates that do not change a spec are
 * ignored. A build after WorkloadEntry changes alone recomputes only the services that select
 * the changed entries (`updateWorkloads`); any ServiceEntry change rebuilds the registry (each
 * ServiceEntry's result is still reused while its inputs are the same objects). Either way the
 * snapshot equals `buildSnapshot` of the same objects. Not thread-affine, not async: the caller
 * serialises `apply` and `build`.
 */
export class SnapshotBuilder {
  private readonly options: ResolvedMeshOptions;
  private readonly entries = new Map<string, Map<string, ConfigEntry<unknown>>>(modelKinds.map((k) => [k, new Map()]));
  private readonly specJson = new Map<string, string>();
  private readonly groupingProblems = new Map<string, ModelProblem>();
  private readonly dirty = new Set<string>();
  /** Each kind's entries sorted by key, dropped when the kind changes and sorted again when needed. */
  private readonly sortedByKind = new Map<string, readonly ConfigEntry<unknown>[]>();
  private readonly workloads = new WorkloadSelection();
  /** WorkloadEntries changed since the last build: key → the entry at that build (undefined: absent). */
  private readonly workloadsBefore = new Map<string, ConfigEntry<WorkloadEntrySpec> | undefined>();
  private registry: ServiceBuild | undefined;
  private last: MeshSnapshot | undefined;
  private generation = 0;
  private highestRevision = 0;
  private jwks: ReadonlyMap<string, JwksResolution> = new Map();
  private credentials = new CredentialIndex();
  private namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>> = new Map();

  constructor(options: MeshOptions) {
    this.options = resolveOptions(options);
  }

  /** Applies one change event; returns whether it changed the model's input. */
  apply(event: ModelChangeEvent): boolean {
    if (event.revision !== undefined && event.revision > this.highestRevision) this.highestRevision = event.revision;
    const { kind, namespace, name } = event.ref;
    const key = keyOf(kind, namespace, name);
    if (event.op === 'deleted' || !event.object) return this.remove(kind, key);
    return this.upsert(event.object);
  }

  applyAll(events: Iterable<ModelChangeEvent>): boolean {
    let changed = false;
    for (const e of events) changed = this.apply(e) || changed;
    return changed;
  }

  /** Replaces the whole input (a relist). */
  reset(objects: Iterable<ModelObject>): void {
    const seen = new Set<string>();
    for (const o of objects) {
      seen.add(keyOf(o.kind, o.metadata.namespace ?? 'default', o.metadata.name));
      this.upsert(o);
    }
    for (const [kind, map] of this.entries) for (const key of [...map.keys()]) if (!seen.has(key)) this.remove(kind, key);
    for (const key of [...this.groupingProblems.keys()]) if (!seen.has(key)) this.remove(key.split('/')[0]!, key);
  }

  /**
   * Replaces the key sets fetched for RequestAuthentication `jwksUri`s (an I/O source in pilot
   * feeds them); returns whether they changed, in which case the next build carries them.
   */
  setJwks(jwks: ReadonlyMap<string, JwksResolution>): boolean {
    const key = (m: ReadonlyMap<string, JwksResolution>) => JSON.stringify([...m].sort(([a], [b]) => compareStrings(a, b)));
    if (key(jwks) === key(this.jwks)) return false;
    this.jwks = new Map(jwks);
    this.dirty.add(JWKS_INPUT);
    return true;
  }

  /**
   * Replaces the gateway credentials (pilot reads them from Kubernetes Secrets; they are never
   * stored); returns whether they changed, in which case the next build carries them.
   */
  setCredentials(credentials: ReadonlyMap<string, GatewayCredential>): boolean {
    const next = new CredentialIndex(new Map(credentials), true);
    if (next.fingerprint() === this.credentials.fingerprint()) return false;
    this.credentials = next;
    this.dirty.add(CREDENTIALS_INPUT);
    return true;
  }

  /**
   * Replaces the namespaces' labels (pilot watches Namespaces in Kubernetes mode), which Gateway
   * listeners with `allowedRoutes.namespaces.from: Selector` select routes by; returns whether they
   * changed, in which case the next build carries them.
   */
  setNamespaceLabels(labels: ReadonlyMap<string, Readonly<Record<string, string>>>): boolean {
    const key = (m: ReadonlyMap<string, Readonly<Record<string, string>>>) =>
      JSON.stringify([...m].sort(([a], [b]) => compareStrings(a, b)).map(([ns, l]) => [ns, Object.entries(l).sort(([a], [b]) => compareStrings(a, b))]));
    if (key(labels) === key(this.namespaceLabels)) return false;
    this.namespaceLabels = new Map(labels);
    this.dirty.add(NAMESPACES_INPUT);
    return true;
  }

  /** Whether changes are waiting for `build()`. */
  get pending(): boolean {
    return this.dirty.size > 0 || this.last === undefined;
  }

  /** Highest store revision seen in applied events. */
  get revision(): number {
    return this.highestRevision;
  }

  current(): MeshSnapshot | undefined {
    return this.last;
  }

  /** Builds the next snapshot (the same one when nothing changed). */
  build(): SnapshotDelta {
    const previous = this.last;
    if (previous && this.dirty.size === 0) {
      return { snapshot: previous, previous, changedKinds: [], configChanged: false, servicesChanged: [], endpointsChanged: [], affectedAddresses: [] };
    }
    const changedKinds = new Set(this.dirty);
    const { registry, hosts } = this.buildRegistry(previous === undefined, changedKinds);
    const grouped = Object.fromEntries(modelKinds.filter((k) => !registryKinds.has(k)).map((k) => [k, this.sorted(k)])) as unknown as ConfigEntriesByKind;
    const problems = [...this.groupingProblems.values()];
    this.generation += 1;
    const snapshot = snapshotFromEntries(grouped, registry, this.options, this.generation, problems, previous && { previous, changedKinds }, this.jwks, this.credentials, this.namespaceLabels);
    this.last = snapshot;
    this.registry = registry;
    this.dirty.clear();
    this.workloadsBefore.clear();
    // Gateway API output that changed with no Gateway API object (a certificate Secret appeared or
    // went): the generated Gateways and status changed, which is a config change, not only SDS.
    if (previous && snapshot.gatewayApi !== previous.gatewayApi) changedKinds.add('KubernetesGateway');
    return diffSnapshots(previous, snapshot, [...changedKinds].sort(compareStrings), hosts);
  }

  /**
   * The registry for the next snapshot: the last one when neither registry kind changed; only
   * the services selecting the changed WorkloadEntries when those alone changed (`hosts` names
   * them); else built from every entry.
   */
  private buildRegistry(first: boolean, changedKinds: ReadonlySet<string>): { registry: ServiceBuild; hosts?: readonly string[] } {
    const last = this.registry;
    if (!first && last && !changedKinds.has('ServiceEntry')) {
      if (!changedKinds.has('WorkloadEntry')) return { registry: last };
      const weEntries = this.entries.get('WorkloadEntry') as ReadonlyMap<string, ConfigEntry<WorkloadEntrySpec>>;
      const changes: WorkloadChange[] = [...this.workloadsBefore].map(([key, before]) => ({ before, after: weEntries.get(key) }));
      const update = updateWorkloads(last, changes, this.workloads, this.options);
      if (update) return { registry: update.build, hosts: update.hosts };
    }
    const serviceEntries = this.sorted('ServiceEntry') as readonly ConfigEntry<ServiceEntrySpec>[];
    const workloadEntries = this.sorted('WorkloadEntry') as readonly ConfigEntry<WorkloadEntrySpec>[];
    return { registry: buildServices(serviceEntries, workloadEntries, this.options, last) };
  }

  private sorted(kind: string): readonly ConfigEntry<unknown>[] {
    let list = this.sortedByKind.get(kind);
    if (!list) {
      list = [...this.entries.get(kind)!.values()].sort((a, b) => compareStrings(a.key, b.key));
      this.sortedByKind.set(kind, list);
    }
    return list;
  }

  /** Marks `kind` changed; for a WorkloadEntry, remembers the entry as of the last build and keeps the selection index current. */
  private touched(kind: string, key: string, before: ConfigEntry<unknown> | undefined, after: ConfigEntry<unknown> | undefined): void {
    this.dirty.add(kind);
    this.sortedByKind.delete(kind);
    if (kind !== 'WorkloadEntry') return;
    if (!this.workloadsBefore.has(key)) this.workloadsBefore.set(key, before as ConfigEntry<WorkloadEntrySpec> | undefined);
    if (after) this.workloads.set(after as ConfigEntry<WorkloadEntrySpec>);
    else if (before) this.workloads.delete(before.namespace, key);
  }

  private upsert(object: ModelObject): boolean {
    // Kinds outside the model (Services before the Kubernetes registry lands, etc.) are ignored.
    if (!this.entries.has(object.kind)) return false;
    const result = entryOf(object);
    const kind = object.kind;
    const entries = this.entries.get(kind)!;
    if ('problem' in result) {
      const key = result.problem.resource;
      const before = entries.get(key);
      this.groupingProblems.set(key, result.problem);
      entries.delete(key);
      this.specJson.delete(key);
      this.touched(kind, key, before, undefined);
      return true;
    }
    const entry = result.entry;
    const json = JSON.stringify(entry.spec);
    const hadProblem = this.groupingProblems.delete(entry.key);
    if (!hadProblem && this.specJson.get(entry.key) === json) return false;
    const before = entries.get(entry.key);
    entries.set(entry.key, entry);
    this.specJson.set(entry.key, json);
    this.touched(kind, entry.key, before, entry);
    return true;
  }

  private remove(kind: string, key: string): boolean {
    const hadProblem = this.groupingProblems.delete(key);
    const entries = this.entries.get(kind);
    const before = entries?.get(key);
    const had = entries?.delete(key) ?? false;
    this.specJson.delete(key);
    if (had || hadProblem) this.touched(kind, key, before, undefined);
    return had || hadProblem;
  }
}

function endpointKey(e: Endpoint): string {
  return JSON.stringify([e.address, e.port, e.servicePort, e.labels, e.locality, e.weight, e.identity ?? '', e.tlsMode, e.network ?? '']);
}

function identities(snapshot: MeshSnapshot, host: string): string {
  const ids = new Set<string>();
  for (const list of snapshot.endpoints.forService(host).values()) for (const e of list) if (e.identity) ids.add(e.identity);
  return [...ids].sort(compareStrings).join(',');
}

/**
 * Compares two snapshots' registries and classifies the change. `candidateHosts`, when given,
 * are the only hosts whose services or endpoints may differ (every other host's are the same
 * objects in both), so only they are compared.
 */
export function diffSnapshots(previous: MeshSnapshot | undefined, next: MeshSnapshot, changedKinds: readonly string[], candidateHosts?: readonly string[]): SnapshotDelta {
  const configKinds = changedKinds.filter((k) => !registryKinds.has(k));
  const servicesChanged: string[] = [];
  const endpointsChanged: string[] = [];
  const addresses = new Set<string>();
  let identitiesChanged = false;
  if (!previous || changedKinds.some((k) => registryKinds.has(k))) {
    const hosts = previous && candidateHosts ? candidateHosts : [...new Set([...(previous?.services.all() ?? []).map((s) => s.hostname), ...next.services.all().map((s) => s.hostname)])].sort(compareStrings);
    for (const host of hosts) {
      const before = previous?.services.get(host);
      const after = next.services.get(host);
      // Unchanged services and endpoint lists are the same objects (buildServices reuses them).
      if (before !== after && JSON.stringify(before) !== JSON.stringify(after)) servicesChanged.push(host);
      if (previous && (previous.endpoints.forService(host) === next.endpoints.forService(host) || previous.endpoints.fingerprint(host) === next.endpoints.fingerprint(host))) continue;
      endpointsChanged.push(host);
      const old = new Map<string, Endpoint>();
      for (const list of previous?.endpoints.forService(host).values() ?? []) for (const e of list) old.set(endpointKey(e), e);
      const now = new Map<string, Endpoint>();
      for (const list of next.endpoints.forService(host).values()) for (const e of list) now.set(endpointKey(e), e);
      for (const [k, e] of old) if (!now.has(k)) addresses.add(e.address);
      for (const [k, e] of now) if (!old.has(k)) addresses.add(e.address);
      if (previous && identities(previous, host) !== identities(next, host)) identitiesChanged = true;
    }
  }
  return {
    snapshot: next,
    previous,
    changedKinds,
    configChanged: !previous || configKinds.length > 0 || servicesChanged.length > 0 || identitiesChanged,
    servicesChanged,
    endpointsChanged,
    affectedAddresses: [...addresses].sort(compareStrings),
  };
}
