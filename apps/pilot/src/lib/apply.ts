import { AviaryError } from '@aviary/errors';
import { diffObjects, sameContent, type ConfigStore, type FieldChange } from '@aviary/config-store';
import { maxReportedProblems, parseManifests, type LimitName, type ManifestLimits, type ManifestProblem } from '@aviary/manifests';
import { CLUSTER_SCOPE, kindFor, refKey, refOf, withStoredKind, type StoredObject } from '@aviary/mesh-api';
import { validate } from '@aviary/mesh-validation';

export interface PlannedChange {
  readonly document: number;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly action: 'created' | 'updated' | 'unchanged';
  readonly diff?: FieldChange[];
  readonly resourceVersion?: string;
}

export interface ApplyReport {
  readonly dryRun: boolean;
  readonly results: PlannedChange[];
  readonly warnings: ManifestProblem[];
}

export interface ApplyOptions {
  readonly dryRun: boolean;
  readonly defaultNamespace: string;
  readonly limits: ManifestLimits;
}

/** Validation problems listed in an error (the rest are counted); keeps error bodies small whatever the input. */
const maxListed = maxReportedProblems;

function invalid(code: string, problems: readonly ManifestProblem[], omitted = 0): AviaryError {
  const listed = problems.slice(0, maxListed);
  const more = problems.length - listed.length + omitted;
  const shown = listed.slice(0, 5).map((p) => `document ${p.document}${p.line === undefined ? '' : ` (line ${p.line})`}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`);
  const total = listed.length + more;
  const tail = total > 5 ? ` (and ${total - 5} more)` : '';
  return new AviaryError('INVALID_ARGUMENT', code, `${shown.join('; ')}${tail}`, { errors: listed, ...(more > 0 ? { omitted: more } : {}) });
}

/** Size limits answer 413, shape limits (depth, aliases) 400; the code names the limit. */
const limitCodes: Readonly<Record<LimitName, { kind: 'PAYLOAD_TOO_LARGE' | 'INVALID_ARGUMENT'; code: string }>> = {
  bytes: { kind: 'PAYLOAD_TOO_LARGE', code: 'MANIFEST_TOO_LARGE' },
  documents: { kind: 'PAYLOAD_TOO_LARGE', code: 'TOO_MANY_DOCUMENTS' },
  keys: { kind: 'PAYLOAD_TOO_LARGE', code: 'TOO_MANY_KEYS' },
  depth: { kind: 'INVALID_ARGUMENT', code: 'MANIFEST_TOO_DEEP' },
  aliases: { kind: 'INVALID_ARGUMENT', code: 'TOO_MANY_ALIASES' },
};

/**
 * Validates every document, then applies all or nothing. A stale `metadata.resourceVersion`
 * anywhere refuses the whole request (CONFLICT). If a write fails part-way (a concurrent
 * writer), the documents already written are put back as they were.
 */
export async function applyManifests(store: ConfigStore, text: string, opts: ApplyOptions): Promise<ApplyReport> {
  const parsed = parseManifests(text, opts.limits);
  if (!parsed.ok) {
    if (parsed.code === 'MANIFEST_LIMIT') {
      const { kind, code } = limitCodes[parsed.limit];
      const p = parsed.problems[0]!;
      throw new AviaryError(kind, code, `document ${p.document}${p.line === undefined ? '' : ` (line ${p.line})`}: ${p.message}`, { limit: parsed.limit, errors: parsed.problems });
    }
    throw invalid('MANIFEST_INVALID', parsed.problems, parsed.omitted);
  }
  if (parsed.documents.length === 0) throw invalid('MANIFEST_EMPTY', [{ document: 0, path: '', message: 'no documents in the request body' }]);

  const errors: ManifestProblem[] = [];
  const warnings: ManifestProblem[] = [];
  let omittedErrors = 0;
  const objects: Array<{ document: number; object: StoredObject }> = [];
  const seen = new Map<string, number>();
  for (const doc of parsed.documents) {
    const value = withDefaultNamespace(doc.value, opts.defaultNamespace);
    const result = validate(value);
    for (const e of result.errors) {
      if (errors.length < maxListed) errors.push({ document: doc.index, line: doc.line, path: e.path, message: e.message });
      else omittedErrors++;
    }
    for (const w of result.warnings) if (warnings.length < maxListed) warnings.push({ document: doc.index, line: doc.line, path: w.path, message: w.message });
    if (result.errors.length > 0) continue;
    const object = storedShape(value as StoredObject);
    const key = refKey(refOf(object));
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      if (errors.length >= maxListed) omittedErrors++;
      else errors.push({ document: doc.index, line: doc.line, path: 'metadata.name', message: `${object.kind} ${object.metadata.namespace}/${object.metadata.name} already appears in document ${earlier}` });
      continue;
    }
    seen.set(key, doc.index);
    objects.push({ document: doc.index, object });
  }
  if (errors.length > 0) throw invalid('CONFIG_INVALID', errors, omittedErrors);

  const current = await Promise.all(objects.map(({ object }) => store.get(refOf(object))));
  const results: PlannedChange[] = objects.map(({ document, object }, i) => {
    const before = current[i];
    const expected = object.metadata.resourceVersion;
    if (expected !== undefined && expected !== '' && expected !== before?.metadata.resourceVersion) {
      throw new AviaryError(
        'CONFLICT',
        'RESOURCE_VERSION_CONFLICT',
        `document ${document}: ${object.kind} ${object.metadata.namespace}/${object.metadata.name}: metadata.resourceVersion ${expected} is stale; the current one is ${before?.metadata.resourceVersion ?? 'none (it does not exist)'}`,
        { document, currentResourceVersion: before?.metadata.resourceVersion ?? null },
      );
    }
    const base = { document, kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name };
    if (before === undefined) return { ...base, action: 'created' };
    if (sameContent(before, object)) return { ...base, action: 'unchanged', resourceVersion: before.metadata.resourceVersion! };
    return { ...base, action: 'updated', diff: diffObjects(before, object) };
  });
  if (opts.dryRun) return { dryRun: true, results, warnings };

  const written: Array<{ before: StoredObject | undefined; after: StoredObject }> = [];
  const final: PlannedChange[] = [];
  try {
    for (const [i, { object }] of objects.entries()) {
      const plan = results[i]!;
      if (plan.action === 'unchanged') {
        final.push(plan);
        continue;
      }
      // Read and checked above: the store writes compare-and-set on that version without reading again.
      const result = await store.apply(object, { current: current[i] ?? null });
      written.push({ before: current[i], after: result.object });
      final.push({ ...plan, action: result.op, resourceVersion: result.object.metadata.resourceVersion! });
    }
  } catch (err) {
    await rollBack(store, written);
    throw err;
  }
  return { dryRun: false, results: final, warnings };
}

async function rollBack(store: ConfigStore, written: Array<{ before: StoredObject | undefined; after: StoredObject }>): Promise<void> {
  for (const { before, after } of written.reverse()) {
    try {
      if (before === undefined) await store.delete(refOf(after), after.metadata.resourceVersion);
      else await store.apply({ ...before, metadata: { ...before.metadata, resourceVersion: after.metadata.resourceVersion! } });
    } catch {
      // Someone else changed it since; their version stands.
    }
  }
}

function withDefaultNamespace(value: unknown, namespace: string): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const v = value as { metadata?: unknown; apiVersion?: unknown; kind?: unknown };
  const info = kindFor(v.apiVersion, v.kind);
  if (info === undefined || !info.namespaced) return value;
  if (v.metadata === null || typeof v.metadata !== 'object' || Array.isArray(v.metadata)) return value;
  const meta = v.metadata as { namespace?: unknown };
  return meta.namespace === undefined ? { ...v, metadata: { ...meta, namespace } } : value;
}

/** A validated manifest as stored: Aviary's kind name, and the empty namespace of a cluster-scoped kind. */
function storedShape(manifest: StoredObject): StoredObject {
  const object = withStoredKind(manifest);
  return kindFor(manifest.apiVersion, manifest.kind)?.namespaced === false ? { ...object, metadata: { ...object.metadata, namespace: CLUSTER_SCOPE } } : object;
}
