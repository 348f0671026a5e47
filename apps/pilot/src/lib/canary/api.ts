import Type, { type Static } from 'typebox';
import { AviaryError } from '@aviary/errors';
import type { AdminApp } from '@aviary/admin-api';
import type { ConfigStore } from '@aviary/config-store';
import { CanaryStatus, type StoredObject } from '@aviary/mesh-api';
import { canaryCommands, type CanaryCommand } from './decide';

/** What the REST API needs of the controller. */
export interface CanaryCommander {
  command(ref: { namespace: string; name: string }, cmd: CanaryCommand): Promise<StoredObject>;
}

const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) });
const CanaryView = Type.Object({
  namespace: Type.String(),
  name: Type.String(),
  generation: Type.Optional(Type.Integer()),
  resourceVersion: Type.Optional(Type.String()),
  spec: Type.Unknown(),
  status: Type.Optional(CanaryStatus),
});
const NsParams = Type.Object({ namespace: Type.String({ maxLength: 63 }) });
const NameParams = Type.Object({ namespace: Type.String({ maxLength: 63 }), name: Type.String({ maxLength: 253 }) });
const CommandParams = Type.Object({
  namespace: Type.String({ maxLength: 63 }),
  name: Type.String({ maxLength: 253 }),
  command: Type.Union(canaryCommands.map((c) => Type.Literal(c))),
});

function view(o: StoredObject): Static<typeof CanaryView> {
  return {
    namespace: o.metadata.namespace,
    name: o.metadata.name,
    ...(o.metadata.generation === undefined ? {} : { generation: o.metadata.generation }),
    ...(o.metadata.resourceVersion === undefined ? {} : { resourceVersion: o.metadata.resourceVersion }),
    spec: o.spec,
    ...(o.status === undefined ? {} : { status: o.status as unknown as CanaryStatus }),
  };
}

/**
 * Canary operations on pilot's admin API: list and get (with status), and the operator's
 * commands pause, resume, promote (100 % now) and abort (back to 0 %). Commands are admin writes
 * (bearer token); one not allowed in the canary's phase answers 412 CANARY_INVALID_COMMAND.
 * Canaries themselves are created, changed and deleted through /api/v1/config like every kind.
 */
export function canaryApi(opts: { store: ConfigStore; controller: CanaryCommander }) {
  return async (app: AdminApp): Promise<void> => {
    app.get(
      '/api/v1/canaries',
      { schema: { tags: ['canary'], summary: 'List Canaries in every namespace, with their status', response: { 200: Type.Object({ items: Type.Array(CanaryView) }) } } },
      async () => ({ items: (await opts.store.list({ kind: 'Canary' })).map(view) }),
    );
    app.get(
      '/api/v1/canaries/:namespace',
      { schema: { tags: ['canary'], summary: 'List Canaries in one namespace', params: NsParams, response: { 200: Type.Object({ items: Type.Array(CanaryView) }) } } },
      async (req) => ({ items: (await opts.store.list({ kind: 'Canary', namespace: req.params.namespace })).map(view) }),
    );
    app.get(
      '/api/v1/canaries/:namespace/:name',
      { schema: { tags: ['canary'], summary: 'Get one Canary: spec, phase, current weight, last analysis, conditions', params: NameParams, response: { 200: CanaryView, 404: ErrorBody } } },
      async (req) => {
        const o = await opts.store.get({ kind: 'Canary', namespace: req.params.namespace, name: req.params.name });
        if (o === undefined) throw new AviaryError('NOT_FOUND', 'RESOURCE_NOT_FOUND', `Canary ${req.params.namespace}/${req.params.name} not found`);
        return view(o);
      },
    );
    app.post(
      '/api/v1/canaries/:namespace/:name/:command',
      {
        schema: {
          tags: ['canary'],
          summary: 'Pause, resume, promote (canary to 100 % now) or abort (canary back to 0 %) a Canary',
          description: 'pause: a Progressing canary keeps its weights and takes no decision until resumed. resume: continues the current step (its clock and the failure count restart). promote and abort end a canary that has not finished yet. 412 CANARY_INVALID_COMMAND when the phase does not allow the command.',
          security: [{ bearerAuth: [] }],
          params: CommandParams,
          response: { 200: CanaryView, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
        },
      },
      async (req) => view(await opts.controller.command({ namespace: req.params.namespace, name: req.params.name }, req.params.command)),
    );
  };
}
