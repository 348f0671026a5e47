import { isAviaryError } from '@aviary/errors';
import { parseConfig } from './load';
import type { AppConfigSpec, ConfigOf } from './spec';

/**
 * The one place that reads `process.argv` and `process.env`. Prints `--help` and exits 0, or
 * prints a one-line error naming the bad option and exits 2.
 */
export function configFromProcess<S extends AppConfigSpec>(spec: S): ConfigOf<S> {
  try {
    const result = parseConfig(spec, process.argv.slice(2), process.env);
    if (result.kind === 'help') {
      process.stdout.write(result.text);
      process.exit(0);
    }
    return result.config;
  } catch (err) {
    if (isAviaryError(err)) {
      process.stderr.write(`aviary ${spec.app}: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
