import Type from 'typebox';
import { commonOptions, Host, PortOrZero } from '../common';
import { defineConfig, option } from '../spec';

export const gatewayConfig = defineConfig({
  app: 'gateway',
  summary: 'the mesh proxy: ingress gateway (--mode router) or sidecar (--mode sidecar)',
  options: {
    ...commonOptions('gateway', 15000),
    mode: option(Type.Union([Type.Literal('router'), Type.Literal('sidecar')]), 'router', 'proxy mode'),
    listenHost: option(Host, '127.0.0.1', 'address the traffic listeners bind to'),
    httpPort: option(PortOrZero, 8080, 'ingress HTTP port (router mode)'),
    httpsPort: option(PortOrZero, 8443, 'ingress HTTPS port (router mode)'),
    statsPort: option(PortOrZero, 15090, 'Prometheus stats port'),
    pilotAddress: option(Type.String({ minLength: 1 }), '127.0.0.1:15010', 'pilot xDS address host:port'),
    citadelAddress: option(Type.String({ minLength: 1 }), '127.0.0.1:8060', 'citadel CA address host:port'),
  },
});
