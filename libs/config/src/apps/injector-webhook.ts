import Type from 'typebox';
import { commonOptions, Host, PortOrZero } from '../common';
import { defineConfig, option } from '../spec';

export const injectorConfig = defineConfig({
  app: 'injector-webhook',
  summary: 'Kubernetes admission webhooks: sidecar injection and mesh config validation',
  options: {
    ...commonOptions('injector-webhook', 15018),
    webhookHost: option(Host, '127.0.0.1', 'address the HTTPS webhook binds to'),
    webhookPort: option(PortOrZero, 9443, 'HTTPS admission webhook port'),
    revision: option(Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }), 'default', 'injector revision matched against istio.io/rev'),
  },
});
