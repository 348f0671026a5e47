// Imports a TypeScript module of the repository from plain Node: bundles it with esbuild (the
// workspace's @aviary/* sources included) into a temporary ES module, imports that, and removes
// it. For the generator scripts (tools/crds, tools/fields) that must run before any build.
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The module's exports; `entry` is relative to the repository root. */
export async function importTs(entry) {
  const out = mkdtempSync(join(tmpdir(), 'aviary-import-ts-'));
  try {
    const outfile = join(out, 'module.mjs');
    await build({
      entryPoints: [join(repoRoot, entry)],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      outfile,
      logLevel: 'warning',
      absWorkingDir: repoRoot,
      // CommonJS dependencies (yaml) call require(); give the ES module one.
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
