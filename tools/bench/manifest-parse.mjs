// Parse time of the 488 KB, 50,000-key document: the yaml library with its unique-key check
// (what pilot did before) and @aviary/manifests (refused at the default key limit; fully parsed
// with the limit raised). Bundles the lib with esbuild first:
//   node tools/bench/manifest-parse.mjs
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

mkdirSync('tmp', { recursive: true });
await build({ entryPoints: ['libs/mesh/manifests/src/index.ts'], bundle: true, platform: 'node', format: 'esm', external: ['yaml'], outfile: 'tmp/bench-manifests.mjs', logLevel: 'warning' });
const { parseManifests, defaultManifestLimits } = await import(`${process.cwd()}/tmp/bench-manifests.mjs`);

const text = Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`).join('\n') + '\n';
const time = (f) => {
  const t = performance.now();
  f();
  return Math.round(performance.now() - t);
};
const median = (f, n = 5) => Array.from({ length: n }, () => time(f)).sort((a, b) => a - b)[Math.floor(n / 2)];
console.log(
  JSON.stringify({
    bytes: text.length,
    yamlUniqueKeysMs: process.argv.includes('--skip-old') ? undefined : time(() => parseAllDocuments(text, { uniqueKeys: true, strict: true, stringKeys: true })[0].toJS()),
    manifestsFullParseMedianMs: median(() => {
      if (!parseManifests(text, { ...defaultManifestLimits, maxKeys: 60_000 }).ok) throw new Error('refused');
    }),
    manifestsRefusedMedianMs: median(() => {
      if (parseManifests(text).ok) throw new Error('accepted');
    }),
  }),
);
