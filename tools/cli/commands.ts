import { existsSync, readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { parseManifests } from '@aviary/manifests';
import { analyze, validate } from '@aviary/mesh-validation';
import type { ConfigOf } from '@aviary/config';
import type { cliConfig } from './config';

type CliConfig = ConfigOf<typeof cliConfig>;

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export const usage = `Usage: aviary <command> [arguments] [options]

Commands:
  status                              readiness of every component
  apply -f FILE [--dry-run] [-n NS]   apply Istio YAML/JSON to pilot (all or nothing)
  get KIND [NAME] [-n NS] [-o yaml]   read stored config (KIND: VirtualService, vs, virtualservices, …)
  delete KIND NAME [-n NS]            delete one resource
  validate -f FILE                    validate manifests offline, with the same rules as pilot
  analyze [-f FILE]                   cross-resource findings (offline for a file, else pilot's)
  proxies                             proxies connected to pilot and their ACK/NACK state
  token --namespace NS --service-account SA [--ttl SECONDS]   mint a join token (citadel)
  inject -f POD.yaml                  preview sidecar injection of a pod
FILE may be - for standard input. Options: --pilot-url, --citadel-url, --injector-url,
--telemetry-url, --gateway-url, --admin-token, --timeout-ms (or AVIARY_* variables).`;

interface Args {
  readonly positional: string[];
  readonly flags: Map<string, string | true>;
}

export function splitArgs(argv: readonly string[], valueFlags: ReadonlySet<string>): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.startsWith('-') && a !== '-') {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a : a.slice(0, eq);
      if (eq !== -1) flags.set(name, a.slice(eq + 1));
      else if (valueFlags.has(name)) {
        const v = argv[i + 1];
        if (v === undefined) throw new Error(`${name} needs a value`);
        flags.set(name, v);
        i++;
      } else flags.set(name, true);
    } else positional.push(a);
  }
  return { positional, flags };
}

function readInput(file: string | true | undefined): string {
  if (typeof file !== 'string') throw new Error('-f FILE is required');
  if (file === '-') return readFileSync(0, 'utf8');
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  return readFileSync(file, 'utf8');
}

function token(config: CliConfig): string {
  if (config.adminToken !== '') return config.adminToken;
  const file = '.aviary/admin-token';
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
}

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

function print(io: Io, value: unknown, format: string | true | undefined): void {
  io.out(format === 'json' ? JSON.stringify(value, null, 2) : stringify(value).trimEnd());
}

/** Runs one CLI command; resolves with the process exit code. */
export async function runCommand(argv: readonly string[], config: CliConfig, io: Io): Promise<number> {
  const { positional, flags } = splitArgs(argv, new Set(['-f', '--file', '-n', '--namespace', '-o', '--output', '--service-account', '--ttl']));
  const [command, ...rest] = positional;
  const ns = (flags.get('-n') ?? flags.get('--namespace')) as string | undefined;
  const file = flags.get('-f') ?? flags.get('--file');
  const output = flags.get('-o') ?? flags.get('--output');
  switch (command) {
    case undefined:
    case 'help':
      io.out(usage);
      return 0;
    case 'status': {
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
    case 'apply': {
      const query = new URLSearchParams();
      if (flags.has('--dry-run')) query.set('dryRun', 'true');
      if (ns !== undefined) query.set('namespace', ns);
      const report = (await call(config, `${config.pilotUrl}/api/v1/config?${query}`, { method: 'POST', body: readInput(file), headers: { 'content-type': 'application/yaml' } })) as {
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
    case 'get': {
      const [kind, name] = rest;
      if (kind === undefined) throw new Error('get needs a KIND');
      const path = name === undefined ? (ns === undefined ? kind : `${kind}/${ns}`) : `${kind}/${ns ?? 'default'}/${name}`;
      const body = await call(config, `${config.pilotUrl}/api/v1/config/${path}`);
      if (name === undefined && output === undefined) {
        for (const item of (body as { items: Array<{ metadata: { name: string; namespace: string; resourceVersion: string } }> }).items) {
          io.out(`${item.metadata.namespace.padEnd(16)} ${item.metadata.name.padEnd(32)} ${item.metadata.resourceVersion}`);
        }
      } else print(io, body, output);
      return 0;
    }
    case 'delete': {
      const [kind, name] = rest;
      if (kind === undefined || name === undefined) throw new Error('delete needs KIND and NAME');
      await call(config, `${config.pilotUrl}/api/v1/config/${kind}/${ns ?? 'default'}/${name}`, { method: 'DELETE' });
      io.out(`${kind}/${name} deleted`);
      return 0;
    }
    case 'validate': {
      const parsed = parseManifests(readInput(file));
      if (!parsed.ok) {
        for (const p of parsed.problems) io.err(`document ${p.document}${p.line === undefined ? '' : ` (line ${p.line})`}: ${p.message}`);
        return 1;
      }
      let errors = 0;
      for (const doc of parsed.documents) {
        const result = validate(doc.value);
        for (const e of result.errors) io.err(`document ${doc.index} (line ${doc.line}): ${e.path}: ${e.message}`);
        for (const w of result.warnings) io.err(`warning: document ${doc.index} (line ${doc.line}): ${w.path}: ${w.message}`);
        errors += result.errors.length;
      }
      io.out(errors === 0 ? `${parsed.documents.length} document(s) valid` : `${errors} error(s)`);
      return errors === 0 ? 0 : 1;
    }
    case 'analyze': {
      let findings: Array<{ code: string; severity: string; message: string }>;
      if (file !== undefined) {
        const parsed = parseManifests(readInput(file));
        if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
        findings = analyze(parsed.documents.map((d) => d.value) as never) as typeof findings;
      } else findings = ((await call(config, `${config.pilotUrl}/api/v1/analyze`)) as { findings: typeof findings }).findings;
      for (const f of findings) io.out(`${f.code} [${f.severity}] ${f.message}`);
      if (findings.length === 0) io.out('no findings');
      return findings.some((f) => f.severity === 'Error') ? 1 : 0;
    }
    case 'proxies':
      print(io, await call(config, `${config.pilotUrl}/api/v1/proxies`), output);
      return 0;
    case 'token': {
      const sa = flags.get('--service-account');
      if (ns === undefined || typeof sa !== 'string') throw new Error('token needs --namespace and --service-account');
      const ttl = Number(flags.get('--ttl') ?? 3600);
      const body = (await call(config, `${config.citadelUrl}/api/v1/tokens`, { method: 'POST', body: JSON.stringify({ namespace: ns, serviceAccount: sa, ttl }), headers: { 'content-type': 'application/json' } })) as { token: string };
      io.out(body.token);
      return 0;
    }
    case 'inject': {
      const body = await call(config, `${config.injectorUrl}/api/v1/inject/preview`, { method: 'POST', body: readInput(file), headers: { 'content-type': 'application/yaml' } });
      print(io, body, output);
      return 0;
    }
    default:
      io.err(`unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}
