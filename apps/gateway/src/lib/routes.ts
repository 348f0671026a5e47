import Type from 'typebox';
import type { AdminApp } from '@aviary/admin-api';
import type { Proxy, XdsClient } from '@aviary/proxy';

export interface AdminDeps {
  readonly proxy: Proxy;
  readonly xds: XdsClient;
  readonly ready: () => boolean;
  readonly drain: () => Promise<void>;
  readonly quit: () => void;
  readonly identity: () => { spiffeId: string; notAfter: string | undefined; version: number } | undefined;
}

/** Envoy-style proxy admin: config_dump, clusters, stats, ready, drain, quitquitquit. */
export function gatewayRoutes(d: AdminDeps) {
  return (app: AdminApp): void => {
    app.get('/config_dump', { schema: { tags: ['proxy'], summary: 'the applied routing table, xDS versions and last NACKs' } }, async () => {
      const t = d.proxy.table;
      return {
        version: t.version,
        xds: d.xds.status(),
        listeners: [...t.listeners.values()].map((l) => ({
          name: l.name,
          address: `${l.host}:${l.port}`,
          bound: d.proxy.ports()[l.name],
          direction: l.direction,
          filterChains: l.filterChains.map((c) => ({ name: c.name, match: c.match, tls: c.tls !== undefined, mtls: c.tls?.requireClientCertificate ?? false, terminal: c.terminal.kind === 'http' ? { rds: c.terminal.rdsName, filters: c.terminal.filters.map((f) => f.name) } : { cluster: c.terminal.cluster } })),
        })),
        routes: [...t.routeConfigs.values()].map((r) => ({ name: r.name, virtualHosts: r.virtualHosts.map((v) => ({ name: v.name, domains: v.domains, routes: v.routes.length })) })),
        clusters: [...t.clusters.values()].map((c) => ({ name: c.name, type: c.type, lbPolicy: c.lbPolicy, eds: c.edsName, tls: c.tls !== undefined, limits: c.limits, outlier: c.outlier })),
        secrets: [...t.secrets.keys()],
        identity: d.identity(),
      };
    });
    app.get('/clusters', { schema: { tags: ['proxy'], summary: 'endpoints per cluster with health, ejection and active requests' } }, async () => d.proxy.clusterStatus());
    app.get('/stats', { schema: { tags: ['proxy'], summary: 'Envoy-style counters' } }, async (_req, reply) => reply.type('text/plain').send(d.proxy.stats.text()));
    app.get('/stats/prometheus', { schema: { tags: ['proxy'], summary: 'counters in Prometheus format' } }, async (_req, reply) => reply.type('text/plain; version=0.0.4').send(d.proxy.stats.prometheus()));
    app.get('/ready', { schema: { tags: ['proxy'], summary: 'LIVE once config and (if configured) a certificate are in place', response: { 200: Type.String(), 503: Type.String() } } }, async (_req, reply) =>
      d.ready() && !d.proxy.draining ? reply.type('text/plain').send('LIVE') : reply.code(503).type('text/plain').send(d.proxy.draining ? 'DRAINING' : 'PRE_INITIALIZING'),
    );
    app.post('/drain', { schema: { tags: ['proxy'], summary: 'stop accepting new connections; open ones finish (answers at once)' } }, async () => {
      void d.drain();
      return { draining: true };
    });
    app.post('/quitquitquit', { schema: { tags: ['proxy'], summary: 'drain, then exit' } }, async () => {
      setImmediate(d.quit);
      return { quitting: true };
    });
  };
}
