import Type from 'typebox';
import type { EnvoyAgent } from '@aviary/agent';
import type { AdminApp } from '@aviary/admin-api';

export interface AdminDeps {
  readonly agent: EnvoyAgent;
  readonly spiffeId: string | undefined;
  readonly quit: () => void;
}

/** Envoy admin endpoints users may read, passed through with their query string (Envoy's admin stays on loopback). */
const PASSTHROUGH = [
  ['/config_dump', 'Envoy\'s config dump (?resource=, ?mask=, ?include_eds as Envoy takes them)'],
  ['/clusters', 'Envoy\'s clusters with endpoint health and outlier ejection (?format=json)'],
  ['/stats', 'Envoy\'s counters, gauges and histograms (?filter=, ?format=json)'],
  ['/stats/prometheus', 'Envoy\'s stats in Prometheus format'],
  ['/certs', 'certificates Envoy holds (workload certificate and trust bundle) with their expiry'],
  ['/listeners', 'Envoy\'s active listeners (?format=json)'],
  ['/server_info', 'Envoy\'s version, state and command line'],
] as const;

/** The agent admin: Envoy's read-only admin passed through, the agent's own status, ready, drain, quitquitquit. */
export function gatewayRoutes(d: AdminDeps) {
  return (app: AdminApp): void => {
    for (const [path, summary] of PASSTHROUGH) {
      app.get(path, { schema: { tags: ['envoy'], summary } }, async (req, reply) => {
        const res = await d.agent.admin.get(req.url);
        return reply.code(res.status).type(res.contentType).send(res.body);
      });
    }
    app.get('/agent', { schema: { tags: ['agent'], summary: 'the agent: Envoy process and state, pilot connection, secrets served, workload certificate' } }, async () => ({
      ...d.agent.status(),
      ...(d.spiffeId === undefined ? {} : { spiffeId: d.spiffeId }),
    }));
    app.get('/ready', { schema: { tags: ['agent'], summary: 'LIVE once Envoy has its config and secrets (and a valid certificate when one is configured)', response: { 200: Type.String(), 503: Type.String() } } }, async (_req, reply) => {
      if (d.agent.ready()) return reply.type('text/plain').send('LIVE');
      const s = d.agent.status();
      return reply.code(503).type('text/plain').send(s.draining ? 'DRAINING' : (s.envoy.state ?? 'PRE_INITIALIZING'));
    });
    app.post('/drain', { schema: { tags: ['agent'], summary: 'Envoy stops accepting new connections; open ones are asked to close (answers at once)' } }, async () => {
      await d.agent.drain();
      return { draining: true };
    });
    app.post('/quitquitquit', { schema: { tags: ['agent'], summary: 'drain, then exit' } }, async () => {
      setImmediate(d.quit);
      return { quitting: true };
    });
  };
}
