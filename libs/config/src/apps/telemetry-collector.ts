import { commonOptions, Millis } from '../common';
import { defineConfig, option } from '../spec';

export const telemetryConfig = defineConfig({
  app: 'telemetry-collector',
  summary: 'request metrics (Istio names), traces, service graph and dashboard',
  options: {
    ...commonOptions('telemetry-collector', 15020),
    summaryIntervalMs: option(Millis(1_000, 3_600_000), 10_000, 'how often per-service summaries are published'),
  },
});
