import { parse } from 'yaml';

/**
 * The overlays a Gateway's `spec.infrastructure.parametersRef` ConfigMap holds for the objects
 * automated deployment creates (Istio's format: one key per object, each a YAML fragment of that
 * object merged onto the generated one the way `kubectl patch --type strategic` merges).
 */
export interface GatewayOverlays {
  readonly deployment?: Overlay;
  readonly service?: Overlay;
  readonly serviceAccount?: Overlay;
}
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Overlay = { readonly [key: string]: Json };

const OBJECT_KEYS = ['deployment', 'service', 'serviceAccount'] as const;
type ObjectKey = (typeof OBJECT_KEYS)[number];

/** A ConfigMap value is at most this long (the API server's limit for the whole ConfigMap is 1 MiB). */
const MAX_OVERLAY_BYTES = 256 * 1024;

/**
 * Fields an overlay may not set: they tie the objects to the Gateway (names, owner), or select the
 * Gateway's pods (the Deployment's and Service's selectors), so changing them would orphan or
 * disconnect the proxies.
 */
const PROTECTED: Readonly<Record<ObjectKey, readonly string[]>> = {
  deployment: ['metadata.name', 'metadata.namespace', 'metadata.ownerReferences', 'spec.selector', 'spec.template.spec.serviceAccountName'],
  service: ['metadata.name', 'metadata.namespace', 'metadata.ownerReferences', 'spec.selector'],
  serviceAccount: ['metadata.name', 'metadata.namespace', 'metadata.ownerReferences'],
};
const KINDS: Readonly<Record<ObjectKey, string>> = { deployment: 'Deployment', service: 'Service', serviceAccount: 'ServiceAccount' };

/**
 * Lists merged element by element, by the key Kubernetes' strategic merge patch uses for them
 * (`patchMergeKey`), by the list's path without indices; every other list is replaced whole.
 */
const MERGE_KEYS: Readonly<Record<string, string>> = (() => {
  const pod = 'spec.template.spec';
  const keys: Record<string, string> = {
    'spec.ports': 'port',
    [`${pod}.volumes`]: 'name',
    [`${pod}.imagePullSecrets`]: 'name',
    [`${pod}.hostAliases`]: 'ip',
    [`${pod}.topologySpreadConstraints`]: 'topologyKey',
  };
  for (const c of ['containers', 'initContainers']) {
    keys[`${pod}.${c}`] = 'name';
    keys[`${pod}.${c}.env`] = 'name';
    keys[`${pod}.${c}.ports`] = 'containerPort';
    keys[`${pod}.${c}.volumeMounts`] = 'mountPath';
  }
  return keys;
})();

/** Reads a parametersRef ConfigMap's data; throws an error naming the key and field at fault. */
export function parseOverlays(data: Readonly<Record<string, string>> | undefined, where: string): GatewayOverlays {
  const out: Partial<Record<ObjectKey, Overlay>> = {};
  for (const [k, text] of Object.entries(data ?? {})) {
    if (!(OBJECT_KEYS as readonly string[]).includes(k)) throw new Error(`${where} data.${k}: not one of ${OBJECT_KEYS.join(', ')}`);
    const objectKey = k as ObjectKey;
    if (text.length > MAX_OVERLAY_BYTES) throw new Error(`${where} data.${k}: at most ${MAX_OVERLAY_BYTES} bytes`);
    let value: unknown;
    try {
      value = parse(text, { maxAliasCount: 100, uniqueKeys: true });
    } catch (err) {
      throw new Error(`${where} data.${k}: not YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (value === null || value === undefined) continue;
    if (!isObject(value)) throw new Error(`${where} data.${k}: must be a YAML mapping (a fragment of the ${KINDS[objectKey]})`);
    if (value['kind'] !== undefined && value['kind'] !== KINDS[objectKey]) throw new Error(`${where} data.${k}: kind must be ${KINDS[objectKey]}`);
    for (const [field] of Object.entries(value)) {
      if (!['apiVersion', 'kind', 'metadata', 'spec'].includes(field)) throw new Error(`${where} data.${k}: ${field}: only metadata and spec can be overlaid`);
    }
    for (const p of PROTECTED[objectKey]) if (has(value, p)) throw new Error(`${where} data.${k}: ${p} cannot be changed (it ties the ${KINDS[objectKey]} to its Gateway)`);
    const directive = findDirective(value, '');
    if (directive !== undefined) throw new Error(`${where} data.${k}: ${directive}: patch directives ($patch, $retainKeys, …) are not supported`);
    const { apiVersion: _a, kind: _k, ...rest } = value;
    out[objectKey] = rest as Overlay;
  }
  return out;
}

/**
 * `overlay` merged onto `base` (neither is changed): maps merge key by key (a null deletes the
 * key), lists with a merge key (`MERGE_KEYS`) merge element by element (new elements appended),
 * any other value replaces the base's.
 */
export function mergeOverlay<T>(base: T, overlay: Overlay): T {
  return mergeValue(base as Json, overlay as Json, '') as T;
}

function mergeValue(base: Json | undefined, patch: Json, path: string): Json {
  if (isObject(patch)) {
    const out: { [key: string]: Json } = isObject(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = mergeValue(out[k], v, path === '' ? k : `${path}.${k}`);
    }
    return out;
  }
  const mergeKey = MERGE_KEYS[path];
  if (Array.isArray(patch) && Array.isArray(base) && mergeKey !== undefined) {
    const out = [...base];
    for (const item of patch) {
      const at = isObject(item) ? out.findIndex((b) => isObject(b) && b[mergeKey] === item[mergeKey]) : -1;
      if (at >= 0) out[at] = mergeValue(out[at], item, path);
      else out.push(item);
    }
    return out;
  }
  return patch;
}

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function has(value: { [key: string]: Json }, path: string): boolean {
  let at: Json | undefined = value;
  for (const part of path.split('.')) {
    if (!isObject(at) || !(part in at)) return false;
    at = at[part];
  }
  return true;
}

function findDirective(value: Json, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = findDirective(v, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const p = path === '' ? k : `${path}.${k}`;
      if (k.startsWith('$')) return p;
      const found = findDirective(v, p);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
