#!/usr/bin/env node
// Makes sure iptables-restore and iptables-save (the iptables Debian package) are installed, for
// the `aviary-iptables` integration test that applies the capture rules inside a network
// namespace: found on PATH or in /usr/sbin, else `apt-get install -y iptables` (when root with
// apt-get), retrying after `apt-get update`. Plain Node, no dependencies: it runs before anything
// else is built. Exit 0 when iptables-restore works, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { aptInstall, logger } from '../setup/apt.mjs';

const log = logger('ensure-iptables');

function find() {
  const dirs = ['/usr/sbin', '/sbin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  const works = (c) => existsSync(c) && spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0;
  const restore = dirs.map((d) => join(d, 'iptables-restore')).find(works);
  const save = dirs.map((d) => join(d, 'iptables-save')).find(works);
  return restore !== undefined && save !== undefined ? restore : undefined;
}

const found = find();
if (found !== undefined) {
  log(`found ${found}`);
  process.exit(0);
}

if (aptInstall(log, 'iptables')) {
  const now = find();
  if (now !== undefined) {
    log(`installed ${now}`);
    process.exit(0);
  }
}

log('could not install iptables: install the Debian package `iptables` (apt-get install iptables), then retry');
process.exit(1);
