import { CREDENTIALS_INPUT, type ProxyInfo, type SnapshotDelta } from '@aviary/mesh-model';
import { TypeUrl, type ResourceTypeUrl } from '@aviary/xds-api';
import { endpointNamesOf, firstInstanceIp } from './context';

/**
 * What a model change may change in the translated output, as narrowly as translation knows it
 * (the xDS cache's `SourceChange` has this shape, without its timing).
 */
export interface XdsChange {
  /** Types that may have changed; undefined: all of them; empty: none. */
  readonly types?: readonly ResourceTypeUrl[];
  /** Names of the resources (of `types`) that may have changed; undefined: any. */
  readonly names?: (name: string) => boolean;
  /** Proxies whose output may have changed; undefined: every proxy. */
  readonly affects?: (proxy: ProxyInfo) => boolean;
  /** Why (the xDS cache's `ChangeReason`): only endpoints, any config, or credentials. */
  readonly reason: 'endpoints' | 'config' | 'credentials';
}

/**
 * The changes of the xDS output that a model build implies, in the order to apply them:
 * - only the credentials changed: Secrets, for every proxy but proxyless clients;
 * - the first build, or any config change: everything, for every proxy (a full push);
 * - neither endpoints nor workload addresses changed: nothing (`types: []`);
 * - endpoints of services changed: their ClusterLoadAssignments, by name (an EDS-only push);
 *   and when workloads at some addresses changed, everything for the proxies at those
 *   addresses (a sidecar's inbound side is built from its own endpoints).
 * The changes are separate on purpose: merged, the by-address one would widen the EDS-only one
 * to every type for every proxy. Both of an endpoint change have reason `endpoints` (what a
 * debounce may push on its leading edge); a config change has `config`, Secrets `credentials`.
 */
export function changeFor(delta: SnapshotDelta): readonly XdsChange[] {
  // Only the credentials (Secrets) changed: only SDS resources can differ, and proxyless clients use none.
  if (delta.previous !== undefined && delta.changedKinds.length > 0 && delta.changedKinds.every((k) => k === CREDENTIALS_INPUT)) {
    return [{ types: [TypeUrl.Secret], affects: (p) => p.kind !== 'proxyless', reason: 'credentials' }];
  }
  if (delta.configChanged || delta.previous === undefined) return [{ reason: 'config' }];
  if (delta.endpointsChanged.length === 0 && delta.affectedAddresses.length === 0) return [{ types: [], reason: 'endpoints' }];
  const changes: XdsChange[] = [{ types: [TypeUrl.ClusterLoadAssignment], names: memoized(endpointNamesOf(delta.endpointsChanged)), reason: 'endpoints' }];
  if (delta.affectedAddresses.length > 0) {
    const addresses = new Set(delta.affectedAddresses);
    // A proxy is at an address by its node IP or, in local mode (INTERCEPTION_MODE NONE), its first INSTANCE_IPS.
    changes.push({ affects: (p) => (p.ip !== undefined && addresses.has(p.ip)) || addresses.has(firstInstanceIp(p.metadata) ?? ''), reason: 'endpoints' });
  }
  return changes;
}

/**
 * `names` with its answers remembered: the server asks it for every name every stream watches
 * (1,000 streams × 120 clusters is 120,000 calls for one change), but those are the same few
 * thousand cluster names, strings V8 has already hashed.
 */
function memoized(names: (name: string) => boolean): (name: string) => boolean {
  const answers = new Map<string, boolean>();
  return (name) => {
    let answer = answers.get(name);
    if (answer === undefined) {
      answer = names(name);
      answers.set(name, answer);
    }
    return answer;
  };
}
