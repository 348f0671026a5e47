import type { MeshSnapshot, ProxyInfo, SnapshotDelta } from '@aviary/mesh-model';
import { TranslatingSource, type ResourceEncoder } from '@aviary/xds-cache';
import { cachedTranslation, changeFor, proxyGroupKey } from '@aviary/xds-translate';

/** The xDS cache's view of the mesh: a translating source over mesh snapshots, served per proxy group. */
export type MeshSource = TranslatingSource<MeshSnapshot, ProxyInfo>;

export interface MeshSourceOptions {
  /** Called when a translation is refused (inconsistent or invalid); the group's last good snapshot stays served. */
  readonly onRejected?: (proxy: ProxyInfo, error: unknown) => void;
  readonly encoder?: ResourceEncoder;
}

/**
 * Plugs translation into the cache: proxies with the same `proxyGroupKey` share one snapshot,
 * the translation shares common parts between groups, and an EDS-only change re-translates
 * only the named endpoints (`translateEndpoints`).
 */
export function meshSource(model: MeshSnapshot, options: MeshSourceOptions = {}): MeshSource {
  const translation = cachedTranslation();
  return new TranslatingSource<MeshSnapshot, ProxyInfo>(model, {
    translate: translation.translate,
    translateEndpoints: translation.translateEndpoints,
    translateClusters: translation.translateClusters,
    groupOf: proxyGroupKey,
    ...(options.onRejected && { onRejected: options.onRejected }),
    ...(options.encoder && { encoder: options.encoder }),
  });
}

/** Hands a model build to the source with what it changed (see `changeFor`), each change observed at `observedAt`. */
export function applyDelta(source: MeshSource, delta: SnapshotDelta, observedAt: number): void {
  for (const change of changeFor(delta)) source.setModel(delta.snapshot, { ...change, observedAt });
}
