import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findEnvoy } from '@aviary/config';
import { encodeMessageOf } from '@aviary/xds-protos';

/** Tests only: find (or, in CI, install) upstream Envoy and run `envoy --mode validate`. */

const ENSURE_ENVOY = fileURLToPath(new URL('../../../tools/setup/ensure-envoy.mjs', import.meta.url));

export interface TestEnvoyOptions {
  /** The value of AVIARY_ENVOY_PATH (the caller reads the environment). */
  readonly override?: string | undefined;
  /** True in CI (the CI variable is set): a missing Envoy is installed, never skipped. */
  readonly ci: boolean;
}

export type TestEnvoy = { readonly path: string; readonly skip?: undefined } | { readonly path?: undefined; readonly skip: string };

/**
 * The Envoy binary for a spec. Installed: its path. Missing outside CI: a skip reason. Missing in
 * CI: runs tools/setup/ensure-envoy.mjs and returns what it prints, or throws with its output.
 */
export function testEnvoy(o: TestEnvoyOptions): TestEnvoy {
  const found = findEnvoy(o.override);
  if (found !== undefined) return { path: found };
  if (!o.ci) return { skip: 'Envoy is not installed (run `node tools/setup/ensure-envoy.mjs`); skipped outside CI' };
  // The child inherits the environment, AVIARY_ENVOY_PATH included.
  const r = spawnSync(process.execPath, [ENSURE_ENVOY], { encoding: 'utf8' });
  const path = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || path === '') throw new Error(`ensure-envoy failed (exit ${r.status}):\n${r.stderr}`);
  return { path };
}

export interface EnvoyValidation {
  readonly ok: boolean;
  /** Envoy's log (stdout and stderr). */
  readonly output: string;
  /** Log lines at warning level or above, and any line that mentions a deprecated field. */
  readonly warnings: readonly string[];
}

export const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';

/**
 * Encodes `bootstrap` (canonical form, see @aviary/xds-protos; the root must have
 * `envoy/config/bootstrap/v3/bootstrap.proto` loaded) to a binary `.pb` file and runs
 * `envoy --mode validate` on it, which parses and instantiates every listener, cluster and
 * secret config exactly as xDS would and exits 1 on rejection.
 */
export function envoyValidate(envoy: string, bootstrap: Record<string, unknown>): EnvoyValidation {
  const dir = mkdtempSync(join(tmpdir(), 'aviary-envoy-validate-'));
  try {
    const file = join(dir, 'bootstrap.pb');
    writeFileSync(file, encodeMessageOf(BOOTSTRAP_TYPE, bootstrap));
    const r = spawnSync(envoy, ['--mode', 'validate', '-c', file, '--log-level', 'info', '--disable-hot-restart'], { encoding: 'utf8', timeout: 60_000 });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    const warnings = output.split('\n').filter((l) => /\]\[(warning|error|critical)\]/.test(l) || /deprecated/i.test(l));
    return { ok: r.status === 0, output, warnings };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
