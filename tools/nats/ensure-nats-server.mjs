#!/usr/bin/env node
// Makes sure a nats-server with JetStream (>= 2.9) is installed: one on PATH, one cached in
// ~/.cache/aviary/bin, the Debian package (when root with apt-get), or `go install` of a pinned
// version. Plain Node, no dependencies: it runs before anything else is built.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { aptInstall, logger, run } from '../setup/apt.mjs';

const PINNED = 'v2.10.29';
const cacheBin = join(homedir(), '.cache', 'aviary', 'bin');
const cached = join(cacheBin, 'nats-server');

function version(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function usable(bin) {
  const v = version(bin);
  return v !== undefined && (v[0] > 2 || (v[0] === 2 && v[1] >= 9));
}

const log = logger('ensure-nats-server');

if (usable('nats-server') || usable(cached)) {
  process.exit(0);
}

if (aptInstall(log, 'nats-server')) {
  // The package enables a system service on the default port; tests and the launcher use their own.
  spawnSync('systemctl', ['disable', '--now', 'nats-server'], { stdio: 'ignore' });
  if (usable('nats-server')) process.exit(0);
}

if (spawnSync('go', ['version']).status === 0) {
  mkdirSync(cacheBin, { recursive: true });
  const env = { ...process.env, GOBIN: cacheBin, CGO_ENABLED: '0' };
  if (run(log, 'go', ['install', `github.com/nats-io/nats-server/v2@${PINNED}`], env) && usable(cached)) process.exit(0);
}

log('could not install nats-server: install the Debian package `nats-server` or Go, then retry');
process.exit(1);
