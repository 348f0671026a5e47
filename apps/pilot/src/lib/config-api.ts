import Type from 'typebox';
import { AviaryError } from '@aviary/errors';
import type { AdminApp } from '@aviary/admin-api';
import type { ConfigStore } from '@aviary/config-store';
import { CLUSTER_SCOPE, kinds, withApiKind, type KindInfo } from '@aviary/mesh-api';
import { defaultManifestLimits, type ManifestLimits } from '@aviary/manifests';
import { analyze } from '@aviary/mesh-validation';
import { applyManifests } from './apply';

export interface ConfigApiOptions {
  readonly store: ConfigStore;
  /** Limits on one POST; the byte limit is the admin API's body limit. */
  readonly limits: Pick<ManifestLimits, 'maxDocuments' | 'maxKeys'> & Partial<ManifestLimits>;
}

const manifestTypes = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'text/plain', 'application/json'];

/**
 * Resolves a URL kind segment: `VirtualService`, `virtualservices`, `virtualservice` or `vs`; a
 * plural with its group (`gateways.gateway.networking.k8s.io`) or Aviary's kind name
 * (`KubernetesGateway`) picks the Gateway API's Gateway, a bare `gateways` Istio's.
 */
export function resolveKind(segment: string): KindInfo {
  const s = segment.toLowerCase();
  const all = Object.values(kinds) as KindInfo[];
  const exact = all.find((info) => info.kind.toLowerCase() === s || `${info.plural}.${info.group}` === s);
  if (exact !== undefined) return exact;
  for (const info of all) {
    if (info.apiKind.toLowerCase() === s || info.plural === s || info.singular === s || info.shortNames.includes(s)) return info;
  }
  throw new AviaryError('NOT_FOUND', 'UNKNOWN_KIND', `unknown kind ${JSON.stringify(segment)}; known kinds: ${Object.keys(kinds).join(', ')}`);
}

/** The namespace of a URL: cluster-scoped kinds (GatewayClass) have none, whatever the segment says (`_` by convention). */
function namespaceOf(info: KindInfo, segment: string): string {
  return info.namespaced ? segment : CLUSTER_SCOPE;
}

const Problem = Type.Object({ document: Type.Integer(), line: Type.Optional(Type.Integer()), path: Type.String(), message: Type.String() });
const Change = Type.Object({
  document: Type.Integer(),
  kind: Type.String(),
  namespace: Type.String(),
  name: Type.String(),
  action: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged')]),
  resourceVersion: Type.Optional(Type.String()),
  diff: Type.Optional(Type.Array(Type.Object({ path: Type.String(), op: Type.String(), from: Type.Optional(Type.Unknown()), to: Type.Optional(Type.Unknown()) }))),
});
const ApplyResponse = Type.Object({ dryRun: Type.Boolean(), results: Type.Array(Change), warnings: Type.Array(Problem) });
const Labels = Type.Record(Type.String(), Type.String());
const Metadata = Type.Object({
  name: Type.String(),
  namespace: Type.String(),
  labels: Type.Optional(Labels),
  annotations: Type.Optional(Labels),
  resourceVersion: Type.Optional(Type.String()),
  generation: Type.Optional(Type.Integer()),
  creationTimestamp: Type.Optional(Type.String()),
  uid: Type.Optional(Type.String()),
});
const MeshObject = Type.Object({
  apiVersion: Type.String(),
  kind: Type.String(),
  metadata: Metadata,
  spec: Type.Unknown(),
  status: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'written by Aviary (Gateway API conditions, Canary progress)' })),
});
const Finding = Type.Object({
  code: Type.String(),
  severity: Type.Union([Type.Literal('Error'), Type.Literal('Warning'), Type.Literal('Info')]),
  message: Type.String(),
  resources: Type.Array(Type.String()),
  path: Type.Optional(Type.String()),
});
const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) });
const KindParams = Type.Object({ kind: Type.String({ maxLength: 64 }) });
const NsParams = Type.Object({ kind: Type.String({ maxLength: 64 }), namespace: Type.String({ maxLength: 63 }) });
const NameParams = Type.Object({ kind: Type.String({ maxLength: 64 }), namespace: Type.String({ maxLength: 63 }), name: Type.String({ maxLength: 253 }) });

/** Pilot's mesh config REST API: apply (all-or-nothing, dry-run), read, delete, analyze. */
export function configApi(opts: ConfigApiOptions) {
  const limits: ManifestLimits = { ...defaultManifestLimits, maxBytes: Number.MAX_SAFE_INTEGER, ...opts.limits };
  return async (app: AdminApp): Promise<void> => {
    // Manifests are read as text so YAML and JSON share one parser with line numbers and limits.
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser(manifestTypes, { parseAs: 'string' }, (_req, body, done) => done(null, body));

    app.post(
      '/api/v1/config',
      {
        schema: {
          tags: ['config'],
          summary: 'Apply Istio resources (multi-document YAML or JSON), all or nothing',
          description: 'Every document is validated first; if any is invalid nothing is stored and the 400 lists every error with its document index, line and field path. `dryRun=true` returns what would change. A stale metadata.resourceVersion gets 409.',
          security: [{ bearerAuth: [] }],
          consumes: manifestTypes,
          querystring: Type.Object({ dryRun: Type.Optional(Type.Boolean()), namespace: Type.Optional(Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' })) }),
          body: Type.String({ description: 'YAML or JSON manifests' }),
          response: { 200: ApplyResponse, 400: ErrorBody, 409: ErrorBody, 413: ErrorBody },
          // Limits: the admin body limit, maxConfigDocuments, maxConfigKeys, nesting 64, aliases 64 (413 or 400 naming the limit).
        },
      },
      async (req) => {
        return applyManifests(opts.store, req.body, {
          dryRun: req.query.dryRun === true,
          defaultNamespace: req.query.namespace ?? 'default',
          limits,
        });
      },
    );

    app.get(
      '/api/v1/config/:kind',
      { schema: { tags: ['config'], summary: 'List resources of a kind in every namespace', params: KindParams, response: { 200: Type.Object({ items: Type.Array(MeshObject) }) } } },
      async (req) => ({ items: (await opts.store.list({ kind: resolveKind(req.params.kind).kind })).map(withApiKind) }),
    );
    app.get(
      '/api/v1/config/:kind/:namespace',
      { schema: { tags: ['config'], summary: 'List resources of a kind in one namespace', params: NsParams, response: { 200: Type.Object({ items: Type.Array(MeshObject) }) } } },
      async (req) => {
        const info = resolveKind(req.params.kind);
        return { items: (await opts.store.list({ kind: info.kind, namespace: namespaceOf(info, req.params.namespace) })).map(withApiKind) };
      },
    );
    app.get(
      '/api/v1/config/:kind/:namespace/:name',
      { schema: { tags: ['config'], summary: 'Get one resource', params: NameParams, response: { 200: MeshObject, 404: ErrorBody } } },
      async (req) => {
        const info = resolveKind(req.params.kind);
        const object = await opts.store.get({ kind: info.kind, namespace: namespaceOf(info, req.params.namespace), name: req.params.name });
        if (object === undefined) throw new AviaryError('NOT_FOUND', 'RESOURCE_NOT_FOUND', `${info.kind} ${req.params.namespace}/${req.params.name} not found`);
        return withApiKind(object);
      },
    );
    app.delete(
      '/api/v1/config/:kind/:namespace/:name',
      {
        schema: {
          tags: ['config'],
          summary: 'Delete one resource (optionally only at a given resourceVersion)',
          security: [{ bearerAuth: [] }],
          params: NameParams,
          querystring: Type.Object({ resourceVersion: Type.Optional(Type.String({ maxLength: 32 })) }),
          response: { 200: Type.Object({ deleted: Type.Boolean() }), 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (req) => {
        const info = resolveKind(req.params.kind);
        const kind = info.kind;
        const deleted = await opts.store.delete({ kind, namespace: namespaceOf(info, req.params.namespace), name: req.params.name }, req.query.resourceVersion);
        if (!deleted) throw new AviaryError('NOT_FOUND', 'RESOURCE_NOT_FOUND', `${kind} ${req.params.namespace}/${req.params.name} not found`);
        return { deleted };
      },
    );
    app.get(
      '/api/v1/analyze',
      {
        schema: {
          tags: ['config'],
          summary: 'Cross-resource findings over the stored config (Istio analyzer codes)',
          response: { 200: Type.Object({ findings: Type.Array(Finding) }) },
        },
      },
      async () => {
        const objects = await opts.store.list();
        return { findings: analyze(objects) };
      },
    );
  };
}
