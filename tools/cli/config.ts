import Type from 'typebox';
import { defineConfig, option } from '@aviary/config';

export const cliConfig = defineConfig({
  app: 'cli',
  summary: 'command-line client for a running Aviary mesh',
  options: {
    pilotUrl: option(Type.String({ pattern: '^https?://' }), 'http://127.0.0.1:15014', 'pilot admin API URL'),
    citadelUrl: option(Type.String({ pattern: '^https?://' }), 'http://127.0.0.1:15016', 'citadel admin API URL'),
    injectorUrl: option(Type.String({ pattern: '^https?://' }), 'http://127.0.0.1:15018', 'injector admin API URL'),
    telemetryUrl: option(Type.String({ pattern: '^https?://' }), 'http://127.0.0.1:15020', 'telemetry-collector admin API URL'),
    gatewayUrl: option(Type.String({ pattern: '^https?://' }), 'http://127.0.0.1:15000', 'gateway admin API URL'),
    adminToken: option(Type.String({ maxLength: 4096 }), '', 'admin token (default: read from .aviary/admin-token)', { secret: true }),
    timeoutMs: option(Type.Integer({ minimum: 100, maximum: 600_000 }), 10_000, 'request timeout'),
  },
});
