#!/usr/bin/env node
// Makes sure the pinned Python grpcio (gRPC C-core's xDS client, a proxyless client in pilot's
// mTLS tests) is installed in the venv ~/.cache/aviary-grpcio/<pinned> and prints that venv's
// python as the only line on stdout (progress goes to stderr). Plain Node, no dependencies.
// Idempotent; a lock directory serialises concurrent installs. Exit 0 with the path, 1 with a
// message. The path is also computed by apps/pilot/src/lib/xds-mtls-proxyless.spec.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { aptInstall, logger, run } from './apt.mjs';

const PINNED = '1.85.1';
const log = logger('ensure-grpcio');
const venv = join(homedir(), '.cache', 'aviary-grpcio', PINNED);
const python = join(venv, 'bin', 'python');

const installed = () => existsSync(python) && spawnSync(python, ['-c', `import grpc, sys; sys.exit(grpc.__version__ != '${PINNED}')`], { stdio: 'ignore', timeout: 60_000 }).status === 0;
const done = () => {
  process.stdout.write(`${python}\n`);
  process.exit(0);
};
const fail = (message) => {
  log(message);
  process.exit(1);
};

if (installed()) done();
const lock = `${venv}.lock`;
mkdirSync(join(venv, '..'), { recursive: true });
const deadline = Date.now() + 10 * 60_000;
for (;;) {
  try {
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), String(process.pid));
    break;
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
  if (Date.now() > deadline) fail(`timed out waiting for the install lock ${lock} (remove it if no install is running)`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
}
process.on('exit', () => rmSync(lock, { recursive: true, force: true }));
if (installed()) done();

const venvWorks = () => spawnSync('python3', ['-c', 'import ensurepip, venv'], { stdio: 'ignore' }).status === 0;
if (!venvWorks() && !(aptInstall(log, 'python3-venv') && venvWorks())) fail('python3 with the venv module is needed (apt-get install python3-venv)');
const pip = join(venv, 'bin', 'pip');
if (!existsSync(pip)) {
  rmSync(venv, { recursive: true, force: true });
  if (!run(log, 'python3', ['-m', 'venv', venv])) fail(`could not create the venv ${venv}`);
}
if (!run(log, pip, ['install', '--disable-pip-version-check', '--no-input', `grpcio==${PINNED}`])) fail(`pip could not install grpcio==${PINNED} into ${venv} (is PyPI reachable?)`);
if (!installed()) fail(`${venv} does not import grpcio ${PINNED}`);
log(`installed grpcio ${PINNED}`);
done();
