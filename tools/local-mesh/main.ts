import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { appConfigs, citadelConfig, configFromProcess, pilotConfig, telemetryConfig } from '@aviary/config';
import { busRoleOf, busRoles, natsAuthorizationConfig, type BusRole } from '@aviary/events';
import { NatsCluster, NatsServer } from '@aviary/nats-runner';
import { localMeshConfig } from './config';
import { applyDemoConfig, createDemoCredential, demoHelp, demoTls, externalService, externalServiceArgs, demoWorkloads, DEMO_NAMESPACE, DEMO_SERVICE, ingress, ingressEnv, mintJoinToken, serviceArgs, sidecarEnv, waitForTraffic } from './demo';
import { portFree, startApp, stopApp, waitReady, type AppProcess } from './processes';
import { Supervised, type ExitInfo, type RestartPolicy, type SupervisorEvents } from './supervisor';

const config = configFromProcess(localMeshConfig);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const stateDir = resolve(config.stateDir);
const say = (line: string): void => void process.stdout.write(`${line}\n`);

function adminToken(): string {
  if (config.adminToken !== '') return config.adminToken;
  const file = join(stateDir, 'admin-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

for (const dir of ['nats', 'data', 'logs']) mkdirSync(join(stateDir, dir), { recursive: true });
const token = adminToken();

// Another mesh on the same ports would answer our readiness checks and take our requests:
// refuse to start rather than talk to it.
/** Replica n (1-based) of pilot, citadel or the collector: its ports are the defaults plus (n-1)×10000. */
const pilotPort = (port: number, replica: number): number => port + (replica - 1) * 10_000;
const extraReplicas = (count: number): number[] => Array.from({ length: count - 1 }, (_, i) => i + 2);
const extraPilots = extraReplicas(config.pilotReplicas);
const extraCitadels = extraReplicas(config.citadelReplicas);
const extraCollectors = extraReplicas(config.collectorReplicas);
const natsPorts = config.natsPort === 0 ? [] : Array.from({ length: config.natsNodes }, (_, i) => config.natsPort + i);
const wanted = [
  ...natsPorts.map((port) => ({ port, what: 'nats-server' })),
  ...extraPilots.flatMap((n) => [
    { port: pilotPort(pilotConfig.options.adminPort.default, n), what: `pilot-${n} admin API` },
    { port: pilotPort(pilotConfig.options.xdsPort.default, n), what: `pilot-${n} xDS` },
    { port: pilotPort(pilotConfig.options.xdsTlsPort.default, n), what: `pilot-${n} xDS over mTLS` },
  ]),
  ...extraCitadels.flatMap((n) => [
    { port: pilotPort(citadelConfig.options.adminPort.default, n), what: `citadel-${n} admin API` },
    { port: pilotPort(citadelConfig.options.caPort.default, n), what: `citadel-${n} CA` },
    { port: pilotPort(citadelConfig.options.caTlsPort.default, n), what: `citadel-${n} CA over TLS` },
  ]),
  ...extraCollectors.map((n) => ({ port: pilotPort(telemetryConfig.options.adminPort.default, n), what: `telemetry-collector-${n} admin API` })),
  ...appConfigs.map((s) => ({ port: s.options.adminPort.default, what: `${s.app} admin API` })),
  { port: pilotConfig.options.xdsPort.default, what: 'pilot xDS' },
  { port: pilotConfig.options.xdsTlsPort.default, what: 'pilot xDS over mTLS' },
];
const busy: typeof wanted = [];
for (const w of wanted) if (!(await portFree('127.0.0.1', w.port))) busy.push(w);
if (busy.length > 0) {
  say(`cannot start: ${busy.map((b) => `port ${b.port} (${b.what})`).join(', ')} already in use; is another Aviary mesh running?`);
  process.exit(1);
}

if (config.restartMaxMs < config.restartInitialMs) {
  say(`invalid configuration: AVIARY_RESTART_MAX_MS (--restart-max-ms): must be at least --restart-initial-ms (${config.restartInitialMs}), got ${config.restartMaxMs}`);
  process.exit(2);
}
if (config.natsNodes === 2) {
  say('invalid configuration: AVIARY_NATS_NODES (--nats-nodes): must be 1 or 3 (a JetStream cluster needs a quorum that survives one node), got 2');
  process.exit(2);
}
const policy: RestartPolicy = { initialMs: config.restartInitialMs, maxMs: config.restartMaxMs, stableMs: 30_000 };
let stopping = false;
const exitText = (e: ExitInfo): string => (e.code !== null ? `code ${e.code}` : `signal ${e.signal ?? 'unknown'}`);
/** One line per restart, in the launcher's output. */
const restartEvents = (logFile: string, readyUrl?: string): SupervisorEvents => ({
  restarting: (e) => say(`${e.name} exited (${exitText(e.exit)}) after ${(e.upMs / 1000).toFixed(1)} s; restarting in ${e.delayMs} ms (restart ${e.restarts}); see ${logFile}`),
  restarted: (e) => {
    say(`${e.name} restarted (pid ${e.pid ?? '?'}, restart ${e.restarts})`);
    if (readyUrl !== undefined) void waitReady(readyUrl, Date.now() + config.readyTimeoutMs, () => !stopping).then((ok) => ok && !stopping && say(`${e.name} is ready again (restart ${e.restarts})`));
  },
  restartFailed: (e) => say(`${e.name} did not start again (restart ${e.restarts}): ${e.err instanceof Error ? e.err.message : String(e.err)}`),
});

// nats-server: restarted on the same port with the same JetStream store (config, streams and
// durable consumers survive); the apps' NATS clients reconnect on their own.
// Every app connects to NATS as its own user, with the permissions of its role (@aviary/events
// permissions.ts); fresh passwords each run. The observer's credentials (read-only, for `nats sub`
// and tests) are written to <state-dir>/nats-observer.json.
const natsStore = join(stateDir, 'nats');
const busPasswords = new Map<BusRole, string>(busRoles.map((role) => [role, randomBytes(24).toString('base64url')]));
const natsAuth = natsAuthorizationConfig(busRoles.map((role) => ({ user: role, password: busPasswords.get(role)!, role })));
// One nats-server, or a 3-node JetStream cluster (each node with its own store under natsStore).
const natsNodes: readonly NatsServer[] =
  config.natsNodes === 1
    ? [await NatsServer.start({ host: config.natsHost, port: config.natsPort, storeDir: natsStore, config: natsAuth })]
    : (await NatsCluster.start({ size: config.natsNodes, host: config.natsHost, ...(natsPorts.length > 0 && { ports: natsPorts }), storeDir: natsStore, config: natsAuth })).nodes;
const natsUrl = natsNodes.map((n) => n.url).join(',');
const natsName = (i: number): string => (natsNodes.length === 1 ? 'nats-server' : `nats-server-${i + 1}`);
writeFileSync(join(stateDir, 'nats-observer.json'), `${JSON.stringify({ url: natsNodes[0]!.url, urls: natsUrl, user: 'observer', password: busPasswords.get('observer') })}\n`, { mode: 0o600 });
const natsSups = config.restart
  ? await Promise.all(
      natsNodes.map(async (node, i) => {
        let starts = 0;
        return Supervised.start<NatsServer>({
          name: natsName(i),
          start: async () => {
            // The first start is the one above; every later one is a restart (same port, same store).
            if (starts++ > 0) await node.restart();
            return node;
          },
          exited: (n) => n.exited,
          pid: (n) => n.pid,
          policy,
          events: restartEvents(node.storeDir),
        });
      }),
    )
  : [];
natsNodes.forEach((node, i) => say(`${natsName(i).padEnd(13)} ${node.url} (pid ${node.pid ?? '?'}, JetStream store ${node.storeDir}; per-app users, observer credentials in ${join(stateDir, 'nats-observer.json')})`));
if (!config.restart) {
  natsNodes.forEach((node, i) => {
    void node.exited.then((e) => {
      if (stopping) return;
      say(`${natsName(i)} exited unexpectedly (${exitText(e)}); --restart false: stopping the local mesh`);
      void stopAll(1);
    });
  });
}

/** A process the launcher runs: restarted when it exits on its own (`--restart`), else reported. */
interface Managed {
  readonly name: string;
  readonly logFile: string;
  current(): AppProcess;
  stop(): Promise<number | null>;
}
const apps: Managed[] = [];

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('stopping the local mesh…');
    for (const sup of natsSups) await sup.stop();
    const codes = await Promise.all([...apps].reverse().map(async (a) => [a.name, await a.stop()] as const));
    for (const [name, c] of codes) say(`  ${name.padEnd(20)} exited ${c ?? 'by signal'}`);
    await Promise.all(natsNodes.map((n) => n.stop()));
    for (let i = 0; i < natsNodes.length; i++) say(`  ${natsName(i).padEnd(20)} stopped`);
  }
  process.exit(code);
}
process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));

/** Starts one process (an app, or a demo process) and watches it; `readyUrl` is polled after a restart. */
async function launch(name: string, script: string, env: NodeJS.ProcessEnv, args: readonly string[] = [], readyUrl?: string): Promise<Managed> {
  const logFile = join(stateDir, 'logs', `${name}.log`);
  const start = (): AppProcess => startApp(name, script, env, logFile, args);
  let managed: Managed;
  if (config.restart) {
    const sup = await Supervised.start<AppProcess>({
      name,
      start,
      exited: async (a) => ({ code: await a.exited, signal: a.child.signalCode }),
      pid: (a) => a.child.pid,
      policy,
      events: restartEvents(logFile, readyUrl),
    });
    managed = {
      name,
      logFile,
      current: () => sup.current,
      stop: async () => {
        await sup.stop();
        return stopApp(sup.current, 12_000);
      },
    };
  } else {
    const app = start();
    managed = { name, logFile, current: () => app, stop: () => stopApp(app, 12_000) };
    void app.exited.then((code) => {
      if (stopping) return;
      if (config.keepGoing) {
        say(`${name} exited (code ${code}); the other components keep running (--keep-going); see ${app.logFile}`);
        return;
      }
      say(`${name} exited unexpectedly (code ${code}); see ${app.logFile}`);
      void stopAll(1);
    });
  }
  apps.push(managed);
  return managed;
}

/** Every pilot replica's plaintext xDS address: what the demo proxies are given. */
const pilotAddresses = [1, ...extraPilots].map((n) => `127.0.0.1:${pilotPort(pilotConfig.options.xdsPort.default, n)}`).join(',');
/** Every pilot replica's mTLS xDS address: the demo's ingress gateway, which is served credentials, connects there. */
const pilotTlsAddresses = [1, ...extraPilots].map((n) => `127.0.0.1:${pilotPort(pilotConfig.options.xdsTlsPort.default, n)}`).join(',');

/** Every citadel replica's plaintext CA address: what the demo proxies are given (they try the next after a failure). */
const citadelAddresses = [1, ...extraCitadels].map((n) => `127.0.0.1:${pilotPort(citadelConfig.options.caPort.default, n)}`).join(',');

function appEnv(app: string, extra: NodeJS.ProcessEnv = {}, role: BusRole = busRoleOf(app)): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AVIARY_NATS_URL: natsUrl,
    AVIARY_NATS_REPLICAS: String(natsNodes.length),
    ...(role === 'gateway' && config.pilotReplicas > 1 && { AVIARY_PILOT_ADDRESS: pilotAddresses }),
    ...(role === 'gateway' && config.citadelReplicas > 1 && { AVIARY_CITADEL_ADDRESS: citadelAddresses }),
    AVIARY_NATS_USER: role,
    AVIARY_NATS_PASSWORD: busPasswords.get(role),
    AVIARY_ADMIN_TOKEN: token,
    AVIARY_DATA_DIR: join(stateDir, 'data', app),
    AVIARY_LOG_LEVEL: config.logLevel,
    ...extra,
  };
}

const appScript = (app: string): string => join(root, 'dist', 'apps', app, 'main.js');
const deadline = Date.now() + config.readyTimeoutMs;

interface Row {
  readonly app: string;
  readonly url: string;
  readonly ok: boolean;
  readonly log: string;
}

async function ready(app: Managed, adminPort: number): Promise<Row> {
  const url = `http://127.0.0.1:${adminPort}`;
  // Under --restart a crashed app comes back: wait for it until the deadline.
  const ok = await waitReady(`${url}/readyz`, deadline, () => !stopping && (config.restart || app.current().child.exitCode === null));
  return { app: app.name, url, ok, log: app.logFile };
}

async function failIfNotReady(rows: readonly Row[]): Promise<void> {
  const failed = rows.filter((r) => !r.ok);
  if (failed.length === 0) return;
  for (const f of failed) {
    say(`${f.app} did not become ready; last log lines from ${f.log}:`);
    const tail = (await readFile(f.log, 'utf8').catch(() => '')).trim().split('\n').slice(-10);
    for (const line of tail) say(`  ${line}`);
  }
  await stopAll(1);
}

// In demo mode the ingress gateway starts once citadel can mint its join token (it needs a
// workload certificate to originate mTLS to the sidecars).
const demoScript = join(root, 'dist', 'tools', 'demo', 'service.js');
if (config.demo && !existsSync(demoScript)) {
  say(`--demo needs the sample service: ${demoScript} is missing (build it: node tools/build/build.mjs demo-service)`);
  await stopAll(1);
}
const deferred = config.demo ? new Set(['gateway']) : new Set<string>();
// Gateway API Gateways of Aviary's classes are served by the launcher's ingress (docs/gateway-api.md).
const pilotEnv = { AVIARY_XDS_TLS: 'true', AVIARY_GATEWAY_API_SELECTOR: ingress.selector };
// The demo's Canary steps last at least the collector's summary window (a step is judged only on
// windows that begin after it started): 10 s instead of 60 s unless set.
const collectorEnv = config.demo ? { AVIARY_SUMMARY_WINDOW_SECONDS: process.env['AVIARY_SUMMARY_WINDOW_SECONDS'] || '10' } : {};
const extraEnv = (app: string): NodeJS.ProcessEnv =>
  app === 'pilot'
    ? { ...pilotEnv, ...(extraPilots.length > 0 && { AVIARY_REPLICA_ID: 'pilot-1' }) }
    : app === 'telemetry-collector'
      ? { ...collectorEnv, ...(extraCollectors.length > 0 && { AVIARY_REPLICA_ID: 'collector-1' }) }
      : {};
const started = new Map<string, Managed>();
const readyz = (port: number): string => `http://127.0.0.1:${port}/readyz`;
for (const spec of appConfigs) {
  // pilot serves xDS over mTLS too (15012), with a serving certificate from citadel
  if (!deferred.has(spec.app)) started.set(spec.app, await launch(spec.app, appScript(spec.app), appEnv(spec.app, extraEnv(spec.app)), [], readyz(spec.options.adminPort.default)));
}
// Further pilot replicas: the same config store (NATS KV), their own ports and data directory.
const replicaRows: Array<{ app: string; url: string }> = [];
const replicaWaits: Promise<Row>[] = [];
for (const n of extraPilots) {
  const name = `pilot-${n}`;
  const admin = pilotPort(pilotConfig.options.adminPort.default, n);
  const env = appEnv(name, { ...pilotEnv, AVIARY_REPLICA_ID: name, AVIARY_ADMIN_PORT: String(admin), AVIARY_XDS_PORT: String(pilotPort(pilotConfig.options.xdsPort.default, n)), AVIARY_XDS_TLS_PORT: String(pilotPort(pilotConfig.options.xdsTlsPort.default, n)) }, 'pilot');
  const managed = await launch(name, appScript('pilot'), env, [], readyz(admin));
  replicaRows.push({ app: name, url: `http://127.0.0.1:${admin}` });
  replicaWaits.push(ready(managed, admin));
}
// Further citadel replicas: the first one's data dir (the CA state, written compare-and-set), their own ports.
for (const n of extraCitadels) {
  const name = `citadel-${n}`;
  const admin = pilotPort(citadelConfig.options.adminPort.default, n);
  const env = appEnv(name, { AVIARY_DATA_DIR: join(stateDir, 'data', 'citadel'), AVIARY_ADMIN_PORT: String(admin), AVIARY_CA_PORT: String(pilotPort(citadelConfig.options.caPort.default, n)), AVIARY_CA_TLS_PORT: String(pilotPort(citadelConfig.options.caTlsPort.default, n)) }, 'citadel');
  const managed = await launch(name, appScript('citadel'), env, [], readyz(admin));
  replicaRows.push({ app: name, url: `http://127.0.0.1:${admin}` });
  replicaWaits.push(ready(managed, admin));
}
// Further collector replicas: each with a durable consumer of its own (every record reaches every replica).
for (const n of extraCollectors) {
  const name = `telemetry-collector-${n}`;
  const admin = pilotPort(telemetryConfig.options.adminPort.default, n);
  const managed = await launch(name, appScript('telemetry-collector'), appEnv(name, { ...collectorEnv, AVIARY_REPLICA_ID: `collector-${n}`, AVIARY_ADMIN_PORT: String(admin) }, 'telemetry-collector'), [], readyz(admin));
  replicaRows.push({ app: name, url: `http://127.0.0.1:${admin}` });
  replicaWaits.push(ready(managed, admin));
}
const firstRows = [...(await Promise.all(appConfigs.filter((s) => started.has(s.app)).map((s) => ready(started.get(s.app) as Managed, s.options.adminPort.default)))), ...(await Promise.all(replicaWaits))];
await failIfNotReady(firstRows);

const demoRows: Row[] = [];
if (config.demo) {
  try {
    say(`demo config  ${await applyDemoConfig(token, root)}`);
    const fingerprint = await createDemoCredential(token, join(stateDir, demoTls.caFile), config.demoCertTtlSeconds);
    say(`demo TLS     credential istio-system/${demoTls.credential} for ${demoTls.host} (sha256 ${fingerprint.slice(0, 16)}…), CA in ${join(stateDir, demoTls.caFile)}`);
    const ingressToken = await mintJoinToken(token, ingress.namespace, ingress.serviceAccount);
    const helloToken = await mintJoinToken(token, DEMO_NAMESPACE, DEMO_SERVICE);
    const spec = appConfigs.find((s) => s.app === 'gateway');
    if (spec === undefined) throw new Error('no gateway app');
    started.set('gateway', await launch('gateway', appScript('gateway'), appEnv('gateway', ingressEnv(ingressToken, config.demoCertTtlSeconds, pilotTlsAddresses)), [], readyz(spec.options.adminPort.default)));
    const waits: Promise<Row>[] = [ready(started.get('gateway') as Managed, spec.options.adminPort.default)];
    await launch(`${externalService.name}-${externalService.version}`, demoScript, { ...process.env }, externalServiceArgs());
    for (const w of demoWorkloads) {
      const name = `${DEMO_SERVICE}-${w.version}`;
      await launch(name, demoScript, { ...process.env }, serviceArgs(w));
      const sidecar = await launch(`${name}-sidecar`, appScript('gateway'), appEnv(`${name}-sidecar`, sidecarEnv(w, helloToken, config.demoCertTtlSeconds)), [], readyz(w.sidecarAdminPort));
      waits.push(ready(sidecar, w.sidecarAdminPort));
    }
    const rows = await Promise.all(waits);
    await failIfNotReady(rows);
    demoRows.push(...rows.slice(1));
    const seen = await waitForTraffic('http://127.0.0.1:8080/', deadline, () => !stopping);
    if (seen.size < demoWorkloads.length) {
      say(`the demo did not answer through the ingress gateway in time (versions seen: ${[...seen].join(', ') || 'none'}); see ${join(stateDir, 'logs')}`);
      await stopAll(1);
    }
  } catch (err) {
    say(`the demo did not start: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll(1);
  }
}

const rows = [...appConfigs.map((s) => ({ app: s.app, url: `http://127.0.0.1:${s.options.adminPort.default}` })), ...replicaRows];
say('');
say('Aviary local mesh is ready');
say('');
say(`  ${'component'.padEnd(20)} ${'admin API'.padEnd(24)} docs`);
for (const r of [...rows, ...demoRows]) say(`  ${r.app.padEnd(20)} ${r.url.padEnd(24)} ${r.url}/docs`);
say('');
say(`  admin token: ${join(stateDir, 'admin-token')}  (send as "Authorization: Bearer <token>" on writes)`);
say(`  logs:        ${join(stateDir, 'logs')}/<component>.log`);
say('  Ctrl-C stops everything.');
if (config.demo) {
  say('');
  const rel = relative(process.cwd(), stateDir);
  for (const line of demoHelp(rel !== '' && !rel.startsWith('..') ? rel : stateDir)) say(line);
}
