import { existsSync, readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { parseManifests } from '@aviary/manifests';
import { analyzeManifests, validate as validateManifest } from '@aviary/mesh-validation';
import type { ConfigOf } from '@aviary/config';
import type { cliConfig } from './config';

// What each `aviary` command does, one function per command. The argument parsing (commander)
// lives in program.ts; these receive already-checked options and resolve with the exit code.

export type CliConfig = ConfigOf<typeof cliConfig>;

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export type OutputFormat = 'yaml' | 'json';

function readInput(file: string): string {
  if (file === '-') return readFileSync(0, 'utf8');
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  return readFileSync(file, 'utf8');
}

function token(config: CliConfig): string {
  if (config.adminToken !== '') return config.adminToken;
  const file = '.aviary/admin-token';
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
}

/** One admin API call; a non-2xx answer is thrown with the server's code and every error path. */
async function call(config: CliConfig, url: string, init: RequestInit = {}): Promise<unknown> {
  const headers = new Headers(init.headers);
  const t = token(config);
  if (t !== '') headers.set('authorization', `Bearer ${t}`);
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(config.timeoutMs) });
  const text = await res.text();
  const body = text === '' ? undefined : (JSON.parse(text) as unknown);
  if (!res.ok) {
    const e = body as { code?: string; message?: string; details?: { errors?: Array<{ document: number; line?: number; path: string; message: string }> } } | undefined;
    const lines = e?.details?.errors?.map((d) => `  document ${d.document}${d.line === undefined ? '' : ` (line ${d.line})`}: ${d.path === '' ? '' : `${d.path}: `}${d.message}`);
    throw new Error(`${res.status} ${e?.code ?? ''}: ${lines === undefined ? (e?.message ?? text) : `\n${lines.join('\n')}`}`);
  }
  return body;
}

function print(io: Io, value: unknown, format: OutputFormat | undefined): void {
  io.out(format === 'json' ? JSON.stringify(value, null, 2) : stringify(value).trimEnd());
}

export async function status(config: CliConfig, io: Io): Promise<number> {
  let ok = true;
  for (const [name, base] of [['pilot', config.pilotUrl], ['citadel', config.citadelUrl], ['injector-webhook', config.injectorUrl], ['telemetry-collector', config.telemetryUrl], ['gateway', config.gatewayUrl]] as const) {
    let state: string;
    try {
      const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(config.timeoutMs) });
      state = res.ok ? 'ready' : `not ready ${JSON.stringify(((await res.json()) as { checks?: unknown }).checks ?? {})}`;
      ok &&= res.ok;
    } catch {
      state = 'unreachable';
      ok = false;
    }
    io.out(`${name.padEnd(20)} ${base.padEnd(26)} ${state}`);
  }
  return ok ? 0 : 1;
}

export async function apply(config: CliConfig, io: Io, opts: { file: string; dryRun: boolean; namespace?: string }): Promise<number> {
  const query = new URLSearchParams();
  if (opts.dryRun) query.set('dryRun', 'true');
  if (opts.namespace !== undefined) query.set('namespace', opts.namespace);
  const report = (await call(config, `${config.pilotUrl}/api/v1/config?${query}`, { method: 'POST', body: readInput(opts.file), headers: { 'content-type': 'application/yaml' } })) as {
    dryRun: boolean;
    results: Array<{ kind: string; namespace: string; name: string; action: string; diff?: Array<{ path: string; op: string; from?: unknown; to?: unknown }> }>;
    warnings: Array<{ document: number; path: string; message: string }>;
  };
  for (const r of report.results) {
    io.out(`${r.kind.toLowerCase()}/${r.name} (${r.namespace}) ${r.action}${report.dryRun ? ' (dry run)' : ''}`);
    for (const d of r.diff ?? []) io.out(`  ${d.path}: ${JSON.stringify(d.from)} -> ${JSON.stringify(d.to)}`);
  }
  for (const w of report.warnings) io.err(`warning: document ${w.document}: ${w.path}: ${w.message}`);
  return 0;
}

export async function get(config: CliConfig, io: Io, kind: string, name: string | undefined, opts: { namespace?: string; output?: OutputFormat }): Promise<number> {
  const ns = opts.namespace;
  const path = name === undefined ? (ns === undefined ? kind : `${kind}/${ns}`) : `${kind}/${ns ?? 'default'}/${name}`;
  const body = await call(config, `${config.pilotUrl}/api/v1/config/${path}`);
  if (name === undefined && opts.output === undefined) {
    for (const item of (body as { items: Array<{ metadata: { name: string; namespace: string; resourceVersion: string } }> }).items) {
      io.out(`${item.metadata.namespace.padEnd(16)} ${item.metadata.name.padEnd(32)} ${item.metadata.resourceVersion}`);
    }
  } else print(io, body, opts.output);
  return 0;
}

export async function remove(config: CliConfig, io: Io, kind: string, name: string, opts: { namespace?: string }): Promise<number> {
  await call(config, `${config.pilotUrl}/api/v1/config/${kind}/${opts.namespace ?? 'default'}/${name}`, { method: 'DELETE' });
  io.out(`${kind}/${name} deleted`);
  return 0;
}

export function validate(io: Io, opts: { file: string }): number {
  const parsed = parseManifests(readInput(opts.file));
  if (!parsed.ok) {
    for (const p of parsed.problems) io.err(`document ${p.document}${p.line === undefined ? '' : ` (line ${p.line})`}: ${p.message}`);
    return 1;
  }
  let errors = 0;
  for (const doc of parsed.documents) {
    const result = validateManifest(doc.value);
    for (const e of result.errors) io.err(`document ${doc.index} (line ${doc.line}): ${e.path}: ${e.message}`);
    for (const w of result.warnings) io.err(`warning: document ${doc.index} (line ${doc.line}): ${w.path}: ${w.message}`);
    errors += result.errors.length;
  }
  io.out(errors === 0 ? `${parsed.documents.length} document(s) valid` : `${errors} error(s)`);
  return errors === 0 ? 0 : 1;
}

export async function analyze(config: CliConfig, io: Io, opts: { file?: string; complete?: boolean }): Promise<number> {
  let findings: Array<{ code: string; severity: string; message: string; resources?: string[] }>;
  if (opts.file !== undefined) {
    const parsed = parseManifests(readInput(opts.file));
    if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
    // Invalid documents give IST0106 and are left out of the cross-resource analysis.
    findings = analyzeManifests(parsed.documents.map((d) => d.value), { complete: opts.complete === true });
  } else findings = ((await call(config, `${config.pilotUrl}/api/v1/analyze`)) as { findings: typeof findings }).findings;
  for (const f of findings) io.out(`${f.code} [${f.severity}] (${f.resources?.[0] ?? ''}) ${f.message}`);
  if (findings.length === 0) io.out('no findings');
  return findings.some((f) => f.severity === 'Error') ? 1 : 0;
}

export async function proxies(config: CliConfig, io: Io, opts: { output?: OutputFormat }): Promise<number> {
  print(io, await call(config, `${config.pilotUrl}/api/v1/proxies`), opts.output);
  return 0;
}

export async function joinToken(config: CliConfig, io: Io, opts: { namespace: string; serviceAccount: string; ttl: number }): Promise<number> {
  const body = (await call(config, `${config.citadelUrl}/api/v1/tokens`, {
    method: 'POST',
    body: JSON.stringify({ namespace: opts.namespace, serviceAccount: opts.serviceAccount, ttl: opts.ttl }),
    headers: { 'content-type': 'application/json' },
  })) as { token: string };
  io.out(body.token);
  return 0;
}

export async function inject(config: CliConfig, io: Io, opts: { file: string; output?: OutputFormat }): Promise<number> {
  print(io, await call(config, `${config.injectorUrl}/api/v1/inject/preview`, { method: 'POST', body: readInput(opts.file), headers: { 'content-type': 'application/yaml' } }), opts.output);
  return 0;
}

interface CanaryView {
  namespace: string;
  name: string;
  status?: {
    phase: string;
    currentWeight: number;
    stepIndex: number;
    failedChecks: number;
    reason?: string;
    message?: string;
    lastTransitionTime: string;
    lastAnalysis?: { time: string; verdict: string; canary: { requests: number; successRate: number; p99Ms: number }; stable?: { requests: number; successRate: number; p99Ms: number }; reasons: string[] };
  };
}

function canaryLine(c: CanaryView): string {
  const s = c.status;
  const a = s?.lastAnalysis;
  const analysis = a === undefined ? '-' : `${a.verdict} (${a.canary.requests} req, ${a.canary.successRate}% ok, p99 ${a.canary.p99Ms}ms)`;
  return `${c.namespace.padEnd(16)} ${c.name.padEnd(24)} ${(s?.phase ?? 'Pending').padEnd(12)} ${`${s?.currentWeight ?? 0}%`.padEnd(7)} ${String((s?.stepIndex ?? -1) + 1).padEnd(5)} ${analysis}`;
}

const canaryHeader = `${'NAMESPACE'.padEnd(16)} ${'NAME'.padEnd(24)} ${'PHASE'.padEnd(12)} ${'WEIGHT'.padEnd(7)} ${'STEP'.padEnd(5)} LAST ANALYSIS`;

/** `aviary canary list`: every Canary (or one namespace's) with its phase, weight and last analysis. */
export async function canaryList(config: CliConfig, io: Io, opts: { namespace?: string; output?: OutputFormat }): Promise<number> {
  const body = (await call(config, `${config.pilotUrl}/api/v1/canaries${opts.namespace === undefined ? '' : `/${encodeURIComponent(opts.namespace)}`}`)) as { items: CanaryView[] };
  if (opts.output !== undefined) print(io, body, opts.output);
  else {
    io.out(canaryHeader);
    for (const c of body.items) io.out(canaryLine(c));
  }
  return 0;
}

/** `aviary canary get NAME`: one Canary; a summary, or the whole object with -o. */
export async function canaryGet(config: CliConfig, io: Io, name: string, opts: { namespace?: string; output?: OutputFormat }): Promise<number> {
  const c = (await call(config, `${config.pilotUrl}/api/v1/canaries/${encodeURIComponent(opts.namespace ?? 'default')}/${encodeURIComponent(name)}`)) as CanaryView;
  if (opts.output !== undefined) {
    print(io, c, opts.output);
    return 0;
  }
  io.out(canaryHeader);
  io.out(canaryLine(c));
  if (c.status?.message !== undefined) io.out(`${c.status.reason ?? ''}: ${c.status.message} (since ${c.status.lastTransitionTime})`);
  for (const r of c.status?.lastAnalysis?.reasons ?? []) io.out(`  gate: ${r}`);
  return 0;
}

/** `aviary canary pause|resume|promote|abort NAME`. */
export async function canaryCommand(config: CliConfig, io: Io, command: 'pause' | 'resume' | 'promote' | 'abort', name: string, opts: { namespace?: string }): Promise<number> {
  const c = (await call(config, `${config.pilotUrl}/api/v1/canaries/${encodeURIComponent(opts.namespace ?? 'default')}/${encodeURIComponent(name)}/${command}`, { method: 'POST' })) as CanaryView;
  io.out(`canary/${c.name} (${c.namespace}): ${c.status?.phase ?? 'Pending'} at ${c.status?.currentWeight ?? 0}%`);
  return 0;
}

/** Gateway credentials live in the gateway's namespace (Istio's rule for credentialName); the launcher's ingress is in istio-system. */
export const CREDENTIAL_NAMESPACE = 'istio-system';

interface CredentialView {
  namespace: string;
  name: string;
  revision: string;
  hasPrivateKey: boolean;
  certificates: Array<{ subject: string; dnsNames: string[]; notAfter: string; sha256: string }>;
  caCertificates: Array<{ subject: string; notAfter: string; sha256: string }>;
}

const credentialHeader = `${'NAMESPACE'.padEnd(16)} ${'NAME'.padEnd(24)} ${'DNS NAMES'.padEnd(32)} ${'NOT AFTER'.padEnd(24)} ${'CA'.padEnd(3)} SHA-256`;
function credentialLine(c: CredentialView): string {
  const leaf = c.certificates[0];
  return `${c.namespace.padEnd(16)} ${c.name.padEnd(24)} ${(leaf?.dnsNames.join(',') ?? '-').padEnd(32)} ${(leaf?.notAfter ?? c.caCertificates[0]?.notAfter ?? '-').padEnd(24)} ${String(c.caCertificates.length).padEnd(3)} ${(leaf ?? c.caCertificates[0])?.sha256.slice(0, 16) ?? '-'}…`;
}
const credentialUrl = (config: CliConfig, namespace: string | undefined, name?: string): string =>
  `${config.pilotUrl}/api/v1/credentials/${encodeURIComponent(namespace ?? CREDENTIAL_NAMESPACE)}${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

/** `aviary credential set NAME --cert F --key F [--ca F]`: stores a TLS credential in pilot's local secret store. */
export async function credentialSet(config: CliConfig, io: Io, name: string, opts: { namespace?: string; cert?: string; key?: string; ca?: string }): Promise<number> {
  const body = {
    ...(opts.cert !== undefined && { certChain: readInput(opts.cert) }),
    ...(opts.key !== undefined && { privateKey: readInput(opts.key) }),
    ...(opts.ca !== undefined && { caCert: readInput(opts.ca) }),
  };
  const c = (await call(config, credentialUrl(config, opts.namespace, name), { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })) as CredentialView;
  io.out(`credential/${c.name} (${c.namespace}) stored, revision ${c.revision}`);
  io.out(credentialHeader);
  io.out(credentialLine(c));
  return 0;
}

/** `aviary credential list|get`: metadata only (the API never returns a key). */
export async function credentialGet(config: CliConfig, io: Io, name: string | undefined, opts: { namespace?: string; output?: OutputFormat }): Promise<number> {
  const url = name === undefined && opts.namespace === undefined ? `${config.pilotUrl}/api/v1/credentials` : credentialUrl(config, opts.namespace, name);
  const body = (await call(config, url)) as CredentialView | { items: CredentialView[] };
  if (opts.output !== undefined) print(io, body, opts.output);
  else {
    io.out(credentialHeader);
    for (const c of 'items' in body ? body.items : [body]) io.out(credentialLine(c));
  }
  return 0;
}

export async function credentialDelete(config: CliConfig, io: Io, name: string, opts: { namespace?: string }): Promise<number> {
  await call(config, credentialUrl(config, opts.namespace, name), { method: 'DELETE' });
  io.out(`credential/${name} (${opts.namespace ?? CREDENTIAL_NAMESPACE}) deleted`);
  return 0;
}
