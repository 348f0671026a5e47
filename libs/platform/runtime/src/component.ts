import type { Registry } from 'prom-client';
import { buildAdminApp, createProbeServer, listenAdmin, listenProbes, type AdminApp, type ReadinessCheck } from '@aviary/admin-api';
import { aviaryVersion, type AppConfigSpec, type CommonConfig, type ConfigOf } from '@aviary/config';
import { Bus, busInboxPrefix, busRoleOf } from '@aviary/events';
import { createLogger, createMetricsRegistry, startTracing, type Logger } from '@aviary/observability';

export interface ComponentContext<C> {
  readonly config: C;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly bus: Bus;
}

/** What an app's domain wiring hands back to the runtime. */
export interface Component {
  /** Extra readiness checks (its listeners, its stores). NATS is always checked. */
  readonly readiness?: readonly ReadinessCheck[];
  /**
   * Whether the component is unready while NATS is away (default true). The proxy agent says
   * false: its Envoy serves traffic without NATS, and an unready pod would be taken out of
   * service by every NATS blip. `checks.nats` in `/readyz` still shows the connection.
   */
  readonly natsRequiredForReadiness?: boolean;
  /** The app's own admin routes, mounted beside health, metrics and docs. */
  readonly routes?: (app: AdminApp) => Promise<void> | void;
  /** Called after the admin API listens; returns what to log in the ready line. */
  readonly listen?: () => Promise<Record<string, unknown>>;
  /** Stops the app's own servers and loops; the runtime then drains NATS. */
  readonly stop?: () => Promise<void>;
}

export interface RunOptions<S extends AppConfigSpec> {
  readonly spec: S;
  readonly config: ConfigOf<S> & CommonConfig;
  readonly description: string;
  readonly build: (ctx: ComponentContext<ConfigOf<S> & CommonConfig>) => Promise<Component>;
  /** Creates/updates the durable streams the app uses (default true; proxies only look them up). */
  readonly manageStreams?: boolean;
}

export interface RunningComponent {
  readonly adminUrl: string;
  readonly admin: AdminApp;
  shutdown(reason: string): Promise<void>;
}

/**
 * Runs one Aviary app: logger, metrics, tracing, NATS, the component's own parts, the admin
 * API, one "ready" log line, and graceful shutdown on SIGTERM/SIGINT within the configured
 * timeout (exit 0), forced exit 1 past it.
 */
export async function runComponent<S extends AppConfigSpec>(opts: RunOptions<S>): Promise<RunningComponent> {
  const { config, spec } = opts;
  const logger = createLogger(spec.app, config.logLevel);
  const registry = createMetricsRegistry(spec.app);
  const tracing = startTracing(`aviary-${spec.app}`, config.otelExporterOtlpEndpoint, logger);

  logger.info({ natsUrl: config.natsUrl }, 'connecting to NATS');
  const bus = await Bus.connect({
    url: config.natsUrl,
    source: spec.app,
    logger,
    registry,
    user: config.natsUser,
    password: config.natsPassword,
    replicas: config.natsReplicas,
    inboxPrefix: busInboxPrefix(busRoleOf(spec.app)),
    ...(opts.manageStreams === undefined ? {} : { manageStreams: opts.manageStreams }),
  });
  const component = await opts.build({ config, logger, registry, bus });
  const readiness: ReadinessCheck[] = [{ name: 'nats', ready: () => bus.connected, required: component.natsRequiredForReadiness !== false }, ...(component.readiness ?? [])];
  const admin = await buildAdminApp(
    {
      app: spec.app,
      version: aviaryVersion,
      description: opts.description,
      logger,
      registry,
      adminToken: config.adminToken,
      bodyLimit: config.adminBodyLimit,
      readiness,
    },
    component.routes,
  );
  const port = await listenAdmin(admin, config.adminHost, config.adminPort);
  const adminUrl = `http://${config.adminHost}:${port}`;
  const probes = config.healthPort === 0 ? undefined : createProbeServer({ registry, readiness });
  const health = probes === undefined ? {} : { health: `http://${config.healthHost}:${await listenProbes(probes, config.healthHost, config.healthPort)}` };
  const extra = component.listen === undefined ? {} : await component.listen();
  logger.info({ admin: adminUrl, ...health, version: aviaryVersion, ...extra }, 'ready');

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, 'shutting down');
      const force = setTimeout(() => {
        logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'graceful shutdown timed out; exiting');
        process.exit(1);
      }, config.shutdownTimeoutMs);
      force.unref();
      await admin.close().catch((err: unknown) => logger.warn({ err }, 'admin close failed'));
      if (probes !== undefined) await new Promise<void>((resolve) => probes.close(() => resolve()));
      await component.stop?.().catch((err: unknown) => logger.warn({ err }, 'component stop failed'));
      await bus.close().catch((err: unknown) => logger.warn({ err }, 'NATS drain failed'));
      await tracing.shutdown();
      logger.info('stopped');
      clearTimeout(force);
    })();
    return stopping;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void shutdown(signal).then(() => process.exit(0));
    });
  }
  return { adminUrl, admin, shutdown };
}
