#!/usr/bin/env node
// Makes sure iptables-restore and iptables-save (the iptables Debian package) are installed, for
// the `aviary-iptables` integration test that applies the capture rules inside a network
// namespace: found on PATH or in /usr/sbin, else `apt-get install -y iptables` (when root with
// apt-get), retrying after `apt-get update`. Plain Node, no dependencies: it runs before anything
// else is built. Exit 0 when iptables-restore works, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

function log(msg) {
  process.stderr.write(`ensure-iptables: ${msg}\n`);
}

function find() {
  const dirs = ['/usr/sbin', '/sbin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  const works = (c) => existsSync(c) && spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0;
  const restore = dirs.map((d) => join(d, 'iptables-restore')).find(works);
  const save = dirs.map((d) => join(d, 'iptables-save')).find(works);
  return restore !== undefined && save !== undefined ? restore : undefined;
}

function run(cmd, args, env) {
  log(`$ ${cmd} ${args.join(' ')}`);
  return spawnSync(cmd, args, { stdio: 'inherit', env }).status === 0;
}

const found = find();
if (found !== undefined) {
  log(`found ${found}`);
  process.exit(0);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (isRoot && spawnSync('apt-get', ['--version']).status === 0) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('apt-get', ['install', '-y', '-q', 'iptables'], env);
  if (install() || (run('apt-get', ['update', '-q'], env) && install())) {
    const now = find();
    if (now !== undefined) {
      log(`installed ${now}`);
      process.exit(0);
    }
  }
}

log('could not install iptables: install the Debian package `iptables` (apt-get install iptables), then retry');
process.exit(1);
