import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { appConfigs, configFromProcess } from '@aviary/config';
import { NatsServer } from '@aviary/nats-runner';
import { localMeshConfig } from './config';
import { startApp, stopApp, waitReady, type AppProcess } from './processes';

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

const nats = await NatsServer.start({ host: config.natsHost, port: config.natsPort, storeDir: join(stateDir, 'nats') });
say(`nats-server   ${nats.url} (JetStream store ${join(stateDir, 'nats')})`);

const apps: AppProcess[] = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('stopping the local mesh…');
    const codes = await Promise.all([...apps].reverse().map(async (a) => [a.name, await stopApp(a, 12_000)] as const));
    for (const [name, c] of codes) say(`  ${name.padEnd(20)} exited ${c ?? 'by signal'}`);
    await nats.stop();
    say('  nats-server          stopped');
  }
  process.exit(code);
}
process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));

for (const spec of appConfigs) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AVIARY_NATS_URL: nats.url,
    AVIARY_ADMIN_TOKEN: token,
    AVIARY_DATA_DIR: join(stateDir, 'data', spec.app),
    AVIARY_LOG_LEVEL: config.logLevel,
  };
  const app = startApp(spec.app, join(root, 'dist', 'apps', spec.app, 'main.js'), env, join(stateDir, 'logs', `${spec.app}.log`));
  apps.push(app);
  void app.exited.then((code) => {
    if (!stopping) {
      say(`${spec.app} exited unexpectedly (code ${code}); see ${app.logFile}`);
      void stopAll(1);
    }
  });
}

const deadline = Date.now() + config.readyTimeoutMs;
const rows = await Promise.all(
  appConfigs.map(async (spec, i) => {
    const port = spec.options.adminPort.default;
    const url = `http://127.0.0.1:${port}`;
    const app = apps[i] as AppProcess;
    const ok = await waitReady(`${url}/readyz`, deadline, () => app.child.exitCode === null);
    return { app: spec.app, url, ok, log: app.logFile };
  }),
);
const failed = rows.filter((r) => !r.ok);
if (failed.length > 0) {
  for (const f of failed) {
    say(`${f.app} did not become ready; last log lines from ${f.log}:`);
    const tail = (await readFile(f.log, 'utf8').catch(() => '')).trim().split('\n').slice(-10);
    for (const line of tail) say(`  ${line}`);
  }
  await stopAll(1);
}

say('');
say('Aviary local mesh is ready');
say('');
say(`  ${'component'.padEnd(20)} ${'admin API'.padEnd(24)} docs`);
for (const r of rows) say(`  ${r.app.padEnd(20)} ${r.url.padEnd(24)} ${r.url}/docs`);
say('');
say(`  admin token: ${join(stateDir, 'admin-token')}  (send as "Authorization: Bearer <token>" on writes)`);
say(`  logs:        ${join(stateDir, 'logs')}/<component>.log`);
say('  Ctrl-C stops everything.');
