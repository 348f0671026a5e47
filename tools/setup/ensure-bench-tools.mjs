#!/usr/bin/env node
// Makes sure the load tools of the data-plane benchmark (tools/bench/dataplane.ts) are installed
// and prints their paths as one JSON line on stdout (progress goes to stderr): `wrk` and `nginx`
// (Debian packages `wrk` and `nginx-light`, installed when root with apt-get) and `vegeta`
// (`go install github.com/tsenart/vegeta/v12@<pinned>` into ~/.cache/aviary/bin). Plain Node, no
// dependencies. Idempotent. Not part of `npm run setup`: only the benchmark needs these.
// Exit 0 with the paths, 1 with a message.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { aptInstall, logger, run } from './apt.mjs';

const VEGETA = 'v12.13.0';
const log = logger('ensure-bench-tools');
const cacheBin = join(homedir(), '.cache', 'aviary', 'bin');

function fail(message) {
  log(message);
  process.exit(1);
}

/** The path of `name` on PATH (or in the usual sbin directories nginx lives in), else undefined. */
function which(name) {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin']) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function fromApt(bin, pkg) {
  const found = which(bin);
  if (found !== undefined) return found;
  if (!aptInstall(log, pkg)) fail(`${bin} is needed: install the Debian package ${pkg} (apt-get install ${pkg}), then retry`);
  return which(bin) ?? fail(`${pkg} was installed but ${bin} is not on PATH`);
}

function vegetaVersion(bin) {
  const r = spawnSync(bin, ['-version'], { encoding: 'utf8' });
  return r.status === 0 ? /Version:\s*(\S+)/.exec(r.stdout)?.[1] : undefined;
}

function vegeta() {
  const cached = join(cacheBin, 'vegeta');
  if (vegetaVersion(cached) === VEGETA) return cached;
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) fail('vegeta is installed with `go install`: Go is needed on PATH');
  mkdirSync(cacheBin, { recursive: true });
  // -ldflags sets the version vegeta reports (a plain `go install` leaves it empty).
  const ok = run(log, 'go', ['install', `-ldflags=-X main.Version=${VEGETA}`, `github.com/tsenart/vegeta/v12@${VEGETA}`], { ...process.env, GOBIN: cacheBin });
  if (!ok || vegetaVersion(cached) !== VEGETA) fail(`go install github.com/tsenart/vegeta/v12@${VEGETA} failed (is the Go module proxy reachable?)`);
  log(`installed vegeta ${VEGETA} into ${cacheBin}`);
  return cached;
}

const tools = { wrk: fromApt('wrk', 'wrk'), nginx: fromApt('nginx', 'nginx-light'), vegeta: vegeta() };
process.stdout.write(`${JSON.stringify(tools)}\n`);
