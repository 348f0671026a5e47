import Type from 'typebox';
import { AviaryError } from '@aviary/errors';
import type { AdminApp } from '@aviary/admin-api';
import { shortTypeName } from '@aviary/xds-protos';
import type { ProxyInfo } from '@aviary/mesh-model';
import type { ProxyStatus, XdsServer } from '@aviary/xds-server';

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The status view of one connected proxy: identity, per-type versions sent and ACKed, last NACK. */
export function proxyView(p: ProxyStatus<ProxyInfo>) {
  return {
    id: p.proxy.id,
    kind: p.proxy.kind,
    namespace: p.proxy.namespace,
    ...(p.proxy.identity === undefined ? {} : { identity: p.proxy.identity }),
    ...(p.proxy.ip === undefined ? {} : { ip: p.proxy.ip }),
    /** True on pilot's mTLS port, where the certificate proved the identity (only such proxies are served credentials). */
    authenticated: p.proxy.authenticated === true,
    protocol: p.protocol,
    connectedSince: iso(p.connectedAt),
    types: p.types.map((t) => ({
      type: shortTypeName[t.typeUrl],
      subscribed: t.subscribed.length,
      sentVersion: t.sentVersion,
      sentAt: iso(t.sentAt),
      ackedVersion: t.ackedVersion,
      ackedAt: iso(t.ackedAt),
      synced: t.sentVersion !== undefined && t.sentVersion === t.ackedVersion,
      ...(t.lastNack === undefined ? {} : { lastNack: t.lastNack }),
      resources: t.resources.length,
    })),
  };
}

/** Istio's syncz states; a type with nothing sent is never SYNCED, whatever was ACKed. */
export function syncStatus(t: Pick<ProxyStatus['types'][number], 'sentVersion' | 'ackedVersion' | 'lastNack'>): 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT' {
  if (t.sentVersion === undefined) return 'NOT SENT';
  if (t.lastNack !== undefined && t.lastNack.version === t.sentVersion) return 'NACKED';
  return t.sentVersion === t.ackedVersion ? 'SYNCED' : 'STALE';
}

/** Pilot's xDS status and debug API. */
export function xdsApi(server: XdsServer<ProxyInfo>) {
  return async (app: AdminApp): Promise<void> => {
    app.get(
      '/api/v1/proxies',
      { schema: { tags: ['xds'], summary: 'Connected proxies: kind, identity, connected since, per-type version sent and ACKed, last NACK', response: { 200: Type.Object({ proxies: Type.Array(Type.Unknown()) }) } } },
      async () => ({ proxies: server.proxies().map(proxyView) }),
    );
    app.get(
      '/api/v1/proxies/:id/config_dump',
      {
        schema: {
          tags: ['xds'],
          summary: 'The resources last sent to one proxy, decoded, per type (with sent and ACKed versions)',
          params: Type.Object({ id: Type.String({ maxLength: 1024 }) }),
          response: { 200: Type.Object({ id: Type.String(), configs: Type.Array(Type.Unknown()) }) },
        },
      },
      async (req) => {
        const dump = server.configDump(req.params.id);
        if (dump === undefined) throw new AviaryError('NOT_FOUND', 'PROXY_NOT_FOUND', `no connected proxy with id ${JSON.stringify(req.params.id)}`);
        return { id: req.params.id, configs: dump.map((d) => ({ type: shortTypeName[d.typeUrl], typeUrl: d.typeUrl, version: d.version, ackedVersion: d.ackedVersion, resources: d.resources })) };
      },
    );
    app.get(
      '/debug/syncz',
      {
        schema: {
          tags: ['xds'],
          summary: 'Sync status of every proxy and type (Istio syncz): SYNCED, STALE (sent, not ACKed), NACKED or NOT SENT (subscribed, nothing sent yet)',
          response: { 200: Type.Array(Type.Unknown()) },
        },
      },
      async () =>
        server.proxies().flatMap((p) =>
          p.types.map((t) => ({
            proxy: p.proxy.id,
            type: shortTypeName[t.typeUrl],
            status: syncStatus(t),
            sent: t.sentVersion,
            acked: t.ackedVersion,
          })),
        ),
    );
  };
}
