import { resourceKey, storedFrom, withStoredKind, type MeshResource, type StoredObject } from '@aviary/mesh-api';
import { validate } from '../validate';
import { analyze } from './analyze';
import { isKubeManifest, kubeObject } from './kube';
import { codes, type AnalysisFinding, type AnalyzeOptions } from './model';

/**
 * Analysis of manifests as a user wrote them (the documents of YAML files): each one is validated
 * first, and one that fails gives IST0106 SchemaValidationError findings (one per problem) and is
 * left out of the cross-resource analysis, as Istio's analyzers do. Core kinds (Service, Pod,
 * Namespace, Deployment) are checked for the fields the analyzers read. Documents of other kinds,
 * and every document in Kubernetes' own namespaces (kube-system, ...), are ignored, also as Istio does.
 */
export function analyzeManifests(documents: readonly unknown[], options: AnalyzeOptions = {}): AnalysisFinding[] {
  const resources: StoredObject[] = [];
  const invalid: AnalysisFinding[] = [];
  const { code, severity } = codes.SchemaValidationError;
  for (const doc of documents) {
    if (inIgnoredNamespace(doc)) continue;
    const problems = isKubeManifest(doc) ? kubeObject(doc) : meshManifest(doc);
    if (problems === undefined) continue;
    if (problems.object !== undefined) {
      resources.push(problems.object);
      continue;
    }
    const key = keyOf(doc);
    for (const e of problems.errors) invalid.push({ code, severity, message: `Schema validation error: ${e.path}: ${e.message}`, resources: [key], path: e.path });
  }
  return [...invalid, ...analyze(resources, options)];
}

function meshManifest(doc: unknown): { object?: StoredObject; errors: { path: string; message: string }[] } | undefined {
  const result = validate(doc);
  if (result.errors.length === 0) return { object: storedFrom(withStoredKind(doc as MeshResource)), errors: [] };
  // A document that is no mesh kind at all (a ConfigMap, a Secret) is not Aviary's to judge.
  if (result.errors.some((e) => e.path === 'kind' || e.path === 'apiVersion' || e.path === '')) return undefined;
  return { errors: result.errors };
}

/** Kubernetes' own namespaces, whose resources Istio's analyzers never read (nor the Namespaces themselves). */
const ignoredNamespaces = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);

function inIgnoredNamespace(doc: unknown): boolean {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  const namespace = d?.kind === 'Namespace' ? d.metadata?.name : d?.metadata?.namespace;
  return typeof namespace === 'string' && ignoredNamespaces.has(namespace);
}

function keyOf(doc: unknown): string {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const name = typeof d.metadata?.name === 'string' ? d.metadata.name : '';
  const namespace = typeof d.metadata?.namespace === 'string' ? d.metadata.namespace : undefined;
  return resourceKey({ kind: String(d.kind), metadata: { name, namespace } });
}
