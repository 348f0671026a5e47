// `aviary-iptables`: the init container's command (see the injection template). Builds the
// capture rules with @aviary/iptables and installs them with `iptables-restore --noflush`
// (and `ip6tables-restore` when an IPv6 range is given), or prints them with --dry-run.
// Exit codes: 0 done, 2 bad flags (one line naming the flag), 1 the iptables tools failed.
import { spawnSync } from 'node:child_process';
import { isAviaryError } from '@aviary/errors';
import { configFromProcess } from '@aviary/config';
import { captureRules, captureSpec, iptablesConfig, type CaptureSpec } from '@aviary/iptables';

// The same prefix as configFromProcess's errors for this spec.
const name = `aviary ${iptablesConfig.app}`;
const config = configFromProcess(iptablesConfig);

let spec: CaptureSpec;
try {
  spec = captureSpec(config);
} catch (err) {
  if (!isAviaryError(err)) throw err;
  process.stderr.write(`${name}: invalid configuration: ${err.message}\n`);
  process.exit(2);
}

function tool(cmd: string, args: string[], input?: string): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error !== undefined) return { ok: false, stdout: '', stderr: `${cmd}: ${r.error.message} (is the iptables package installed?)` };
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr.trim() || `${cmd} exited with ${r.status ?? r.signal}` };
}

if (config.dryRun) {
  const rules = captureRules(spec);
  process.stdout.write(`# iptables-restore --noflush\n${rules.ipv4}`);
  if (rules.ipv6 !== undefined) process.stdout.write(`# ip6tables-restore --noflush\n${rules.ipv6}`);
  process.exit(0);
}

// What is already there, so that a re-run does not add the PREROUTING/OUTPUT jumps twice.
const saved4 = tool('iptables-save', ['-t', 'nat']);
const saved6 = tool('ip6tables-save', ['-t', 'nat']);
const rules = captureRules(spec, { ipv4: saved4.ok ? saved4.stdout : '', ipv6: saved6.ok ? saved6.stdout : '' });
for (const [cmd, input] of [['iptables-restore', rules.ipv4], ['ip6tables-restore', rules.ipv6]] as const) {
  if (input === undefined) continue;
  const r = tool(cmd, ['--noflush'], input);
  if (!r.ok) {
    process.stderr.write(`${name}: ${cmd} --noflush failed: ${r.stderr}\n`);
    process.exit(1);
  }
  process.stdout.write(`# ${cmd} --noflush: applied\n${input}`);
}
