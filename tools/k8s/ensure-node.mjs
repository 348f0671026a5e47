#!/usr/bin/env node
// Makes sure the node tier's Debian packages are installed: containerd (1.6), runc and the CNI
// plugins (bridge, host-local, portmap in /usr/lib/cni). Root with apt-get installs them; else
// it names what is missing. Plain Node, no dependencies. The binaries built from Go modules
// (kubelet, kube-proxy, CoreDNS, ...) come from tools/k8s/ensure-peers.sh.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { aptInstall, logger } from '../setup/apt.mjs';

const log = logger('ensure-node');
const needs = [
  { pkg: 'containerd', ok: () => spawnSync('containerd', ['--version']).status === 0 && spawnSync('ctr', ['--version']).status === 0 },
  { pkg: 'runc', ok: () => spawnSync('runc', ['--version']).status === 0 },
  { pkg: 'containernetworking-plugins', ok: () => ['bridge', 'host-local', 'portmap', 'loopback'].every((p) => existsSync(`/usr/lib/cni/${p}`)) },
  { pkg: 'iptables', ok: () => spawnSync('iptables', ['--version']).status === 0 },
];
let failed = false;
for (const n of needs) {
  if (n.ok()) continue;
  if (!aptInstall(log, n.pkg) || !n.ok()) {
    log(`missing ${n.pkg}: install the Debian package ${n.pkg} (as root) and retry`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
