import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentNode, EnvoyAgent, parseHostPort, type HostPort } from '@aviary/agent';
import { envoyPath, type ConfigOf, type CommonConfig, type gatewayConfig } from '@aviary/config';
import { AviaryError } from '@aviary/errors';
import type { Stoppable } from '@aviary/events';
import type { Component, ComponentContext } from '@aviary/runtime';
import { followTrustBundle } from './bundle';
import { gatewayRoutes } from './routes';

export type GatewayConfig = ConfigOf<typeof gatewayConfig> & CommonConfig;

/** The bearer token for citadel: the join token, or the token file read at each request. */
function tokenSource(config: GatewayConfig): (() => string) | undefined {
  if (config.joinToken !== '' && config.tokenPath !== '') throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_TOKEN_AMBIGUOUS', 'set either AVIARY_JOIN_TOKEN or AVIARY_TOKEN_PATH, not both');
  if (config.joinToken !== '') return () => config.joinToken;
  if (config.tokenPath !== '') return () => readFileSync(config.tokenPath, 'utf8').trim();
  return undefined;
}

/**
 * Wires the mesh agent: Envoy's bootstrap (node id and metadata from this config), the SDS
 * server with the workload certificate from citadel and the trust bundle from NATS, Envoy
 * supervision, readiness (Envoy LIVE with config and secrets) and the admin routes.
 */
export async function buildGateway(ctx: ComponentContext<GatewayConfig>): Promise<Component> {
  const { config, logger, bus, registry } = ctx;
  const node = agentNode(config);
  const log = logger.child({ proxy: node.id });
  const pilot = parseHostPort(config.pilotAddress, 'AVIARY_PILOT_ADDRESS');
  const token = tokenSource(config);
  if (config.statusPort !== 0 && config.adminPort === 0) throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_STATUS_PORT_NEEDS_ADMIN_PORT', 'AVIARY_STATUS_PORT: the readiness listener forwards to the agent admin, which then needs a fixed AVIARY_ADMIN_PORT (or set AVIARY_STATUS_PORT=0)');
  const bindHost = config.platform === 'kubernetes' ? '0.0.0.0' : '127.0.0.1';
  const at = (port: number): HostPort => ({ host: bindHost, port });

  const agent = new EnvoyAgent({
    workDir: join(config.dataDir, 'envoy'),
    envoyBinary: envoyPath(config.envoyPath),
    bootstrap: {
      node,
      pilot,
      xdsProtocol: config.xdsProtocol,
      ...(config.statsPort === 0 ? {} : { stats: at(config.statsPort) }),
      ...(config.statusPort === 0 ? {} : { readiness: { ...at(config.statusPort), agentAdminPort: config.adminPort } }),
    },
    envoyAdminPort: config.envoyAdminPort,
    concurrency: config.envoyConcurrency,
    envoyLogLevel: config.envoyLogLevel,
    drainMs: config.drainMs,
    logger: log,
    registry,
    ...(token === undefined ? {} : { identity: { address: config.citadelAddress, token, spiffeId: node.spiffeId, ttlSeconds: config.certTtlSeconds } }),
  });

  let bundleSub: Stoppable | undefined;
  let quitting = false;

  return {
    readiness: [{ name: 'envoy', ready: () => agent.ready() }],
    routes: gatewayRoutes({
      agent,
      spiffeId: token === undefined ? undefined : node.spiffeId,
      quit: () => {
        if (quitting) return;
        quitting = true;
        process.kill(process.pid, 'SIGTERM');
      },
    }),
    listen: async () => {
      bundleSub = await followTrustBundle(bus, (roots) => agent.setTrustBundle(roots), (err) => log.debug({ err }, 'no stored trust bundle yet'));
      await agent.start();
      return { mode: config.mode, proxyId: node.id, pilot: config.pilotAddress, envoyAdminPort: agent.admin.port, spiffeId: token === undefined ? undefined : node.spiffeId };
    },
    stop: async () => {
      await agent.stop();
      await bundleSub?.stop();
    },
  };
}
