import Type from 'typebox';
import { commonOptions, Millis } from '../common';
import { defineConfig, option } from '../spec';

export const telemetryConfig = defineConfig({
  app: 'telemetry-collector',
  summary: 'request metrics (Istio names), traces, service graph and dashboard',
  options: {
    ...commonOptions('telemetry-collector', 15020),
    summaryIntervalMs: option(Millis(1_000, 3_600_000), 10_000, 'how often per-service summaries are published'),
    summaryWindowSeconds: option(Type.Integer({ minimum: 1, maximum: 3_600 }), 60, 'trailing window each published summary covers (at most graphRetentionSeconds, checked at boot); a Canary step is judged only on windows that begin after the step started, so each step lasts at least this long'),
    maxSeriesPerMetric: option(Type.Integer({ minimum: 1, maximum: 1_000_000 }), 10_000, 'most distinct label sets per istio_* metric; more go to one series labelled "overflow"'),
    maxAckPending: option(Type.Integer({ minimum: 1, maximum: 10_000 }), 64, 'most telemetry batches delivered but not yet processed (back-pressure on the stream)'),
    graphRetentionSeconds: option(Type.Integer({ minimum: 10, maximum: 3_600 }), 600, 'longest service-graph window kept in memory'),
    graphMaxEdges: option(Type.Integer({ minimum: 1, maximum: 1_000_000 }), 5_000, 'most edges the service graph tracks'),
    replicaId: option(
      Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]*$' }),
      '',
      'empty: the one collector, consuming the durable consumer "telemetry-collector"; set (several replicas; the chart sets the pod name): this replica reads every record through a durable consumer of its own, "telemetry-collector-<replicaId>", so each replica holds the whole graph and metrics; at startup it reads the last graph retention back from the stream into its graph (not its counters)',
    ),
    graphReporter: option(Type.Union([Type.Literal('auto'), Type.Literal('source'), Type.Literal('destination')]), 'auto', 'which proxy reports the graph counts: destination, source, or auto (destination, plus source reports to unmeshed destinations)'),
  },
});
