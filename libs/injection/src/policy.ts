import type { NamespaceInfo, Pod } from './types';
import type { InjectionValues } from './values';

export const Labels = {
  namespaceInjection: 'istio-injection',
  revision: 'istio.io/rev',
  sidecarInject: 'sidecar.istio.io/inject',
} as const;

export const Annotations = {
  sidecarInject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
  nativeSidecar: 'sidecar.istio.io/nativeSidecar',
  rewriteAppHTTPProbers: 'sidecar.istio.io/rewriteAppHTTPProbers',
  proxyImage: 'sidecar.istio.io/proxyImage',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  proxyConfig: 'proxy.istio.io/config',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
} as const;

/** Why a pod is injected. A closed set: it is a metric label. */
export const injectReasons = [
  'namespace-label', // namespace istio-injection=enabled (default revision)
  'namespace-revision', // namespace istio.io/rev=<this revision>
  'pod-label', // pod label sidecar.istio.io/inject=true, namespace unlabelled
  'pod-revision', // pod label istio.io/rev=<this revision>, namespace unlabelled
  'namespace-default', // enableNamespacesByDefault and nothing says otherwise
  'webhook-selected', // namespace labels unknown here: the webhook's selectors chose the pod
] as const;

/** Why a pod is left alone. A closed set: it is a metric label. */
export const skipReasons = [
  'host-network',
  'system-namespace',
  'already-injected',
  'pod-opt-out', // sidecar.istio.io/inject label (or, without it, annotation) is not true
  'namespace-disabled', // istio-injection is set to anything but enabled
  'revision-mismatch', // selected for another revision
  'namespace-not-selected', // nothing selects the pod
] as const;

export type InjectReason = (typeof injectReasons)[number];
export type SkipReason = (typeof skipReasons)[number];

export type InjectionDecision =
  | { readonly inject: true; readonly reason: InjectReason }
  | { readonly inject: false; readonly reason: SkipReason };

/**
 * Decides whether a pod gets a sidecar, as Istio does: its injector's `injectRequired` (host
 * network, ignored namespaces, the pod's `sidecar.istio.io/inject` label, then annotation) plus
 * the four selectors of Istio's MutatingWebhookConfiguration (namespace `istio-injection`,
 * namespace `istio.io/rev`, pod `sidecar.istio.io/inject`, pod `istio.io/rev`), which Istio
 * leaves to the API server. When the namespace's labels are unknown the selectors are assumed
 * to have matched. Note Istio's selectors match labels only: an annotation can opt a pod out,
 * but does not opt it in.
 */
export function decideInjection(pod: Pod, namespace: NamespaceInfo, values: InjectionValues, alreadyInjected: boolean): InjectionDecision {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  if (pod.spec.hostNetwork === true) return skip('host-network');
  if (values.excludedNamespaces.includes(namespace.name)) return skip('system-namespace');
  if (alreadyInjected) return skip('already-injected');

  // The label is the current API; when both are present Istio prefers the label.
  const selector = labels[Labels.sidecarInject] ?? annotations[Annotations.sidecarInject];
  const podChoice = selector === undefined || selector === '' ? undefined : isYamlTrue(selector);
  if (podChoice === false) return skip('pod-opt-out');

  const nsLabels = namespace.labels;
  if (nsLabels === undefined) return inject('webhook-selected');

  const nsInjection = nsLabels[Labels.namespaceInjection];
  if (nsInjection !== undefined) {
    if (nsInjection !== 'enabled') return skip('namespace-disabled');
    return values.defaultRevision ? inject('namespace-label') : skip('revision-mismatch');
  }
  const nsRevision = nsLabels[Labels.revision];
  if (nsRevision !== undefined) return nsRevision === values.revision ? inject('namespace-revision') : skip('revision-mismatch');

  const podRevision = labels[Labels.revision];
  if (podRevision !== undefined) return podRevision === values.revision ? inject('pod-revision') : skip('revision-mismatch');
  if (labels[Labels.sidecarInject] !== undefined && podChoice === true) {
    return values.defaultRevision ? inject('pod-label') : skip('revision-mismatch');
  }
  return values.enableNamespacesByDefault ? inject('namespace-default') : skip('namespace-not-selected');
}

/** YAML 1.1 truth, as Istio reads sidecar.istio.io/inject (y, yes, true, on). */
export function isYamlTrue(value: string): boolean {
  return ['y', 'yes', 'true', 'on'].includes(value.toLowerCase());
}

function inject(reason: InjectReason): InjectionDecision {
  return { inject: true, reason };
}

function skip(reason: SkipReason): InjectionDecision {
  return { inject: false, reason };
}
