import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createTelemetryPublisher, startAccessLogServer, type AccessLogServer } from '@aviary/access-log';
import {
  agentNode,
  citadelTlsSetting,
  EnvoyAgent,
  parseAppProbers,
  parseDownwardApiLabels,
  parseHostPorts,
  parseLabels,
  pilotTlsSetting,
  startAppProbeServer,
  PROBE_SOURCE_ADDRESS,
  type AppProbeServer,
  type HostPort,
} from '@aviary/agent';
import { envoyPath, type ConfigOf, type CommonConfig, type gatewayConfig } from '@aviary/config';
import { AviaryError } from '@aviary/errors';
import { Subjects, type Stoppable } from '@aviary/events';
import type { Component, ComponentContext } from '@aviary/runtime';
import { followTrustBundle } from '@aviary/serving-tls';
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
 * The workload's labels: AVIARY_LABELS, overlaid with the downward API labels file (the pod's
 * own labels in Kubernetes). A configured file that cannot be read stops the agent: a proxy
 * without its labels would escape every policy that selects it.
 */
export function workloadLabels(config: Pick<GatewayConfig, 'labels' | 'labelsPath'>): Record<string, string> {
  const labels = parseLabels(config.labels);
  if (config.labelsPath === '') return labels;
  let text: string;
  try {
    text = readFileSync(config.labelsPath, 'utf8');
  } catch (err) {
    throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_LABELS_UNREADABLE', `AVIARY_LABELS_PATH ${config.labelsPath}: ${(err as Error).message}`, undefined, { cause: err });
  }
  return { ...labels, ...parseDownwardApiLabels(text, config.labelsPath) };
}

/** The agent's listeners on the pod address must not share a port (Istio's 15000/15020/15021/15090 split). */
export function checkAgentPorts(config: Pick<GatewayConfig, 'adminPort' | 'statsPort' | 'statusPort' | 'healthPort' | 'appProbePort'>): void {
  const named: [string, number][] = [
    ['AVIARY_ADMIN_PORT', config.adminPort],
    ['AVIARY_STATS_PORT', config.statsPort],
    ['AVIARY_STATUS_PORT', config.statusPort],
    ['AVIARY_HEALTH_PORT', config.healthPort],
    ['AVIARY_APP_PROBE_PORT', config.appProbePort],
  ];
  const seen = new Map<number, string>();
  for (const [name, port] of named) {
    if (port === 0) continue;
    const other = seen.get(port);
    if (other !== undefined) throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_PORT_CONFLICT', `${name} and ${other} are both ${port}: each agent listener needs its own port`);
    seen.set(port, name);
  }
}

/**
 * Wires the mesh agent: Envoy's bootstrap (node id and metadata from this config), the SDS
 * server with the workload certificate from citadel and the trust bundle from NATS, Envoy
 * supervision, readiness (Envoy LIVE with config and secrets) and the admin routes.
 */
export async function buildGateway(ctx: ComponentContext<GatewayConfig>): Promise<Component> {
  const { config, logger, bus, registry } = ctx;
  checkAgentPorts(config);
  const node = agentNode({ ...config, labels: workloadLabels(config) });
  const probers = parseAppProbers(config.appProbers);
  if (probers.size > 0 && config.appProbePort === 0) throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_APP_PROBE_PORT_REQUIRED', 'ISTIO_KUBE_APP_PROBERS is set but AVIARY_APP_PROBE_PORT is 0: the rewritten app probes would fail');
  const log = logger.child({ proxy: node.id });
  const [pilot, ...otherPilots] = parseHostPorts(config.pilotAddress, 'AVIARY_PILOT_ADDRESS') as [HostPort, ...HostPort[]];
  const token = tokenSource(config);
  // Only a proxy that asks citadel for a certificate needs to reach it.
  const citadelTls = token === undefined ? undefined : citadelTlsSetting({ citadelTls: config.citadelTls, platform: config.platform, address: config.citadelAddress, caRootPath: config.caRootPath, subjectAltName: config.citadelSubjectAltName });
  const citadels = config.citadelAddress.split(',').map((a) => a.trim());
  const pilotTls = pilotTlsSetting({ xdsTls: config.xdsTls, platform: config.platform, pilot, subjectAltName: config.pilotSubjectAltName });
  if (pilotTls !== undefined && token === undefined) {
    throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_XDS_TLS_NEEDS_IDENTITY', `xDS over mTLS to ${config.pilotAddress} presents the workload certificate: set AVIARY_JOIN_TOKEN or AVIARY_TOKEN_PATH (or AVIARY_XDS_TLS=off for pilot's plaintext loopback port)`);
  }
  if (config.telemetryMaxBuffered < config.telemetryBatchSize) throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_TELEMETRY_BUFFER_TOO_SMALL', `AVIARY_TELEMETRY_MAX_BUFFERED: must be at least AVIARY_TELEMETRY_BATCH_SIZE (${config.telemetryBatchSize}), got ${config.telemetryMaxBuffered}`);
  if (config.statusPort !== 0 && config.adminPort === 0) throw new AviaryError('INVALID_ARGUMENT', 'GATEWAY_STATUS_PORT_NEEDS_ADMIN_PORT', 'AVIARY_STATUS_PORT: the readiness listener forwards to the agent admin, which then needs a fixed AVIARY_ADMIN_PORT (or set AVIARY_STATUS_PORT=0)');
  const bindHost = config.platform === 'kubernetes' ? '0.0.0.0' : '127.0.0.1';
  const at = (port: number): HostPort => ({ host: bindHost, port });
  // Absolute: the SDS and ALS Unix sockets live here and Envoy's bootstrap names them.
  const workDir = resolve(config.dataDir, 'envoy');

  const agent = new EnvoyAgent({
    workDir,
    envoyBinary: envoyPath(config.envoyPath),
    bootstrap: {
      node,
      pilot,
      ...(otherPilots.length > 0 && { otherPilots }),
      ...(pilotTls === undefined ? {} : { pilotTls }),
      xdsProtocol: config.xdsProtocol,
      ...(config.statsPort === 0 ? {} : { stats: at(config.statsPort) }),
      ...(config.statusPort === 0 ? {} : { readiness: { ...at(config.statusPort), agentAdminPort: config.adminPort } }),
    },
    envoyAdminPort: config.envoyAdminPort,
    // Pilot's outbound routes tell the peer this workload's name from Envoy's environment (see @aviary/access-log).
    envoyEnv: { ISTIO_META_WORKLOAD_NAME: node.workload },
    concurrency: config.envoyConcurrency,
    envoyLogLevel: config.envoyLogLevel,
    drainMs: config.drainMs,
    logger: log,
    registry,
    ...(token === undefined
      ? {}
      : {
          identity: {
            address: citadels[0]!,
            ...(citadels.length > 1 && { otherAddresses: citadels.slice(1) }),
            token,
            spiffeId: node.spiffeId,
            ttlSeconds: config.certTtlSeconds,
            ...(citadelTls === undefined ? {} : { tls: { roots: () => readFileSync(citadelTls.rootsPath, 'utf8'), serverName: citadelTls.serverName } }),
          },
        }),
  });

  // Telemetry: Envoy's gRPC access log (cluster aviary-als) → request records → NATS, held up to
  // telemetryMaxBuffered while NATS is away (the batch id is the JetStream msgID: a retry is stored once).
  const proxyId = node.id;
  const publisher = createTelemetryPublisher({
    publish: (records, batchId) => bus.publishDurable(Subjects.telemetryRequests, { proxyId, records }, batchId),
    maxRecords: config.telemetryBatchSize,
    flushMs: config.telemetryFlushMs,
    maxBuffered: config.telemetryMaxBuffered,
    proxyId,
    registry,
    logger: log,
  });
  const accessLog = config.accessLog ? logger.child({ log: 'access' }) : undefined;
  let als: AccessLogServer | undefined;
  let appProbes: AppProbeServer | undefined;

  let bundleSub: Stoppable | undefined;
  let quitting = false;

  return {
    readiness: [{ name: 'envoy', ready: () => agent.ready() }],
    // Envoy serves with the config and certificates it holds; NATS carries only telemetry (held
    // meanwhile) and trust-bundle updates, so a NATS outage must not take every proxy out of service.
    natsRequiredForReadiness: false,
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
      mkdirSync(workDir, { recursive: true });
      als = await startAccessLogServer({
        socketPath: agent.paths.als,
        identity: { namespace: config.namespace, workload: node.workload, labels: node.labels, principal: token === undefined ? '' : node.spiffeId },
        onRecords: (records) => {
          for (const r of records) {
            publisher.add(r);
            accessLog?.info(r, 'request');
          }
        },
        registry,
        logger: log,
      });
      // App probes are answered from the start (as Istio's status server): the app's liveness
      // must not wait for Envoy's config and certificate.
      if (config.appProbePort !== 0) appProbes = await startAppProbeServer({ host: bindHost, port: config.appProbePort, probers, podIp: config.podIp, ...(config.platform === 'kubernetes' && { sourceAddress: PROBE_SOURCE_ADDRESS }) });
      await agent.start();
      return {
        mode: config.mode,
        proxyId: node.id,
        pilot: config.pilotAddress,
        pilotTls: pilotTls !== undefined,
        citadelTls: citadelTls !== undefined,
        envoyAdminPort: agent.admin.port,
        spiffeId: token === undefined ? undefined : node.spiffeId,
        appProbePort: appProbes?.port,
        appProbes: [...probers.keys()],
      };
    },
    stop: async () => {
      // Envoy drains first; its last access log entries arrive before the ALS server stops.
      await appProbes?.stop();
      await agent.stop();
      await als?.stop();
      const held = publisher.buffered;
      await publisher.flush(Math.min(5_000, Math.max(1_000, config.shutdownTimeoutMs / 3)));
      if (held > 0) log.info({ held, droppedTotal: publisher.dropped }, "telemetry held at shutdown flushed (what could not be sent is counted as dropped: shutdown)");
      await bundleSub?.stop();
    },
  };
}
