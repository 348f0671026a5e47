import { parseConfig } from '@aviary/config';
import { cliConfig } from './config';
import { exitCode, runCli } from './program';

// Wiring only: global options come from the command line, then AVIARY_* variables, both
// validated by cliConfig's schema; program.ts holds the command tree, commands.ts the commands.
const io = { out: (l: string) => void process.stdout.write(`${l}\n`), err: (l: string) => void process.stderr.write(`${l}\n`) };
try {
  process.exitCode = await runCli(process.argv.slice(2), io, (flags) => {
    const parsed = parseConfig(cliConfig, flags, process.env);
    if (parsed.kind !== 'config') throw new Error('unreachable: no --help among global options');
    return parsed.config;
  });
} catch (err) {
  io.err(`aviary: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = exitCode.failed;
}
