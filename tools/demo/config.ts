import Type from 'typebox';
import { defineConfig, Host, option, PortOrZero } from '@aviary/config';

export const demoServiceConfig = defineConfig({
  app: 'demo-service',
  summary: 'the local mesh demo\'s sample HTTP service: answers every request with its version (header x-version and the body)',
  options: {
    host: option(Host, '127.0.0.1', 'address to listen on'),
    port: option(PortOrZero, 9081, 'port to listen on'),
    version: option(Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9._-]+$' }), 'v1', 'the version this instance answers with'),
    name: option(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' }), 'hello', 'the service name shown in the body'),
  },
});
