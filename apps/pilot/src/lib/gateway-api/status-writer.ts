import type { Logger } from 'pino';
import type { ConfigStore } from '@aviary/config-store';
import { isAviaryError } from '@aviary/errors';
import { refKey, type ResourceRef } from '@aviary/mesh-api';
import { controllerNames, type ComputedStatus, type MeshSnapshot } from '@aviary/mesh-model';
import type { GatewayInfra } from '@aviary/k8s';

export interface GatewayStatusWriterOptions {
  readonly store: ConfigStore;
  readonly logger: Logger;
  /**
   * Automated deployment (Kubernetes mode): a Gateway's Service address and proxy availability,
   * undefined for a Gateway it does not deploy. A deployed Gateway gets `status.addresses` and is
   * Programmed only once its Deployment is available.
   */
  readonly gatewayInfra?: (namespace: string, name: string) => GatewayInfra | undefined;
  /** Clock for lastTransitionTime; injectable for tests. */
  readonly now?: () => Date;
}

type Condition = { type: string; status: string; reason: string; message: string; observedGeneration: number; lastTransitionTime?: string };
type Parent = { parentRef: Record<string, unknown>; controllerName: string; conditions: Condition[] };

/**
 * Writes the Gateway API status the model computed (Accepted, Programmed, ResolvedRefs with the
 * spec's reasons) back through the config store's status subresource: Kubernetes' `/status` in
 * Kubernetes mode, the KV entry's status in local mode. A condition keeps its
 * `lastTransitionTime` while its status holds; route parents written by other controllers are
 * kept, Aviary's removed from a route that no longer names its Gateways. Writes are serialised and only made when the status differs; a conflict (the object
 * changed meanwhile) is left to the next model build, which follows that change.
 */
export class GatewayStatusWriter {
  private latest: MeshSnapshot | undefined;
  private running: Promise<void> | undefined;
  /** Objects this writer gave a status, so that one no longer computed loses Aviary's parts. */
  private written = new Map<string, ResourceRef>();

  constructor(private readonly opts: GatewayStatusWriterOptions) {}

  /** Called with each new model; returns when the writes it started are done. */
  sync(snapshot: MeshSnapshot): Promise<void> {
    this.latest = snapshot;
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Writes the latest model's statuses again (the deployed Gateways' infrastructure changed). */
  resync(): Promise<void> {
    const snapshot = this.latest ?? this.last;
    return snapshot === undefined ? Promise.resolve() : this.sync(snapshot);
  }

  private last: MeshSnapshot | undefined;

  private async drain(): Promise<void> {
    while (this.latest !== undefined) {
      const snapshot = this.latest;
      this.latest = undefined;
      this.last = snapshot;
      const wanted = new Map(snapshot.gatewayApi.statuses.map((s) => [refKey(s.ref), this.withInfra(s)]));
      for (const [key, ref] of this.written) if (!wanted.has(key)) wanted.set(key, { ref, status: {} });
      const written = new Map<string, ResourceRef>();
      for (const [key, computed] of wanted) {
        try {
          if (await this.write(computed)) written.set(key, computed.ref);
        } catch (err) {
          if (isAviaryError(err) && (err.kind === 'CONFLICT' || err.kind === 'NOT_FOUND')) continue;
          this.opts.logger.warn({ err, resource: key }, 'could not write Gateway API status');
          written.set(key, computed.ref);
        }
      }
      this.written = written;
    }
  }

  /** A deployed Gateway's status: its Service address, and Programmed held until its proxy is available. */
  private withInfra(computed: ComputedStatus): ComputedStatus {
    if (computed.ref.kind !== 'KubernetesGateway' || this.opts.gatewayInfra === undefined) return computed;
    const infra = this.opts.gatewayInfra(computed.ref.namespace, computed.ref.name);
    if (infra === undefined) return computed;
    const conditions = ((computed.status['conditions'] as Condition[] | undefined) ?? []).map((c) => {
      if (infra.invalidParameters !== undefined && (c.type === 'Accepted' || c.type === 'Programmed')) {
        return { ...c, status: 'False', reason: c.type === 'Accepted' ? 'InvalidParameters' : 'Invalid', message: infra.invalidParameters };
      }
      if (c.type !== 'Programmed' || c.status !== 'True') return c;
      if (infra.address === undefined) return { ...c, status: 'False', reason: 'AddressNotAssigned', message: 'The gateway Service has no address yet' };
      if (!infra.available) return { ...c, status: 'False', reason: 'Pending', message: 'Waiting for the gateway Deployment to be available' };
      return c;
    });
    return { ref: computed.ref, status: { ...computed.status, conditions, addresses: infra.address === undefined ? [] : [infra.address] } };
  }

  /** Writes one status when it differs; returns whether the object now carries Aviary's status. */
  private async write(computed: ComputedStatus): Promise<boolean> {
    const current = await this.opts.store.get(computed.ref);
    if (current === undefined) return false;
    const now = (this.opts.now ?? (() => new Date()))().toISOString();
    const old = (current.status ?? {}) as Record<string, unknown>;
    const next = merge(old, computed.status, now);
    if (JSON.stringify(next) === JSON.stringify(old)) return Object.keys(computed.status).length > 0;
    await this.opts.store.updateStatus(computed.ref, next, current.metadata.resourceVersion ?? '');
    return Object.keys(computed.status).length > 0;
  }
}

function withTimes(conditions: readonly Condition[], before: readonly Condition[] | undefined, now: string): Condition[] {
  return conditions.map((c) => {
    const prev = before?.find((b) => b.type === c.type);
    const same = prev !== undefined && prev.status === c.status && prev.reason === c.reason && prev.lastTransitionTime !== undefined;
    return { ...c, lastTransitionTime: same ? prev.lastTransitionTime! : now };
  });
}

/** The new status: Aviary's computed parts with kept transition times; other controllers' route parents kept. */
export function merge(old: Record<string, unknown>, computed: Readonly<Record<string, unknown>>, now: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...old };
  if (computed['addresses'] !== undefined) out['addresses'] = computed['addresses'];
  if (computed['conditions'] !== undefined) out['conditions'] = withTimes(computed['conditions'] as Condition[], old['conditions'] as Condition[] | undefined, now);
  if (computed['listeners'] !== undefined) {
    const before = (old['listeners'] as { name: string; conditions: Condition[] }[] | undefined) ?? [];
    out['listeners'] = (computed['listeners'] as { name: string; conditions: Condition[] }[]).map((l) => ({ ...l, conditions: withTimes(l.conditions, before.find((b) => b.name === l.name)?.conditions, now) }));
  } else if (computed['conditions'] !== undefined) delete out['listeners'];
  const oldParents = (old['parents'] as Parent[] | undefined) ?? [];
  if (computed['parents'] !== undefined || oldParents.some((p) => controllerNames.includes(p.controllerName))) {
    const ours = ((computed['parents'] as Parent[] | undefined) ?? []).map((p) => {
      const prev = oldParents.find((o) => controllerNames.includes(o.controllerName) && JSON.stringify(o.parentRef) === JSON.stringify(p.parentRef));
      return { ...p, conditions: withTimes(p.conditions, prev?.conditions, now) };
    });
    out['parents'] = [...oldParents.filter((p) => !controllerNames.includes(p.controllerName)), ...ours];
  }
  // A Gateway or class no longer ours keeps its conditions: they carry no controller name, and the
  // controller that now owns it replaces them (deleting them could race with its write).
  return out;
}
