#!/usr/bin/env node
// Bundles each app (and the local-mesh launcher) into dist/ with esbuild. Libraries are bundled
// in; npm packages stay external and load from node_modules at run time.
// Usage: node tools/build/build.mjs [app|tool ...]   (no argument: everything)
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entries = {
  pilot: ['apps/pilot/src/main.ts', 'dist/apps/pilot/main.js'],
  citadel: ['apps/citadel/src/main.ts', 'dist/apps/citadel/main.js'],
  'injector-webhook': ['apps/injector-webhook/src/main.ts', 'dist/apps/injector-webhook/main.js'],
  'telemetry-collector': ['apps/telemetry-collector/src/main.ts', 'dist/apps/telemetry-collector/main.js'],
  gateway: ['apps/gateway/src/main.ts', 'dist/apps/gateway/main.js'],
  'aviary-iptables': ['apps/gateway/src/iptables.ts', 'dist/apps/gateway/iptables.js'],
  'local-mesh': ['tools/local-mesh/main.ts', 'dist/tools/local-mesh/main.js'],
  'demo-service': ['tools/demo/service.ts', 'dist/tools/demo/service.js'],
  'bench-citadel': ['tools/bench/citadel.ts', 'dist/tools/bench/citadel.js'],
  'bench-ca-vs-istiod': ['tools/bench/ca-vs-istiod.ts', 'dist/tools/bench/ca-vs-istiod.js'],
  'bench-injector': ['tools/bench/injector.ts', 'dist/tools/bench/injector.js'],
  'bench-telemetry': ['tools/bench/telemetry.ts', 'dist/tools/bench/telemetry.js'],
  'bench-pilot': ['tools/bench/pilot.ts', 'dist/tools/bench/pilot.js'],
  'bench-pilot-load': ['tools/bench/pilot-load.ts', 'dist/tools/bench/pilot-load.js'],
  'bench-pilot-translate': ['tools/bench/pilot-translate.ts', 'dist/tools/bench/pilot-translate.js'],
  'bench-ads-transport': ['tools/bench/ads-transport.ts', 'dist/tools/bench/ads-transport.js'],
  'bench-dataplane': ['tools/bench/dataplane.ts', 'dist/tools/bench/dataplane.js'],
  'aviary-cli': ['tools/cli/main.ts', 'dist/tools/cli/main.js'],
  images: ['tools/images/main.ts', 'dist/tools/images/main.js'],
  'static-image': ['tools/images/static-image.ts', 'dist/tools/images/static-image.js'],
};

// npm packages stay external; the workspace's own @aviary/* libraries are bundled.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).flatMap((n) => [n, `${n}/*`]);

// JSON files of npm packages (e.g. protobufjs' descriptor.json) are bundled: Node would need an
// import attribute to load them as external ESM imports.
const requireFromRoot = createRequire(join(root, 'package.json'));
const bundleJson = {
  name: 'bundle-package-json',
  setup(b) {
    b.onResolve({ filter: /^[^./].*\.json$/ }, (args) => ({ path: requireFromRoot.resolve(args.path) }));
  },
};

// `import text from './file.proto?raw'` (as vite does in tests): the file's text, bundled.
const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: join(args.resolveDir, args.path.slice(0, -4)), namespace: 'raw-text' }));
    b.onLoad({ filter: /.*/, namespace: 'raw-text' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!(name in entries)) {
    process.stderr.write(`build: unknown target "${name}" (known: ${Object.keys(entries).join(', ')})\n`);
    process.exit(2);
  }
}
const names = wanted.length > 0 ? wanted : Object.keys(entries);
await Promise.all(
    names.map((name) => {
      const [entry, outfile] = entries[name];
      return build({
        entryPoints: [join(root, entry)],
        outfile: join(root, outfile),
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node24',
        external,
        plugins: [bundleJson, rawText],
        sourcemap: 'linked',
        logLevel: 'warning',
        banner: { js: (name === 'aviary-cli' ? '#!/usr/bin/env node\n' : '') + "import { createRequire as __aviaryCreateRequire } from 'node:module'; const require = __aviaryCreateRequire(import.meta.url);" },
      });
    }),
);
