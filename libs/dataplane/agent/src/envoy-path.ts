import { homedir } from 'node:os';
import { join } from 'node:path';

/** The pinned Envoy release the agent runs (tools/setup/ensure-envoy.mjs installs it). */
export const ENVOY_VERSION = '1.40.0';

/** `~/.cache/aviary-envoy/<version>/bin/envoy`, unless `override` (AVIARY_ENVOY_PATH) is set. */
export function envoyPath(override = ''): string {
  return override !== '' ? override : join(homedir(), '.cache', 'aviary-envoy', ENVOY_VERSION, 'bin', 'envoy');
}
