import { isAviaryError } from '@aviary/errors';
import { parseConfig } from '@aviary/config';
import { cliConfig } from './config';
import { runCommand, usage } from './commands';

// Global options (--pilot-url, AVIARY_* …) go to the config schema; the rest is the command.
const argv = process.argv.slice(2);
const optionFlags = new Set(['--pilot-url', '--citadel-url', '--injector-url', '--telemetry-url', '--gateway-url', '--admin-token', '--timeout-ms']);
const globalArgs: string[] = [];
const commandArgs: string[] = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i] as string;
  const name = a.split('=')[0] as string;
  if (optionFlags.has(name)) {
    globalArgs.push(a);
    if (!a.includes('=') && argv[i + 1] !== undefined) globalArgs.push(argv[++i] as string);
  } else commandArgs.push(a);
}
if (commandArgs.includes('--help') || commandArgs.includes('-h')) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
try {
  const parsed = parseConfig(cliConfig, globalArgs, process.env);
  if (parsed.kind === 'help') throw new Error('unreachable');
  const code = await runCommand(commandArgs, parsed.config, { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) });
  process.exitCode = code;
} catch (err) {
  process.stderr.write(`aviary: ${isAviaryError(err) || err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
