import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import type { ChangeEvent } from '@aviary/config-store';
import { refKey, refOf, type StoredObject } from '@aviary/mesh-api';
import type { WatchEventType } from './informer';
import { SERVICE_ENTRY_PREFIX, translateRegistry, WORKLOAD_ENTRY_PREFIX } from './registry-translate';

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const REGION_LABEL = 'topology.kubernetes.io/region';
const ZONE_LABEL = 'topology.kubernetes.io/zone';

function keyOf(o: { metadata?: { namespace?: string; name?: string } }): string {
  return `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;
}

/** What of an EndpointSlice the index needs: the Service it belongs to and the Pods it lists. */
interface SliceRefs {
  readonly service: string | undefined;
  readonly pods: readonly string[];
}

function refsOf(slice: V1EndpointSlice): SliceRefs {
  const namespace = slice.metadata?.namespace ?? 'default';
  const svcName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  const pods: string[] = [];
  for (const ep of slice.endpoints ?? []) {
    if (ep.targetRef?.kind === 'Pod' && ep.targetRef.name !== undefined) pods.push(`${ep.targetRef.namespace ?? namespace}/${ep.targetRef.name}`);
  }
  return { service: svcName === undefined ? undefined : `${namespace}/${svcName}`, pods };
}

/** The part of a Node translation reads (its locality); other Node updates (status heartbeats) change nothing. */
function localityOf(node: V1Node | undefined): string {
  const labels = node?.metadata?.labels ?? {};
  return `${labels[REGION_LABEL] ?? ''}/${labels[ZONE_LABEL] ?? ''}`;
}

/**
 * The Kubernetes registry's state between informer events and the change events it reports.
 * Feed it every informer event, then `flush()`: it re-translates (`translateRegistry`) only the
 * Services touched since the last flush, together with every Service that shares a Pod with them
 * (a Pod's WorkloadEntry takes ports from all the slices that list it), and reports what changed
 * in the synthesized objects. The first flush, and any change of a Node's locality labels,
 * translates everything. The result equals translating the whole registry every time (a
 * property test holds them side by side).
 */
export class RegistryTracker {
  private readonly services = new Map<string, V1Service>();
  private readonly slices = new Map<string, V1EndpointSlice>();
  private readonly pods = new Map<string, V1Pod>();
  private readonly nodes = new Map<string, V1Node>();
  private readonly sliceRefs = new Map<string, SliceRefs>();
  /** Service key → keys of the slices labelled with it. */
  private readonly slicesOfService = new Map<string, Set<string>>();
  /** Pod key → Service key → how many of that Service's slices list the Pod. */
  private readonly servicesOfPod = new Map<string, Map<string, number>>();
  private readonly dirtyServices = new Set<string>();
  private readonly dirtyPods = new Set<string>();
  private everything = true;
  /** What was last reported, by ref key, with its spec's JSON for comparison. */
  private readonly reported = new Map<string, { readonly json: string; readonly object: StoredObject }>();

  constructor(private readonly domainSuffix: string) {}

  /** How many synthesized objects are reported now. */
  get size(): number {
    return this.reported.size;
  }

  service(type: WatchEventType, service: V1Service): void {
    const key = keyOf(service);
    if (type === 'deleted') this.services.delete(key);
    else this.services.set(key, service);
    this.dirtyServices.add(key);
  }

  slice(type: WatchEventType, slice: V1EndpointSlice): void {
    const key = keyOf(slice);
    const old = this.sliceRefs.get(key);
    if (old) this.unindex(key, old);
    if (type === 'deleted') {
      this.slices.delete(key);
      return;
    }
    this.slices.set(key, slice);
    this.index(key, refsOf(slice));
  }

  pod(type: WatchEventType, pod: V1Pod): void {
    const key = keyOf(pod);
    if (type === 'deleted') this.pods.delete(key);
    else this.pods.set(key, pod);
    this.dirtyPods.add(key);
  }

  node(type: WatchEventType, node: V1Node): void {
    const name = node.metadata?.name ?? '';
    const before = localityOf(this.nodes.get(name));
    if (type === 'deleted') this.nodes.delete(name);
    else this.nodes.set(name, node);
    if (localityOf(this.nodes.get(name)) !== before) this.everything = true;
  }

  /**
   * The change events since the last flush: each synthesized object created, updated (its spec
   * changed) or deleted, sorted by kind/namespace/name, deletions last; `revision` and
   * `resourceVersion` carry the caller's revision.
   */
  flush(revision: number): ChangeEvent[] {
    const full = this.everything;
    const { services, pods } = full ? { services: new Set(this.services.keys()), pods: new Set<string>() } : this.closure();
    this.everything = false;
    this.dirtyServices.clear();
    this.dirtyPods.clear();
    const slices: V1EndpointSlice[] = [];
    for (const svc of services) for (const slice of this.slicesOfService.get(svc) ?? []) slices.push(this.slices.get(slice)!);
    const input = { services: [...services].flatMap((k) => this.services.get(k) ?? []), endpointSlices: full ? [...this.slices.values()] : slices, pods: this.pods, nodes: this.nodes };
    const owned = (key: string): boolean => {
      if (full) return true;
      const [kind, namespace, name] = key.split('/') as [string, string, string];
      if (kind === 'ServiceEntry') return name.startsWith(SERVICE_ENTRY_PREFIX) && services.has(`${namespace}/${name.slice(SERVICE_ENTRY_PREFIX.length)}`);
      return name.startsWith(WORKLOAD_ENTRY_PREFIX) && pods.has(`${namespace}/${name.slice(WORKLOAD_ENTRY_PREFIX.length)}`);
    };
    const events: ChangeEvent[] = [];
    const seen = new Set<string>();
    for (const object of translateRegistry(input, this.domainSuffix)) {
      const key = refKey(refOf(object));
      seen.add(key);
      const json = JSON.stringify(object.spec);
      const before = this.reported.get(key);
      if (before?.json === json) continue;
      const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(revision) } };
      this.reported.set(key, { json, object: stored });
      events.push({ op: before === undefined ? 'created' : 'updated', ref: refOf(object), revision, object: stored });
    }
    for (const [key, { object }] of [...this.reported]) {
      if (seen.has(key) || !owned(key)) continue;
      this.reported.delete(key);
      events.push({ op: 'deleted', ref: refOf(object), revision });
    }
    return events;
  }

  /**
   * The Services and Pods to re-translate: the touched ones, closed over "a slice of this Service
   * lists this Pod" (both ways), so every slice that shapes an owned object is in the input.
   * Pods include the ones no slice lists any more (their WorkloadEntries go).
   */
  private closure(): { services: Set<string>; pods: Set<string> } {
    const services = new Set<string>();
    const pods = new Set<string>();
    const serviceQueue = [...this.dirtyServices];
    const podQueue = [...this.dirtyPods];
    while (serviceQueue.length > 0 || podQueue.length > 0) {
      const svc = serviceQueue.pop();
      if (svc !== undefined && !services.has(svc)) {
        services.add(svc);
        for (const slice of this.slicesOfService.get(svc) ?? []) podQueue.push(...this.sliceRefs.get(slice)!.pods);
      }
      const pod = podQueue.pop();
      if (pod !== undefined && !pods.has(pod)) {
        pods.add(pod);
        serviceQueue.push(...(this.servicesOfPod.get(pod)?.keys() ?? []));
      }
    }
    return { services, pods };
  }

  private index(key: string, refs: SliceRefs): void {
    this.sliceRefs.set(key, refs);
    if (refs.service === undefined) return;
    this.dirtyServices.add(refs.service);
    let slices = this.slicesOfService.get(refs.service);
    if (!slices) this.slicesOfService.set(refs.service, (slices = new Set()));
    slices.add(key);
    for (const pod of refs.pods) {
      this.dirtyPods.add(pod);
      let services = this.servicesOfPod.get(pod);
      if (!services) this.servicesOfPod.set(pod, (services = new Map()));
      services.set(refs.service, (services.get(refs.service) ?? 0) + 1);
    }
  }

  private unindex(key: string, refs: SliceRefs): void {
    this.sliceRefs.delete(key);
    if (refs.service === undefined) return;
    this.dirtyServices.add(refs.service);
    const slices = this.slicesOfService.get(refs.service);
    slices?.delete(key);
    if (slices?.size === 0) this.slicesOfService.delete(refs.service);
    for (const pod of refs.pods) {
      this.dirtyPods.add(pod);
      const services = this.servicesOfPod.get(pod);
      const n = (services?.get(refs.service) ?? 0) - 1;
      if (n > 0) services!.set(refs.service, n);
      else services?.delete(refs.service);
      if (services?.size === 0) this.servicesOfPod.delete(pod);
    }
  }
}
