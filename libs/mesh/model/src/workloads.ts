import type { WorkloadEntrySpec } from '@aviary/mesh-api';
import { buildEntry, rebuildEntries, registryStateOf, sameList, type EntryBuild, type ServiceBuild } from './services';
import type { ConfigEntry, ResolvedMeshOptions } from './types';
import { compareStrings, labelsMatch } from './util';

/**
 * The WorkloadEntry-only path of the registry: a change to some WorkloadEntries recomputes only
 * the ServiceEntries (in the same namespace) whose workloadSelector matched them before or
 * matches them now, and keeps every other service's Service objects and endpoint lists by
 * reference. The result equals `buildServices` over all entries (a property test holds them
 * side by side).
 */

type Workload = ConfigEntry<WorkloadEntrySpec>;

interface NamespaceWorkloads {
  readonly all: Map<string, Workload>;
  /** `key=value` → keys of the entries carrying that label. */
  readonly byLabel: Map<string, Set<string>>;
}

/** WorkloadEntries by namespace and label, kept current entry by entry (what selectors select). */
export class WorkloadSelection {
  private readonly byNamespace = new Map<string, NamespaceWorkloads>();

  /** Adds or replaces an entry (its labels may have changed). */
  set(entry: Workload): void {
    this.delete(entry.namespace, entry.key);
    let ns = this.byNamespace.get(entry.namespace);
    if (!ns) this.byNamespace.set(entry.namespace, (ns = { all: new Map(), byLabel: new Map() }));
    ns.all.set(entry.key, entry);
    for (const label of labelKeys(entry)) {
      const keys = ns.byLabel.get(label);
      if (keys) keys.add(entry.key);
      else ns.byLabel.set(label, new Set([entry.key]));
    }
  }

  delete(namespace: string, key: string): void {
    const ns = this.byNamespace.get(namespace);
    const entry = ns?.all.get(key);
    if (!ns || !entry) return;
    ns.all.delete(key);
    for (const label of labelKeys(entry)) {
      const keys = ns.byLabel.get(label);
      keys?.delete(key);
      if (keys?.size === 0) ns.byLabel.delete(label);
    }
    if (ns.all.size === 0) this.byNamespace.delete(namespace);
  }

  /** The entries of `namespace` whose labels `selector` matches, sorted by key (as `buildServices` selects them). */
  select(namespace: string, selector: Readonly<Record<string, string>>): Workload[] {
    const ns = this.byNamespace.get(namespace);
    if (!ns) return [];
    let candidates: Iterable<string> = ns.all.keys();
    let size = ns.all.size;
    for (const [k, v] of Object.entries(selector)) {
      const keys = ns.byLabel.get(`${k}=${v}`);
      if (!keys) return [];
      if (keys.size < size) {
        candidates = keys;
        size = keys.size;
      }
    }
    const out: Workload[] = [];
    for (const key of candidates) {
      const entry = ns.all.get(key)!;
      if (labelsMatch(selector, entry.spec.labels ?? {})) out.push(entry);
    }
    return out.sort((a, b) => compareStrings(a.key, b.key));
  }
}

function labelKeys(entry: Workload): string[] {
  return Object.entries(entry.spec.labels ?? {}).map(([k, v]) => `${k}=${v}`);
}

/** One WorkloadEntry's change since the last build: the entry then and now (undefined: absent). */
export interface WorkloadChange {
  readonly before: Workload | undefined;
  readonly after: Workload | undefined;
}

/** A registry build after WorkloadEntry changes, and the hosts whose endpoints were recomputed. */
export interface WorkloadUpdate {
  readonly build: ServiceBuild;
  readonly hosts: readonly string[];
}

/**
 * `previous` with the ServiceEntries that select any changed WorkloadEntry (before or after the
 * change) rebuilt from `selection`; undefined when `previous` has no recorded state or the batch
 * is larger than the number of ServiceEntries (then a full build is no dearer).
 */
export function updateWorkloads(previous: ServiceBuild, changes: readonly WorkloadChange[], selection: WorkloadSelection, options: ResolvedMeshOptions): WorkloadUpdate | undefined {
  const state = registryStateOf(previous);
  if (!state || changes.length > state.builds.size) return undefined;
  const byNamespace = new Map<string, Workload[]>();
  for (const { before, after } of changes) {
    for (const entry of [before, after]) {
      if (!entry) continue;
      const list = byNamespace.get(entry.namespace);
      if (list) list.push(entry);
      else byNamespace.set(entry.namespace, [entry]);
    }
  }
  const replaced = new Map<string, EntryBuild>();
  const hosts: string[] = [];
  for (const [key, build] of state.builds) {
    const selector = build.se.spec.workloadSelector;
    const touched = byNamespace.get(build.se.namespace);
    if (!selector || !touched) continue;
    const labels = selector.labels ?? {};
    if (!touched.some((we) => labelsMatch(labels, we.spec.labels ?? {}))) continue;
    const selected = selection.select(build.se.namespace, labels);
    if (sameList(selected, build.workloads)) continue;
    replaced.set(key, buildEntry(build.se, build.hosts, selected, options, build));
    hosts.push(...build.hosts);
  }
  return { build: rebuildEntries(previous, state, replaced), hosts: hosts.sort(compareStrings) };
}
