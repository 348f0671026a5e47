import { AviaryError } from '@aviary/errors';
import { Annotations, decideInjection, type InjectionDecision } from './policy';
import { pointer } from './pointer';
import { rewriteAppProbes } from './probes';
import { podSettings } from './settings';
import { isObject, renderTemplate, type InjectionTemplate, type TemplateContext } from './template';
import type { Container, JsonPatchOperation, NamespaceInfo, Pod } from './types';
import type { InjectionValues } from './values';

/** The value of the `sidecar.istio.io/status` annotation (Istio's SidecarInjectionStatus). */
export interface InjectionStatus {
  readonly initContainers: readonly string[];
  readonly containers: readonly string[];
  readonly volumes: readonly string[];
  readonly imagePullSecrets: null;
  readonly revision: string;
}

export interface InjectionPlan {
  readonly decision: InjectionDecision;
  /** RFC 6902 operations that turn the pod into the injected pod; empty when not injected. */
  readonly patch: readonly JsonPatchOperation[];
  readonly status?: InjectionStatus;
  /** `patch` serialized as JSON (computed anyway for the size check; saves the caller a pass). */
  readonly patchJson: string;
}

/** What the caller may already know about the input, to spare work. */
export interface InjectionHints {
  /** Size of the pod as JSON (e.g. bounded by the AdmissionReview body size). */
  readonly podBytes?: number;
}

/**
 * `(pod, namespace, template, values) → JSON patch`: the patch that injects the sidecar, or an
 * empty patch when the pod is not to be injected. Pure and deterministic. Throws AviaryError:
 * POD_INVALID (not a pod spec), ANNOTATION_INVALID, POD_CONFLICT (a name the injection needs is
 * taken), INJECTION_LIMITS_EXCEEDED.
 */
export function injectionPatch(pod: unknown, namespace: NamespaceInfo, template: InjectionTemplate, values: InjectionValues): readonly JsonPatchOperation[] {
  return planInjection(pod, namespace, template, values).patch;
}

/** Like `injectionPatch`, with the decision and its reason and the status annotation's content. */
export function planInjection(input: unknown, namespace: NamespaceInfo, template: InjectionTemplate, values: InjectionValues, hints: InjectionHints = {}): InjectionPlan {
  const pod = asPod(input);
  const limits = values.limits;
  const initContainers = pod.spec.initContainers ?? [];
  if (pod.spec.containers.length + initContainers.length + 2 > limits.maxContainers) {
    throw limitsExceeded(`the pod has ${pod.spec.containers.length + initContainers.length} containers; with the sidecar it would exceed ${limits.maxContainers}`);
  }
  const names = templateNames(template);
  const annotations = pod.metadata?.annotations ?? {};
  const alreadyInjected =
    annotations[Annotations.status] !== undefined || [...pod.spec.containers, ...initContainers].some((c) => c.name === names.sidecar);
  const decision = decideInjection(pod, namespace, values, alreadyInjected);
  if (!decision.inject) return { decision, patch: [], patchJson: '[]' };

  const settings = podSettings(pod, values);
  const probes = settings.rewriteProbes ? rewriteAppProbes(pod.spec.containers, values.ports.status) : { ops: [], probers: {} };
  const ctx: TemplateContext = {
    values: { ...values, proxyImage: settings.proxyImage },
    proxy: { resources: settings.resources },
    capture: settings.capture,
    canonical: canonical(pod),
    native: settings.native,
    hold: settings.hold,
    appProbers: Object.keys(probes.probers).length === 0 ? undefined : JSON.stringify(probes.probers),
  };
  const rendered = renderTemplate(template, ctx);
  for (const c of [rendered.sidecar, rendered.initContainer]) {
    if ([...pod.spec.containers, ...initContainers].some((existing) => existing.name === c.name)) throw conflict(`the pod already has a container named ${c.name}`);
  }
  for (const v of rendered.volumes) {
    if ((pod.spec.volumes ?? []).some((existing) => existing.name === v.name)) throw conflict(`the pod already has a volume named ${v.name}`);
  }

  // Probe rewrites address app containers by their current index, so they go first.
  const patch: JsonPatchOperation[] = [...probes.ops];
  if (settings.native) {
    // {init, proxy, the pod's own init containers}: the pod's init containers run in the mesh.
    if (pod.spec.initContainers == null) patch.push({ op: 'add', path: '/spec/initContainers', value: [rendered.initContainer, rendered.sidecar] });
    else patch.push({ op: 'add', path: '/spec/initContainers/0', value: rendered.initContainer }, { op: 'add', path: '/spec/initContainers/1', value: rendered.sidecar });
  } else {
    // The capture rules go in after the pod's own init containers, so they are not blackholed.
    if (pod.spec.initContainers == null) patch.push({ op: 'add', path: '/spec/initContainers', value: [rendered.initContainer] });
    else patch.push({ op: 'add', path: '/spec/initContainers/-', value: rendered.initContainer });
    // Last keeps `kubectl exec`/`logs` defaulting to the app; first lets the app wait for the proxy.
    patch.push({ op: 'add', path: settings.hold ? '/spec/containers/0' : '/spec/containers/-', value: rendered.sidecar });
  }
  if (pod.spec.volumes == null) patch.push({ op: 'add', path: '/spec/volumes', value: rendered.volumes });
  else for (const v of rendered.volumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });

  const status: InjectionStatus = {
    initContainers: settings.native ? [rendered.initContainer.name, rendered.sidecar.name] : [rendered.initContainer.name],
    containers: settings.native ? [] : [rendered.sidecar.name],
    volumes: rendered.volumes.map((v) => v.name),
    imagePullSecrets: null,
    revision: values.revision,
  };
  const labels = pod.metadata?.labels;
  const newLabels = Object.entries(rendered.podLabels).filter(([k]) => labels?.[k] === undefined);
  const prometheusSet = Object.keys(rendered.prometheusAnnotations).some((k) => annotations[k] !== undefined);
  const newAnnotations: [string, string][] = [
    ...(prometheusSet ? [] : Object.entries(rendered.prometheusAnnotations)),
    // kubectl exec/logs keep defaulting to the app even when the proxy comes first.
    ...(annotations[Annotations.defaultContainer] === undefined ? [[Annotations.defaultContainer, pod.spec.containers[0]!.name] as [string, string]] : []),
    [Annotations.status, JSON.stringify(status)],
  ];
  if (pod.metadata == null) {
    patch.push({ op: 'add', path: '/metadata', value: { labels: Object.fromEntries(newLabels), annotations: Object.fromEntries(newAnnotations) } });
  } else {
    patch.push(...mapAdds(['metadata', 'labels'], labels, newLabels));
    patch.push(...mapAdds(['metadata', 'annotations'], pod.metadata.annotations, newAnnotations));
  }

  const patchJson = checkSizes(pod, patch, annotations, newAnnotations, values, hints.podBytes);
  return { decision, patch, status, patchJson };
}

/** The container names the template gives the proxy and the init container (literal in the template). */
export function templateNames(template: InjectionTemplate): { sidecar: string; initContainer: string } {
  const sidecar = (template.source['sidecar'] as Record<string, unknown> | undefined)?.['name'];
  const initContainer = (template.source['initContainer'] as Record<string, unknown> | undefined)?.['name'];
  if (typeof sidecar !== 'string' || typeof initContainer !== 'string' || sidecar.includes('{{') || initContainer.includes('{{')) {
    throw new AviaryError('FAILED_PRECONDITION', 'TEMPLATE_INVALID', 'injection template: sidecar.name and initContainer.name must be literal strings');
  }
  return { sidecar, initContainer };
}

function mapAdds(at: readonly string[], existing: Record<string, string> | null | undefined, entries: readonly [string, string][]): JsonPatchOperation[] {
  if (entries.length === 0) return [];
  if (existing === undefined || existing === null) return [{ op: 'add', path: pointer(...at), value: Object.fromEntries(entries) }];
  return entries.map(([k, v]) => ({ op: 'add', path: pointer(...at, k), value: v }));
}

function canonical(pod: Pod): { name: string; revision: string } {
  const l = pod.metadata?.labels ?? {};
  return {
    name: l['service.istio.io/canonical-name'] ?? l['app.kubernetes.io/name'] ?? l['app'] ?? workloadName(pod),
    revision: l['service.istio.io/canonical-revision'] ?? l['app.kubernetes.io/version'] ?? l['version'] ?? 'latest',
  };
}

/** The owning workload's name: a Deployment pod's generateName without its pod-template-hash. */
function workloadName(pod: Pod): string {
  const meta = pod.metadata ?? {};
  if (meta.generateName !== undefined && meta.generateName !== '') {
    const base = meta.generateName.replace(/-$/, '');
    const hash = meta.labels?.['pod-template-hash'];
    return hash !== undefined && base.endsWith(`-${hash}`) ? base.slice(0, -hash.length - 1) : base;
  }
  return meta.name ?? 'unknown';
}

/** Checks Kubernetes' size limits on the injected pod; returns the patch as JSON. */
function checkSizes(
  pod: Pod,
  patch: readonly JsonPatchOperation[],
  annotations: Record<string, string>,
  added: readonly [string, string][],
  values: InjectionValues,
  podBytesHint: number | undefined,
): string {
  const merged = { ...annotations, ...Object.fromEntries(added) };
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(merged)) annotationBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  if (annotationBytes > values.limits.maxAnnotationBytes) {
    throw limitsExceeded(`the pod's annotations would total ${annotationBytes} bytes, over Kubernetes' limit of ${values.limits.maxAnnotationBytes}`);
  }
  const patchJson = JSON.stringify(patch);
  const podBytes = (podBytesHint ?? Buffer.byteLength(JSON.stringify(pod))) + Buffer.byteLength(patchJson);
  if (podBytes > values.limits.maxPodBytes) {
    throw limitsExceeded(`the injected pod would be about ${podBytes} bytes, over the limit of ${values.limits.maxPodBytes}`);
  }
  return patchJson;
}

function limitsExceeded(message: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'INJECTION_LIMITS_EXCEEDED', message);
}

function conflict(message: string): AviaryError {
  return new AviaryError('CONFLICT', 'POD_CONFLICT', message);
}

function invalidPod(path: string, message: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'POD_INVALID', `${path}: ${message}`, { path });
}

/** Checks just the parts of a pod that injection reads; the API server validates the rest. */
export function asPod(input: unknown): Pod {
  if (!isObject(input)) throw invalidPod('pod', 'must be an object');
  if (input['kind'] !== undefined && input['kind'] !== 'Pod') throw invalidPod('kind', `must be Pod, not ${JSON.stringify(input['kind'])}`);
  const meta = input['metadata'];
  if (meta != null) {
    if (!isObject(meta)) throw invalidPod('metadata', 'must be an object');
    for (const field of ['labels', 'annotations']) {
      const m = meta[field];
      if (m === undefined || m === null) continue;
      if (!isObject(m) || !Object.values(m).every((v) => typeof v === 'string')) throw invalidPod(`metadata.${field}`, 'must map strings to strings');
    }
  }
  const spec = input['spec'];
  if (!isObject(spec)) throw invalidPod('spec', 'must be an object');
  const containers = spec['containers'];
  if (!Array.isArray(containers) || containers.length === 0) throw invalidPod('spec.containers', 'must be a non-empty list');
  checkContainers(containers, 'spec.containers');
  if (spec['initContainers'] != null) {
    if (!Array.isArray(spec['initContainers'])) throw invalidPod('spec.initContainers', 'must be a list');
    checkContainers(spec['initContainers'], 'spec.initContainers');
  }
  const volumes = spec['volumes'];
  if (volumes != null && (!Array.isArray(volumes) || !volumes.every((v) => isObject(v) && typeof v['name'] === 'string'))) {
    throw invalidPod('spec.volumes', 'must be a list of volumes with names');
  }
  return input as unknown as Pod;
}

function checkContainers(list: unknown[], at: string): void {
  list.forEach((c, i) => {
    if (!isObject(c) || typeof c['name'] !== 'string' || c['name'] === '') throw invalidPod(`${at}[${i}]`, 'must be a container with a name');
    const container = c as Container;
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      const get = container[probe]?.httpGet;
      if (get !== undefined && (!isObject(get) || (typeof get.port !== 'number' && typeof get.port !== 'string'))) {
        throw invalidPod(`${at}[${i}].${probe}.httpGet.port`, 'must be a port number or name');
      }
    }
  });
}
