import Type from 'typebox';
import type { Registry } from 'prom-client';
import type { AdminApp } from '@aviary/admin-api';
import { parseWindow, type ServiceGraph } from '@aviary/telemetry';
import { CanaryEvent } from '@aviary/events';
import type { CanaryTimeline } from './canaries';
import { dashboardHtml } from './dashboard';

const Ratio = Type.Number({ minimum: 0, maximum: 1 });
const Stats = {
  requests: Type.Integer({ minimum: 0, description: 'requests in the window' }),
  requestsPerSecond: Type.Number({ minimum: 0 }),
  errorRatio: Type.Number({ minimum: 0, maximum: 1, description: 'share of responses >= 500 or without response (tcp: ended with a response flag)' }),
  p50Ms: Type.Number({ minimum: 0 }),
  p90Ms: Type.Number({ minimum: 0 }),
  p99Ms: Type.Number({ minimum: 0 }),
  mtlsShare: Type.Number({ minimum: 0, maximum: 1, description: 'share of requests over mutual TLS' }),
};

export const GraphNodeSchema = Type.Object({
  id: Type.String({ description: 'workload:<ns>/<app>@<version> (versioned app), workload:<ns>/<name> (no version), service:<host> or unknown' }),
  kind: Type.Union([Type.Literal('workload'), Type.Literal('service'), Type.Literal('unknown')]),
  name: Type.String(),
  namespace: Type.String(),
  app: Type.Optional(Type.String()),
  version: Type.Optional(Type.String()),
  requestsPerSecond: Type.Number({ minimum: 0, description: 'inbound' }),
  errorRatio: Ratio,
});

export const GraphEdgeSchema = Type.Object({
  id: Type.String(),
  source: Type.String(),
  target: Type.String(),
  protocol: Type.Union([Type.Literal('http'), Type.Literal('grpc'), Type.Literal('tcp')]),
  ...Stats,
});

export const GraphSchema = Type.Object({
  windowSeconds: Type.Number(),
  timeMs: Type.Number({ description: 'end of the window, ms since the epoch' }),
  nodes: Type.Array(GraphNodeSchema),
  edges: Type.Array(GraphEdgeSchema),
});

export const SummariesSchema = Type.Object({
  windowSeconds: Type.Number(),
  services: Type.Array(
    Type.Object({
      service: Type.String(),
      namespace: Type.String(),
      windowSeconds: Type.Number(),
      ...Stats,
      versions: Type.Array(Type.Object({ version: Type.String(), ...Stats }), { description: 'the same signals per destination version' }),
    }),
  ),
});

export const TimeseriesSchema = Type.Object({
  services: Type.Array(
    Type.Object({
      service: Type.String(),
      stepSeconds: Type.Number(),
      points: Type.Array(Type.Object({ timeMs: Type.Number(), requestsPerSecond: Type.Number(), errorRatio: Ratio, p99Ms: Type.Number() })),
    }),
  ),
});

const WindowQuery = Type.Object({ window: Type.Optional(Type.String({ maxLength: 16, description: 'e.g. 30s, 5m, 1h (default 60s)' })) });

export const CanariesSchema = Type.Object({
  canaries: Type.Array(
    Type.Object({
      namespace: Type.String(),
      name: Type.String(),
      phase: CanaryEvent.properties.to.properties.phase,
      weight: Type.Integer(),
      reason: Type.String(),
      message: Type.String(),
      time: Type.String(),
      analysis: Type.Optional(CanaryEvent.properties.analysis),
      history: Type.Array(Type.Object({ time: Type.String(), phase: Type.String(), weight: Type.Integer(), reason: Type.String() })),
    }),
  ),
});

export interface ApiDeps {
  readonly graph: ServiceGraph;
  /** Canary transitions seen on aviary.canary.v1.event. */
  readonly canaries: CanaryTimeline;
  /** The registry holding only Istio's metrics, served unlabelled at /stats/prometheus. */
  readonly istioRegistry: Registry;
  readonly now: () => number;
}

/** The collector's REST API and dashboard, mounted on the admin app. */
export function telemetryRoutes(deps: ApiDeps): (app: AdminApp) => void {
  const max = deps.graph.retentionMs;
  return (app) => {
    app.get(
      '/api/v1/graph',
      { schema: { tags: ['telemetry'], summary: 'Service graph over a window: nodes (workloads, services) and edges with rate, errors, latency, mTLS', querystring: WindowQuery, response: { 200: GraphSchema } } },
      async (req) => {
        const { window } = req.query as { window?: string };
        const g = deps.graph.snapshot(parseWindow(window ?? '60s', max), deps.now());
        return { windowSeconds: g.windowSeconds, timeMs: g.timeMs, nodes: [...g.nodes], edges: [...g.edges] };
      },
    );
    app.get(
      '/api/v1/services/summaries',
      { schema: { tags: ['telemetry'], summary: 'Golden signals per destination service over a window', querystring: WindowQuery, response: { 200: SummariesSchema } } },
      async (req) => {
        const { window } = req.query as { window?: string };
        const ms = parseWindow(window ?? '60s', max);
        return { windowSeconds: ms / 1000, services: deps.graph.summaries(ms, deps.now()) };
      },
    );
    app.get(
      '/api/v1/services/timeseries',
      {
        schema: {
          tags: ['telemetry'],
          summary: 'Per-service rate, error ratio and p99 in steps over a window (for charts)',
          querystring: Type.Object({ window: Type.Optional(Type.String({ maxLength: 16 })), step: Type.Optional(Type.String({ maxLength: 16 })) }),
          response: { 200: TimeseriesSchema },
        },
      },
      async (req) => {
        const { window, step } = req.query as { window?: string; step?: string };
        const windowMs = parseWindow(window ?? '5m', max);
        const stepMs = Math.max(parseWindow(step ?? '10s', max), Math.ceil(windowMs / 600 / 1000) * 1000);
        return { services: deps.graph.timeseries(windowMs, stepMs, deps.now()).map((s) => ({ ...s, points: [...s.points] })) };
      },
    );
    app.get(
      '/api/v1/canaries',
      { schema: { tags: ['telemetry'], summary: "Canaries in flight as pilot's canary controller reports them: phase, weight over time, last analysis", response: { 200: CanariesSchema } } },
      async () => ({ canaries: deps.canaries.list() }),
    );
    app.get('/stats/prometheus', { schema: { tags: ['telemetry'], summary: "Istio's standard metrics alone, without the collector's own labels" } }, async (_req, reply) => {
      const body = await deps.istioRegistry.metrics();
      return reply.type(deps.istioRegistry.contentType).send(body);
    });
    app.get('/dashboard', { schema: { tags: ['telemetry'], summary: 'Live service graph and golden signals (HTML)' } }, async (_req, reply) =>
      reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'").send(dashboardHtml),
    );
    app.get('/', { schema: { hide: true } }, async (req, reply) => {
      const q = req.url.indexOf('?');
      return reply.redirect(q === -1 ? '/dashboard' : `/dashboard${req.url.slice(q)}`);
    });
  };
}
