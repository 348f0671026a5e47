import fjp, { type Operation } from 'fast-json-patch';
import { stringify } from 'yaml';
import { AviaryError } from '@aviary/errors';
import type { AdminApp } from '@aviary/admin-api';
import { defaultManifestLimits, parseManifests, type ManifestLimits } from '@aviary/manifests';
import type { NamespaceInfo } from '@aviary/injection';
import type { Injector } from './injector';

const yamlTypes = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'];

function bad(message: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'PREVIEW_INPUT_INVALID', message);
}

/** Where each workload kind keeps its pod template (as istioctl kube-inject reads them). */
const podTemplatePaths: Readonly<Record<string, readonly string[]>> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export interface PreviewInput {
  /** The pod to inject: the Pod itself, or a workload's pod template as a pod. */
  readonly pod: Record<string, unknown>;
  readonly namespace: NamespaceInfo;
  /** Puts the injected pod back where it came from; returns the document to show. */
  readonly output: (injected: Record<string, unknown>) => Record<string, unknown>;
}

/**
 * Limits on a preview body (besides the admin body limit): one workload and its Namespace need
 * few documents; keys, nesting and aliases as for mesh config.
 */
export const previewLimits: ManifestLimits = { ...defaultManifestLimits, maxBytes: Number.MAX_SAFE_INTEGER, maxDocuments: 10 };

/**
 * Reads the preview input: a Pod or a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet,
 * Job, CronJob) in JSON, or YAML with one such document and optionally its Namespace (whose
 * labels then drive the decision exactly as the webhook's selectors would; without it the
 * namespace is taken as selected, as for a live review).
 */
export function parsePreviewInput(body: unknown, limits: ManifestLimits = previewLimits): PreviewInput {
  let docs: unknown[];
  if (typeof body === 'string') {
    const parsed = parseManifests(body, limits);
    if (!parsed.ok) {
      const p = parsed.problems[0]!;
      const where = `document ${p.document}${p.line === undefined ? '' : ` (line ${p.line})`}${p.path === '' ? '' : `, ${p.path}`}`;
      if (parsed.code === 'MANIFEST_LIMIT' && (parsed.limit === 'bytes' || parsed.limit === 'documents' || parsed.limit === 'keys')) {
        throw new AviaryError('PAYLOAD_TOO_LARGE', 'PREVIEW_INPUT_TOO_LARGE', `${where}: ${p.message}`, { limit: parsed.limit });
      }
      throw bad(`the body is not valid YAML: ${where}: ${p.message}`);
    }
    docs = parsed.documents.map((d) => d.value);
  } else docs = [body];
  const objects = docs.filter((d): d is Record<string, unknown> => typeof d === 'object' && d !== null && !Array.isArray(d));
  const targets = objects.filter((d) => d['kind'] === 'Pod' || d['kind'] === undefined || (typeof d['kind'] === 'string' && d['kind'] in podTemplatePaths));
  if (targets.length !== 1) {
    throw bad(`expected exactly one Pod or workload (and optionally its Namespace), found ${targets.length} among ${docs.length} documents`);
  }
  const target = targets[0]!;
  const meta = (target['metadata'] ?? {}) as Record<string, unknown>;
  const nsName = typeof meta['namespace'] === 'string' ? meta['namespace'] : 'default';
  const ns = objects.find((d) => d['kind'] === 'Namespace');
  let namespace: NamespaceInfo = { name: nsName };
  if (ns !== undefined) {
    const nsMeta = (ns['metadata'] ?? {}) as { name?: unknown; labels?: unknown };
    if (typeof nsMeta.name !== 'string') throw bad('the Namespace has no metadata.name');
    namespace = { name: nsMeta.name, labels: (nsMeta.labels ?? {}) as Record<string, string> };
  }
  const path = podTemplatePaths[target['kind'] as string];
  if (path === undefined) return { pod: target, namespace, output: (injected) => injected };

  let template: unknown = target;
  for (const key of path) template = (template as Record<string, unknown> | undefined)?.[key];
  if (typeof template !== 'object' || template === null) throw bad(`${target['kind'] as string} has no ${path.join('.')}`);
  const t = template as Record<string, unknown>;
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: nsName, ...(t['metadata'] as object | undefined) }, spec: t['spec'] };
  return {
    pod,
    namespace,
    output: (injected) => {
      const copy = structuredClone(target);
      let parent = copy;
      for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
      const { namespace: _ns, ...podMeta } = (injected['metadata'] ?? {}) as Record<string, unknown>;
      parent[path[path.length - 1]!] = { metadata: podMeta, spec: injected['spec'] };
      return copy;
    },
  };
}

/** POST /api/v1/inject/preview: pod in, injected pod out (YAML, or JSON when asked for). */
export function registerPreviewRoute(app: AdminApp, injector: Injector): void {
  // JSON is YAML: both go through the one bounded manifest parser (limits on keys, depth, aliases).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser([...yamlTypes, 'application/json'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.post(
    '/api/v1/inject/preview',
    {
      schema: {
        security: [{ bearerAuth: [] }],
        tags: ['injection'],
        summary: 'preview sidecar injection of a pod or workload',
        description:
          'Takes a Pod or a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) in YAML or JSON (YAML may add its Namespace as another document) and returns it as the webhook would admit its pods. ' +
          'Headers x-aviary-injection and x-aviary-injection-reason give the decision. Needs the admin token like every admin write: it parses untrusted input and must not be an open door on the injector.',
        consumes: ['application/yaml', 'application/json'],
        produces: ['application/yaml', 'application/json'],
      },
    },
    async (request, reply) => {
      const { pod, namespace, output } = parsePreviewInput(request.body);
      const outcome = injector.inject('preview', pod, namespace, { name: (pod['metadata'] as { name?: string } | undefined)?.name });
      if (outcome.result === 'error') throw outcome.error;
      const patched = output(fjp.applyPatch(structuredClone(pod), structuredClone(outcome.plan!.patch) as Operation[], false, false).newDocument);
      void reply.header('x-aviary-injection', outcome.result).header('x-aviary-injection-reason', outcome.reason);
      if ((request.headers.accept ?? '').includes('application/json')) return reply.type('application/json').send(patched);
      return reply.type('application/yaml').send(stringify(patched, { lineWidth: 0 }));
    },
  );
}
