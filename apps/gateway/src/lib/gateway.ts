import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConfigOf, CommonConfig, gatewayConfig } from '@aviary/config';
import { Subjects, type Stoppable } from '@aviary/events';
import { IdentityManager, Proxy, RecordBatcher, XdsClient } from '@aviary/proxy';
import type { Component, ComponentContext } from '@aviary/runtime';
import { followTrustBundle } from './bundle';
import { nodeOf } from './node';
import { portFor } from './ports';
import { gatewayRoutes } from './routes';

export type GatewayConfig = ConfigOf<typeof gatewayConfig> & CommonConfig;

/**
 * Wires the proxy: the traffic engine, the xDS client feeding it, the workload identity from
 * citadel (when a join token is configured), the trust bundle from NATS, request telemetry to
 * NATS, the stats port and the admin routes.
 */
export async function buildGateway(ctx: ComponentContext<GatewayConfig>): Promise<Component> {
  const { config, logger, bus } = ctx;
  const node = nodeOf({ ...config, trustDomain: config.trustDomain });
  const log = logger.child({ proxy: node.xds.id });
  const proxyId = node.xds.id;

  const batcher = new RecordBatcher({
    maxRecords: config.telemetryBatchSize,
    flushMs: config.telemetryFlushMs,
    publish: (records) => bus.publishDurable(Subjects.telemetryRequests, { proxyId, records }),
    onError: (err, dropped) => log.warn({ err, dropped }, 'telemetry batch dropped'),
  });
  const accessLog = logger.child({ log: 'access' });
  const proxy = new Proxy({
    node: node.proxy,
    bindHost: config.listenHost,
    portFor: portFor(config),
    onRecord: (r) => batcher.add(r),
    ...(config.accessLog ? { onAccessLog: (e) => accessLog.info(e) } : {}),
    onEvent: (event, details) => log.info({ ...details, event }, event.replace(/_/g, ' ')),
  });

  let identity: IdentityManager | undefined;
  let bundleSub: Stoppable | undefined;
  if (config.joinToken !== '') {
    identity = new IdentityManager({
      address: config.citadelAddress,
      token: () => config.joinToken,
      spiffeId: node.spiffeId,
      ttlSeconds: config.certTtlSeconds,
      onIdentity: (id) => proxy.setIdentity(id),
      onEvent: (event, details) => log.info({ ...details, event }, event.replace(/_/g, ' ')),
    });
  }

  let pilotDown = false;
  const xds = new XdsClient({
    address: config.pilotAddress,
    node: node.xds,
    protocol: config.xdsProtocol,
    onTable: (t) => proxy.apply(t),
    onEvent: (e) => {
      if (e.type === 'nack') log.warn({ kind: e.kind, version: e.version, error: e.error }, 'xDS config rejected (NACK)');
      else if (e.type === 'disconnected') {
        // Warn once per outage; the retries go to debug.
        if (!pilotDown) log.warn({ error: e.error, retryInMs: e.retryInMs }, 'pilot unreachable; serving the last config');
        else log.debug({ error: e.error, retryInMs: e.retryInMs }, 'pilot still unreachable');
        pilotDown = true;
      } else if (e.type === 'connected') {
        log.info({ protocol: e.protocol }, `${pilotDown ? 'reconnected' : 'connected'} to pilot over ${e.protocol === 'delta' ? 'delta' : 'state-of-the-world'} ADS`);
        pilotDown = false;
      } else if (e.type === 'fallback') log.info({ reason: e.reason }, 'pilot does not offer delta xDS; using state of the world');
      else if (e.type === 'applied') log.info({ version: e.version }, 'config applied');
      else log.debug(e, `xds ${e.type}`);
    },
  });

  let stats: Server | undefined;
  let statsPort = 0;
  const drain = (): Promise<void> => proxy.drain(config.drainMs);
  let quitting = false;

  return {
    readiness: [
      { name: 'xds', ready: () => xds.synced },
      ...(identity === undefined ? [] : [{ name: 'certificate', ready: () => identity?.identity !== undefined }]),
    ],
    routes: gatewayRoutes({
      proxy,
      xds,
      ready: () => xds.synced && (identity === undefined || identity.identity !== undefined),
      drain,
      quit: () => {
        if (quitting) return;
        quitting = true;
        process.kill(process.pid, 'SIGTERM');
      },
      identity: () => (identity?.identity === undefined ? undefined : { spiffeId: node.spiffeId, notAfter: identity.notAfter?.toISOString(), version: identity.identity.version }),
    }),
    listen: async () => {
      if (identity !== undefined) {
        // The certificate first: mTLS listeners need it. Pilot's config may arrive meanwhile.
        const id = identity;
        bundleSub = await followTrustBundle(bus, (roots) => id.setRoots(roots), (err) => log.debug({ err }, 'no stored trust bundle yet'));
        void id.start().catch((err: unknown) => log.error({ err }, 'certificate bootstrap stopped'));
      }
      xds.start();
      stats = createServer((req, res) => {
        if (req.url === '/stats/prometheus' || req.url === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          res.end(proxy.stats.prometheus());
        } else {
          res.writeHead(404);
          res.end();
        }
      });
      await new Promise<void>((resolve) => stats?.listen(config.statsPort, config.adminHost, resolve));
      statsPort = (stats.address() as AddressInfo).port;
      return { mode: config.mode, proxyId, pilot: config.pilotAddress, statsPort, spiffeId: identity === undefined ? undefined : node.spiffeId };
    },
    stop: async () => {
      await xds.stop();
      identity?.stop();
      await bundleSub?.stop();
      await proxy.close(config.drainMs);
      await batcher.flush().catch(() => undefined);
      await new Promise<void>((resolve) => (stats === undefined ? resolve() : stats.close(() => resolve())));
    },
  };
}
