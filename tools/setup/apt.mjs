// Shared by the tools/*/ensure-*.mjs installers: plain Node, no dependencies (they run before
// anything is installed or built).
import { spawnSync } from 'node:child_process';

/** A logger that prefixes its lines with the installer's name, on stderr. */
export function logger(name) {
  return (msg) => process.stderr.write(`${name}: ${msg}\n`);
}

/**
 * Runs a command, its output (stdout too) on our stderr so that an installer's stdout stays free
 * for its result; true when it exits 0.
 */
export function run(log, cmd, args, env = process.env) {
  log(`$ ${cmd} ${args.join(' ')}`);
  return spawnSync(cmd, args, { stdio: ['inherit', 2, 2], env }).status === 0;
}

/**
 * `apt-get install -y <pkg>` when running as root with apt-get, retried once after
 * `apt-get update` (a fresh machine may have no package lists). True when it installed.
 */
export function aptInstall(log, pkg) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || spawnSync('apt-get', ['--version']).status !== 0) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run(log, 'apt-get', ['install', '-y', '-q', pkg], env);
  return install() || (run(log, 'apt-get', ['update', '-q'], env) && install());
}
