import { type MeshResource } from '@aviary/mesh-api';
import { type Report } from '../finding';
import { occurrences } from '../fields/paths';
import { fieldRegistry, istioKinds, type IstioKind } from '../fields/registry';

const isIstioKind = (kind: string): kind is IstioKind => (istioKinds as readonly string[]).includes(kind);

/**
 * The one place fields Aviary does not translate are refused: every registry entry with a
 * refusal, at every place the resource uses it (errors name the concrete field path).
 */
export function refuseUnsupported(resource: MeshResource, r: Report): void {
  if (!isIstioKind(resource.kind)) return;
  const spec = resource.spec as Record<string, unknown>;
  for (const [pattern, rule] of Object.entries(fieldRegistry[resource.kind])) {
    const refusal = rule.refuse;
    if (refusal === undefined) continue;
    for (const o of occurrences(resource, pattern)) {
      if (refusal.when === undefined || refusal.when.test(o.value, spec)) r.error(o.path, refusal.message);
    }
  }
}
