// Regenerates docs/istio-fields.md from the schemas (@aviary/mesh-api) and the field registry
// (@aviary/mesh-validation): bundles generate.ts with esbuild into a temporary ES module, imports
// it and writes the file. Usage: node tools/fields/generate.mjs
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = mkdtempSync(join(tmpdir(), 'aviary-fields-'));
try {
  const outfile = join(out, 'generate.mjs');
  await build({
    entryPoints: [join(root, 'tools/fields/generate.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    outfile,
    logLevel: 'warning',
    absWorkingDir: root,
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
  const { writeFieldsDoc } = await import(pathToFileURL(outfile).href);
  console.log(`wrote ${writeFieldsDoc(root)}`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
