// Regenerates charts/aviary/crds from @aviary/mesh-api: bundles generate.ts with esbuild into a
// temporary ES module, imports it and writes the files. Usage: node tools/crds/generate.mjs
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = mkdtempSync(join(tmpdir(), 'aviary-crds-'));
try {
  const outfile = join(out, 'generate.mjs');
  await build({
    entryPoints: [join(root, 'tools/crds/generate.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    outfile,
    logLevel: 'warning',
    absWorkingDir: root,
    // CommonJS dependencies (yaml) call require(); give the ES module one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
  const { writeCrds } = await import(pathToFileURL(outfile).href);
  for (const file of writeCrds(root)) console.log(`wrote ${file}`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
