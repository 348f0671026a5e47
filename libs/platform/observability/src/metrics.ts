import { collectDefaultMetrics, Registry } from 'prom-client';

/** A Prometheus registry with process metrics and `app` as a default label. */
export function createMetricsRegistry(app: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry, prefix: 'aviary_' });
  return registry;
}
