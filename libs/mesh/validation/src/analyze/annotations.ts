import { resourceKey } from '@aviary/mesh-api';
import { istioAnnotations } from './istio-annotations';
import type { Findings, Snapshot } from './model';

/** Set by the injector, the gateway controller or revision tooling: never reported. */
const alwaysIgnored = new Set(['sidecar.istio.io/status', 'gateway.istio.io/controller-version', 'istio.io/rev']);

/** An annotation Istio owns: its prefix ends in `istio.io` (or the legacy ingress class). */
function isIstioAnnotation(name: string): boolean {
  return name === 'kubernetes.io/ingress.class' || name.split('/')[0]!.endsWith('istio.io');
}

/**
 * IST0108 (an Istio annotation istio.io/api does not define), IST0135 (a deprecated one),
 * IST0107 (one on a kind it does not apply to) on Namespaces, Services, Pods and Deployments,
 * against istio.io/api's annotation table (istio-annotations.ts, generated).
 */
export function analyzeAnnotations(s: Snapshot, out: Findings): void {
  for (const r of [...s.kube('Namespace'), ...s.kube('Service'), ...s.kube('Pod'), ...s.kube('Deployment')]) {
    const annotations = r.metadata.annotations ?? {};
    for (const name of Object.keys(annotations).sort()) {
      if (!isIstioAnnotation(name) || alwaysIgnored.has(name)) continue;
      const path = `metadata.annotations[${JSON.stringify(name)}]`;
      const info = istioAnnotations.get(name);
      if (info === undefined) {
        out.add('UnknownAnnotation', `Unknown annotation: ${name}`, [resourceKey(r)], path);
        continue;
      }
      const injectLabel = name === 'sidecar.istio.io/inject' && r.metadata.labels?.['sidecar.istio.io/inject'] !== undefined;
      if (info.deprecated && !injectLabel) {
        const extra = name === 'sidecar.istio.io/inject' ? ' in favor of the "sidecar.istio.io/inject" label' : '';
        out.add('DeprecatedAnnotation', `Annotation ${JSON.stringify(name)} has been deprecated${extra} and may not work in future Istio versions.`, [resourceKey(r)], path);
      }
      if (info.resources.includes('Any') || info.resources.includes(r.kind as never)) continue;
      out.add('MisplacedAnnotation', `Misplaced annotation: ${name} can only be applied to ${info.resources.join(', ')}`, [resourceKey(r)], path);
    }
  }
}
