import type { MeshSnapshot } from '@aviary/mesh-model';
import type { ProxyInfo, SnapshotInput } from '@aviary/xds-cache';
import { Ctx, resolveTranslateOptions, type TranslateOptions } from './context';
import { prune, T, type Msg } from './envoy';
import { proxylessResources } from './proxyless';
import type { Generated, NamedResource } from './result';
import { routerResources } from './router';
import { sidecarResources } from './sidecar';

/** The four xDS resource sets for one proxy, each sorted by name, plus what was left out. */
export interface XdsResources {
  readonly listeners: readonly NamedResource[];
  readonly routes: readonly NamedResource[];
  readonly clusters: readonly NamedResource[];
  readonly endpoints: readonly NamedResource[];
  /** Human-readable notes on config the translator skipped or adjusted, sorted. */
  readonly problems: readonly string[];
}

function finish(list: NamedResource[], problems: string[], kind: string): NamedResource[] {
  list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: NamedResource[] = [];
  for (const r of list) {
    if (out.length > 0 && out[out.length - 1]!.name === r.name) {
      if (JSON.stringify(out[out.length - 1]!.resource) !== JSON.stringify(r.resource)) problems.push(`two different ${kind} named ${r.name}; the first is kept`);
      continue;
    }
    out.push({ name: r.name, resource: prune(r.resource) });
  }
  return out;
}

/**
 * Translates the mesh snapshot into the Envoy v3 resources one proxy receives. Pure and
 * deterministic: no clock, no I/O, input order does not matter; the same inputs give
 * byte-identical JSON. Messages are in the canonical form @aviary/xds-protos encodes
 * (snake_case fields, nested Anys as `{ '@type', ... }`).
 */
export function translate(proxy: ProxyInfo, snapshot: MeshSnapshot, options?: TranslateOptions): XdsResources {
  const ctx = new Ctx(proxy, snapshot, resolveTranslateOptions(options));
  let generated: Generated;
  switch (proxy.kind) {
    case 'proxyless':
      generated = proxylessResources(ctx);
      break;
    case 'router':
      generated = routerResources(ctx);
      break;
    default:
      generated = sidecarResources(ctx);
  }
  const problems = ctx.problems;
  const result = {
    listeners: finish(generated.listeners, problems, 'listeners'),
    routes: finish(generated.routes, problems, 'route configurations'),
    clusters: finish(generated.clusters, problems, 'clusters'),
    endpoints: finish(generated.endpoints, problems, 'cluster load assignments'),
    problems: [...new Set(problems)].sort(),
  };
  return result;
}

/** Resource type URL → messages, the input of @aviary/xds-cache's `Snapshot.build` / `TranslatingSource`. */
export function toSnapshotInput(resources: XdsResources): SnapshotInput {
  const msgs = (list: readonly NamedResource[]): Msg[] => list.map((r) => r.resource);
  return {
    [T.Listener]: msgs(resources.listeners),
    [T.RouteConfiguration]: msgs(resources.routes),
    [T.Cluster]: msgs(resources.clusters),
    [T.ClusterLoadAssignment]: msgs(resources.endpoints),
  };
}

/** `translate` shaped for `TranslatingSource({ translate })`. */
export function translateForCache(options?: TranslateOptions): (proxy: ProxyInfo, snapshot: MeshSnapshot) => SnapshotInput {
  return (proxy, snapshot) => toSnapshotInput(translate(proxy, snapshot, options));
}

/**
 * Proxies that receive identical resources share a key (for `groupOf`): the translation reads
 * only kind, namespace, labels and (for sidecar inbound) the IP.
 */
export function proxyGroupKey(proxy: ProxyInfo): string {
  const labels = Object.keys(proxy.labels).sort().map((k) => [k, proxy.labels[k]]);
  return JSON.stringify([proxy.kind, proxy.namespace, labels, proxy.kind === 'sidecar' ? (proxy.ip ?? '') : '']);
}
