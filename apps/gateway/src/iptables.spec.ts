// Integration test of the `aviary-iptables` command (dist/apps/gateway/iptables.js, built here):
// it installs the capture rules for real inside a throwaway network namespace (root, `ip netns`,
// the iptables package: `node tools/net/ensure-iptables.mjs`) and reads them back with
// iptables-save. Where that is not possible the namespace tests are skipped, saying why. Nothing
// is sent anywhere: rules only, no traffic, and the namespace is always deleted.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@aviary/config';
import { captureChains, captureSpec, iptablesConfig, natRules } from '@aviary/iptables';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const entry = `${root}dist/apps/gateway/iptables.js`;
const sbin = '/usr/sbin:/sbin:/usr/bin:/bin';
const env = { ...process.env, PATH: `${process.env['PATH'] ?? ''}:${sbin}` };

function run(cmd: string, args: readonly string[]): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 30_000 });
}

/** Why namespace tests cannot run here, or undefined when they can. */
function netnsUnavailable(): string | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (ip netns and iptables need root)';
  for (const tool of ['ip', 'iptables-restore', 'iptables-save']) {
    if (run('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (run: node tools/net/ensure-iptables.mjs)`;
  }
  const probe = `aviary-probe-${process.pid}`;
  const added = run('ip', ['netns', 'add', probe]);
  if (added.status !== 0) return `ip netns is not permitted here: ${added.stderr.trim() || added.error?.message}`;
  const nat = run('ip', ['netns', 'exec', probe, 'iptables-save', '-t', 'nat']);
  run('ip', ['netns', 'delete', probe]);
  if (nat.status !== 0) return `the nat table is not available in a namespace: ${nat.stderr.trim()}`;
  return undefined;
}

const skipReason = netnsUnavailable();
if (skipReason !== undefined) process.stderr.write(`aviary-iptables namespace tests skipped: ${skipReason}\n`);
const inNetns = it.skipIf(skipReason !== undefined);
const suffix = skipReason === undefined ? '' : ` [skipped: ${skipReason}]`;

const templateArgs = [
  '--inbound-capture-port', '15006', '--outbound-capture-port', '15001', '--proxy-uid', '1337', '--proxy-gid', '1337',
  '--include-inbound-ports', '*', '--exclude-inbound-ports', '15090,15020,15000', '--include-outbound-ip-ranges', '*',
  '--exclude-outbound-ip-ranges', '', '--exclude-outbound-ports', '',
];

function expectedRules(argv: readonly string[], family: 4 | 6): string[] {
  const result = parseConfig(iptablesConfig, argv, {});
  if (result.kind !== 'config') throw new Error('unexpected --help');
  return natRules(captureSpec(result.config), family);
}

/** The `-A` lines of iptables-save, grouped by chain in table order, compared per chain. */
function byChain(lines: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const l of lines.filter((x) => x.startsWith('-A '))) (out[l.split(' ')[1] as string] ??= []).push(l);
  return out;
}

let namespaces: string[] = [];
let counter = 0;
function netns(): string {
  const name = `aviary-ipt-${process.pid}-${counter++}`;
  const r = run('ip', ['netns', 'add', name]);
  expect(r.status, r.stderr).toBe(0);
  namespaces.push(name);
  return name;
}
afterEach(() => {
  for (const ns of namespaces) run('ip', ['netns', 'delete', ns]);
  namespaces = [];
});

function command(ns: string | undefined, args: readonly string[]): SpawnSyncReturns<string> {
  const node = [process.execPath, entry, ...args];
  return ns === undefined ? run(node[0] as string, node.slice(1)) : run('ip', ['netns', 'exec', ns, ...node]);
}

function saved(ns: string, tool = 'iptables-save'): string {
  const r = run('ip', ['netns', 'exec', ns, tool, '-t', 'nat']);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

beforeAll(() => {
  const r = run(process.execPath, [`${root}tools/build/build.mjs`, 'aviary-iptables']);
  expect(r.status, r.stderr).toBe(0);
  expect(existsSync(entry)).toBe(true);
});

describe('aviary-iptables command', () => {
  it('--dry-run prints the iptables-restore input and exits 0', () => {
    const r = command(undefined, [...templateArgs, '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('*nat\n:ISTIO_INBOUND - [0:0]\n');
    expect(r.stdout).toContain('-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN\n');
    expect(r.stdout).toContain('COMMIT\n');
    expect(r.stdout).not.toContain('ip6tables-restore');
  });

  it.each([
    [['--include-outbound-ip-ranges', '10.0.0.0/33'], 'aviary iptables: invalid configuration: --include-outbound-ip-ranges: "10.0.0.0/33" is not a CIDR'],
    [['--exclude-inbound-ports', '80,http'], 'aviary iptables: invalid configuration: --exclude-inbound-ports: "http" is not a port 1-65535'],
    [['--proxy-uid', 'istio'], 'aviary iptables: invalid configuration: --proxy-uid: must be an integer'],
  ])('%j exits 2 with one line naming the flag', (args, message) => {
    const r = command(undefined, [...templateArgs, ...args]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  inNetns(`installs the template's default rules in a network namespace${suffix}`, () => {
    const ns = netns();
    const r = command(ns, templateArgs);
    expect(r.status, r.stderr).toBe(0);
    const table = saved(ns);
    for (const chain of captureChains) expect(table).toContain(`:${chain} - [0:0]`);
    expect(byChain(table.split('\n'))).toEqual(byChain(expectedRules(templateArgs, 4)));
  });

  inNetns(`re-running replaces the rules instead of adding them twice${suffix}`, () => {
    const ns = netns();
    expect(command(ns, templateArgs).status).toBe(0);
    const args = [...templateArgs.slice(0, -2), '--exclude-outbound-ports', '5432'];
    const again = command(ns, args);
    expect(again.status, again.stderr).toBe(0);
    const rules = saved(ns).split('\n');
    expect(rules.filter((l) => l === '-A PREROUTING -p tcp -j ISTIO_INBOUND')).toHaveLength(1);
    expect(rules.filter((l) => l === '-A OUTPUT -p tcp -j ISTIO_OUTPUT')).toHaveLength(1);
    expect(byChain(rules)).toEqual(byChain(expectedRules(args, 4)));
  });

  inNetns(`include/exclude variants and IPv6 ranges (ip6tables)${suffix}`, () => {
    const ns = netns();
    const args = [
      '--include-inbound-ports', '80,8080,15000', '--include-outbound-ip-ranges', '10.0.0.0/8,fd00::/8',
      '--exclude-outbound-ip-ranges', '10.96.0.1,2001:db8:0:0:1:0:0:1', '--exclude-outbound-ports', '22,5432',
    ];
    const r = command(ns, args);
    expect(r.status, r.stderr).toBe(0);
    expect(byChain(saved(ns).split('\n'))).toEqual(byChain(expectedRules(args, 4)));
    expect(byChain(saved(ns, 'ip6tables-save').split('\n'))).toEqual(byChain(expectedRules(args, 6)));
  });

  inNetns(`--dry-run leaves the namespace's table alone${suffix}`, () => {
    const ns = netns();
    expect(command(ns, [...templateArgs, '--dry-run']).status).toBe(0);
    expect(saved(ns)).not.toContain('ISTIO_');
  });

  inNetns(`exits 1 with iptables-restore's error when it fails (not root)${suffix}`, () => {
    const ns = netns();
    const r = run('ip', ['netns', 'exec', ns, 'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, entry, ...templateArgs]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^aviary iptables: iptables-restore --noflush failed: .+/);
    expect(saved(ns)).not.toContain('ISTIO_');
  });
});
