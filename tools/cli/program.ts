import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isAviaryError } from '@aviary/errors';
import { aviaryVersion, envName, flagName, parseConfig } from '@aviary/config';
import { MAX_JOIN_TOKEN_TTL_SECONDS } from '@aviary/ca';
import { cliConfig } from './config';
import * as run from './commands';
import type { CliConfig, Io, OutputFormat } from './commands';
import { bashCompletion } from './completion';

/** The CLI's exit codes; `--help` and the README list them. */
export const exitCode = { ok: 0, failed: 1, usage: 2 } as const;

const exitCodesHelp = `
Exit codes:
  0  success
  1  findings or validation errors, a server's refusal, or a server that cannot be reached
  2  usage error: unknown command or option, missing or invalid argument or option value`;

/**
 * Builds the configuration from the global options given on the command line (as
 * `--pilot-url value` pairs); throws the `CONFIG_INVALID` error of `parseConfig` for a bad value.
 */
export type ConfigLoader = (flags: readonly string[]) => CliConfig;

const fileHelp = 'manifest file, - for standard input';
const required = (help: string) => `${help} (required)`;
const outputOption = () => new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']);
const namespaceOption = (what: string) => new Option('-n, --namespace <namespace>', what);

function ttlSeconds(value: string): number {
  const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= MAX_JOIN_TOKEN_TTL_SECONDS)) throw new InvalidArgumentError(`must be a whole number of seconds between 1 and ${MAX_JOIN_TOKEN_TTL_SECONDS}.`);
  return n;
}

/**
 * The `aviary` command tree. Each run builds a fresh one (commander keeps parse state on it);
 * `report` receives the exit code of the command that ran.
 */
export function buildProgram(io: Io, loadConfig: ConfigLoader, report: (code: number) => void): Command {
  const program = new Command('aviary')
    .description(cliConfig.summary)
    .version(aviaryVersion, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')) })
    .configureHelp({ showGlobalOptions: true })
    .helpOption('-h, --help', 'show help')
    .addHelpText('afterAll', exitCodesHelp);
  // Global options: validated by cliConfig's schema (as AVIARY_* variables are), not by commander.
  for (const [key, opt] of Object.entries(cliConfig.options)) {
    const shown = opt.secret ? '' : `, default ${JSON.stringify(opt.default)}`;
    const placeholder = (/[A-Z][a-z]*$/.exec(key)?.[0] ?? 'value').toLowerCase(); // pilotUrl → <url>, timeoutMs → <ms>
    program.addOption(new Option(`${flagName(key)} <${placeholder}>`, `${opt.description} (env ${envName(key, opt)}${shown})`));
  }

  const config = (): CliConfig => {
    const flags = Object.keys(cliConfig.options).flatMap((key) => (program.getOptionValueSource(key) === 'cli' ? [flagName(key), String(program.getOptionValue(key))] : []));
    try {
      return loadConfig(flags);
    } catch (err) {
      if (isAviaryError(err) && err.code === 'CONFIG_INVALID') program.error(`error: ${err.message}`, { exitCode: exitCode.usage, code: 'aviary.invalidConfig' });
      throw err;
    }
  };
  const done = (code: number) => report(code);

  program.command('status').description('readiness of every component').action(async () => done(await run.status(config(), io)));
  program
    .command('apply')
    .description('apply Istio YAML/JSON to pilot (all or nothing)')
    .requiredOption('-f, --file <file>', required(fileHelp))
    .option('--dry-run', 'show what would change, per field, without storing anything')
    .addOption(namespaceOption('namespace for documents that name none'))
    .action(async (o: { file: string; dryRun?: boolean; namespace?: string }) => done(await run.apply(config(), io, { file: o.file, dryRun: o.dryRun === true, namespace: o.namespace })));
  program
    .command('get')
    .description('read stored config; without NAME, list (in every namespace unless -n)')
    .argument('<kind>', 'VirtualService, vs, virtualservices, …')
    .argument('[name]', 'one resource (namespace "default" unless -n)')
    .addOption(namespaceOption('namespace'))
    .addOption(outputOption())
    .action(async (kind: string, name: string | undefined, o: { namespace?: string; output?: OutputFormat }) => done(await run.get(config(), io, kind, name, o)));
  program
    .command('delete')
    .description('delete one resource')
    .argument('<kind>', 'VirtualService, vs, virtualservices, …')
    .argument('<name>', 'resource name')
    .addOption(namespaceOption('namespace (default: "default")'))
    .action(async (kind: string, name: string, o: { namespace?: string }) => done(await run.remove(config(), io, kind, name, o)));
  program
    .command('validate')
    .description('validate manifests offline, with the same rules and field paths as pilot')
    .requiredOption('-f, --file <file>', required(fileHelp))
    .action((o: { file: string }) => {
      config(); // offline, but a bad global option or AVIARY_* value is still refused
      done(run.validate(io, o));
    });
  program
    .command('analyze')
    .description("cross-resource findings (offline for a file, else pilot's)")
    .option('-f, --file <file>', fileHelp)
    .option('--complete', 'the file holds every Service, Pod and Namespace: also report hosts, selectors and namespaces nothing in it provides')
    .action(async (o: { file?: string; complete?: boolean }) => done(await run.analyze(config(), io, o)));
  program
    .command('proxies')
    .description('proxies connected to pilot and their ACK/NACK state')
    .addOption(outputOption())
    .action(async (o: { output?: OutputFormat }) => done(await run.proxies(config(), io, o)));
  program
    .command('token')
    .description('mint a join token for a workload identity (citadel)')
    .addOption(namespaceOption(required('namespace of the identity')).makeOptionMandatory())
    .requiredOption('--service-account <name>', required('service account of the identity'))
    .addOption(new Option('--ttl <seconds>', 'lifetime of the token').argParser(ttlSeconds).default(3600))
    .action(async (o: { namespace: string; serviceAccount: string; ttl: number }) => done(await run.joinToken(config(), io, o)));
  program
    .command('inject')
    .description('preview sidecar injection of a Pod or Deployment')
    .requiredOption('-f, --file <file>', required('Pod or Deployment manifest, - for standard input'))
    .addOption(outputOption())
    .action(async (o: { file: string; output?: OutputFormat }) => done(await run.inject(config(), io, o)));
  const canary = program.command('canary').description('progressive delivery: list Canaries, and pause, resume, promote or abort one');
  canary
    .command('list')
    .description('every Canary (in every namespace unless -n): phase, canary weight, step, last analysis')
    .addOption(namespaceOption('namespace'))
    .addOption(outputOption())
    .action(async (o: { namespace?: string; output?: OutputFormat }) => done(await run.canaryList(config(), io, o)));
  canary
    .command('get')
    .description('one Canary: phase, weight, last analysis and its failed gates')
    .argument('<name>', 'Canary name (namespace "default" unless -n)')
    .addOption(namespaceOption('namespace'))
    .addOption(outputOption())
    .action(async (name: string, o: { namespace?: string; output?: OutputFormat }) => done(await run.canaryGet(config(), io, name, o)));
  for (const [cmd, what] of [
    ['pause', 'freeze the weights; no decision until resumed'],
    ['resume', 'continue a paused Canary at its current step'],
    ['promote', 'send 100 % to the canary now'],
    ['abort', 'send 0 % to the canary now (RolledBack)'],
  ] as const) {
    canary
      .command(cmd)
      .description(what)
      .argument('<name>', 'Canary name (namespace "default" unless -n)')
      .addOption(namespaceOption('namespace'))
      .action(async (name: string, o: { namespace?: string }) => done(await run.canaryCommand(config(), io, cmd, name, o)));
  }
  const credential = program.command('credential').description("TLS credentials for Gateway credentialName in pilot's local secret store (local mode)");
  const credentialNs = () => namespaceOption(`namespace of the gateway that names it (default: "${run.CREDENTIAL_NAMESPACE}")`);
  credential
    .command('set')
    .description('create or replace a credential: certificate chain and key, and/or CA certificates (MUTUAL)')
    .argument('<name>', 'the name a Gateway server gives as tls.credentialName')
    .addOption(credentialNs())
    .option('--cert <file>', 'PEM certificate chain, leaf first')
    .option('--key <file>', 'PEM private key of the leaf')
    .option('--ca <file>', 'PEM CA certificates client certificates must chain to')
    .action(async (name: string, o: { namespace?: string; cert?: string; key?: string; ca?: string }) => done(await run.credentialSet(config(), io, name, o)));
  credential
    .command('list')
    .description('every credential (in every namespace unless -n): names, validity, fingerprints; never a key')
    .addOption(namespaceOption('namespace'))
    .addOption(outputOption())
    .action(async (o: { namespace?: string; output?: OutputFormat }) => done(await run.credentialGet(config(), io, undefined, o)));
  credential
    .command('get')
    .description("one credential's metadata")
    .argument('<name>', 'credential name')
    .addOption(credentialNs())
    .addOption(outputOption())
    .action(async (name: string, o: { namespace?: string; output?: OutputFormat }) => done(await run.credentialGet(config(), io, name, o)));
  credential
    .command('delete')
    .description('delete a credential; servers naming it stop serving TLS')
    .argument('<name>', 'credential name')
    .addOption(credentialNs())
    .action(async (name: string, o: { namespace?: string }) => done(await run.credentialDelete(config(), io, name, o)));
  program
    .command('completion')
    .description('print a bash completion script (load it with: source <(aviary completion))')
    .action(() => {
      io.out(bashCompletion(program));
      done(exitCode.ok);
    });

  for (const sub of program.commands) sub.showHelpAfterError(`(see: aviary ${sub.name()} --help)`);
  // Bare `aviary` prints the help; an unknown command is a usage error (with the help).
  program
    .usage('[options] [command]')
    .helpCommand('help [command]', 'show help for a command')
    .argument('[command]')
    .allowExcessArguments()
    .showHelpAfterError('(see: aviary --help)')
    .action((command: string | undefined) => {
      if (command !== undefined) {
        io.err(`error: unknown command "${command}"\n`);
        program.outputHelp({ error: true });
        throw new CommanderError(exitCode.usage, 'commander.unknownCommand', `unknown command "${command}"`);
      }
      program.outputHelp();
      done(exitCode.ok);
    });
  return program;
}

/** Runs `aviary` with these arguments; resolves with the exit code. Command failures reject. */
export async function runCli(argv: readonly string[], io: Io, loadConfig: ConfigLoader): Promise<number> {
  let code: number = exitCode.ok;
  const program = buildProgram(io, loadConfig, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    const informational = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version';
    return informational && err.exitCode === 0 ? exitCode.ok : exitCode.usage;
  }
  return code;
}

/** `runCli` with a configuration already loaded; global options on `argv` override it. */
export function runCommand(argv: readonly string[], config: CliConfig, io: Io): Promise<number> {
  return runCli(argv, io, (flags) => {
    if (flags.length === 0) return config;
    const parsed = parseConfig(cliConfig, flags, {});
    if (parsed.kind !== 'config') throw new Error('unreachable: no --help among global options');
    const given = Object.keys(cliConfig.options).filter((key) => flags.includes(flagName(key)));
    return Object.freeze({ ...config, ...Object.fromEntries(given.map((key) => [key, parsed.config[key as keyof CliConfig]])) }) as CliConfig;
  });
}
