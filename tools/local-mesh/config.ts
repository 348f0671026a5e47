import Type from 'typebox';
import { defineConfig, Host, LogLevel, option, PortOrZero } from '@aviary/config';

export const localMeshConfig = defineConfig({
  app: 'local-mesh',
  summary: 'runs nats-server and every Aviary app on this machine, without Kubernetes',
  options: {
    stateDir: option(Type.String({ minLength: 1 }), '.aviary', 'directory for NATS data, app data, logs and the admin token'),
    natsHost: option(Host, '127.0.0.1', 'address nats-server binds to'),
    natsPort: option(PortOrZero, 4222, 'nats-server client port'),
    natsNodes: option(Type.Integer({ minimum: 1, maximum: 3 }), 1, 'nats-server processes: 1, or 3 for a JetStream cluster (client ports natsPort, +1, +2; every stream and KV bucket replicated 3 times; one node may die without loss)'),
    pilotReplicas: option(Type.Integer({ minimum: 1, maximum: 3 }), 1, 'pilot processes sharing the config store: replica n > 1 listens on admin 15014, xDS 15010 and 15012 plus (n-1)×10000; the demo proxies get every replica\'s address'),
    citadelReplicas: option(Type.Integer({ minimum: 1, maximum: 3 }), 1, 'citadel processes signing with the same CA (one data dir, written compare-and-set): replica n > 1 listens on admin 15016, CA 8060 and 15013 plus (n-1)×10000; the demo proxies get every replica\'s CA address'),
    collectorReplicas: option(Type.Integer({ minimum: 1, maximum: 3 }), 1, 'telemetry-collector processes, each reading every request record through a durable consumer of its own (AVIARY_REPLICA_ID collector-<n>): replica n > 1 listens on admin 15020 plus (n-1)×10000'),
    adminToken: option(Type.String({ maxLength: 4096 }), '', 'admin token for every app (empty: generated once and kept in <state-dir>/admin-token)', { secret: true }),
    readyTimeoutMs: option(Type.Integer({ minimum: 1_000, maximum: 600_000 }), 60_000, 'how long to wait for every /readyz'),
    logLevel: option(LogLevel, 'info', 'log level passed to every app'),
    demo: option(Type.Boolean(), false, 'also run the demo: the sample service "hello" in two versions behind sidecars, the ingress gateway on :8080 splitting 90/10, PeerAuthentication STRICT (tools/demo/demo.yaml)'),
    demoCertTtlSeconds: option(Type.Integer({ minimum: 10, maximum: 31_536_000 }), 86_400, 'certificate lifetime the demo\'s proxies (ingress gateway and sidecars) ask citadel for; renewed at half of it'),
    restart: option(Type.Boolean(), true, 'restart a component (an app, a demo process or nats-server, whose JetStream store is kept) that exits unexpectedly, with exponential back-off; false: see --keep-going'),
    restartInitialMs: option(Type.Integer({ minimum: 10, maximum: 60_000 }), 500, 'wait before the first restart of a component; doubles with each consecutive restart'),
    restartMaxMs: option(Type.Integer({ minimum: 10, maximum: 600_000 }), 30_000, 'longest wait between restarts (a component that stayed up 30 s starts the back-off over)'),
    keepGoing: option(Type.Boolean(), false, 'with --restart false: when a component exits unexpectedly, report it and keep the others running (default: stop everything)'),
  },
});
