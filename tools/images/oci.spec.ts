import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { APP_IMAGES, appEntries, appImageConfig, lddLibraries, unusedAtRuntime } from './images';
import { buildImage, checkImageName, CONTAINERD_NAME, layerFromEntries, MEDIA } from './oci';
import { sha256Hex, writeTar, type TarEntry } from './tar';

const work = mkdtempSync(join(tmpdir(), 'aviary-oci-spec-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Unpacks with GNU tar (the real peer) and returns `tar -tv` lines. */
function gnuTar(archive: Buffer, name: string): { dir: string; listing: string[] } {
  const file = join(work, `${name}.tar`);
  const dir = join(work, name);
  writeFileSync(file, archive);
  spawnSync('mkdir', ['-p', dir]);
  const x = spawnSync('tar', ['-xf', file, '-C', dir], { encoding: 'utf8' });
  expect(x.stderr).toBe('');
  const t = spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  expect(t.status).toBe(0);
  return { dir, listing: t.stdout.trim().split('\n') };
}

const longDir = `app/node_modules/${'@scope-with-a-long-name/'.repeat(4)}deeply/nested/package-with-an-even-longer-name-than-the-ustar-field-allows`;
const entries: TarEntry[] = [
  { type: 'file', path: 'usr/local/bin/tool', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
  { type: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0::/:/sbin/nologin\n') },
  { type: 'dir', path: 'var/lib/aviary', uid: 1337, gid: 1337 },
  { type: 'symlink', path: 'usr/sbin/iptables', target: 'xtables-nft-multi' },
  { type: 'file', path: `${longDir}/index.js`, data: Buffer.from('export {};\n') },
];

describe('writeTar', () => {
  it('gives the same bytes for the same entries in any order', () => {
    expect(sha256Hex(writeTar(entries))).toBe(sha256Hex(writeTar([...entries].reverse())));
  });

  it('writes sorted entries with parents first, fixed mtime and owners, long paths via PAX (read back by GNU tar)', () => {
    const { dir, listing } = gnuTar(writeTar(entries), 'layer');
    const names = listing.map((l) => l.split(/\s+/).slice(5).join(' '));
    expect(names.slice(0, 3)).toEqual(['app/', 'app/node_modules/', 'app/node_modules/@scope-with-a-long-name/']);
    expect(names).toContain(`${longDir}/index.js`);
    expect(names).toContain('usr/sbin/iptables -> xtables-nft-multi');
    const paths = names.map((n) => n.replace(/ -> .*$/, ''));
    expect(paths).toEqual([...paths].sort());
    for (const l of listing) expect(l).toContain('1970-01-01 00:00:00');
    expect(listing.find((l) => l.endsWith('var/lib/aviary/'))).toMatch(/^drwxr-xr-x 1337\/1337 /);
    expect(listing.find((l) => l.endsWith('usr/local/bin/tool'))).toMatch(/^-rwxr-xr-x 0\/0 /);
    expect(readFileSync(join(dir, longDir, 'index.js'), 'utf8')).toBe('export {};\n');
  });

  it('refuses absolute paths, ".." and duplicates', () => {
    expect(() => writeTar([{ type: 'dir', path: '/etc' }])).toThrow(/invalid entry path "\/etc"/);
    expect(() => writeTar([{ type: 'dir', path: 'a/../b' }])).toThrow(/invalid entry path/);
    expect(() => writeTar([{ type: 'dir', path: 'a' }, { type: 'dir', path: 'a/' }])).toThrow(/duplicate entry "a"/);
    expect(() => writeTar([{ type: 'file', path: 'a', data: Buffer.alloc(0) }, { type: 'dir', path: 'a/b' }])).toThrow(/"a" is a file/);
  });
});

describe('buildImage', () => {
  const spec = () => ({
    name: 'docker.io/aviary/pilot:0.1.0',
    layers: [layerFromEntries(entries), layerFromEntries([{ type: 'file', path: 'app/main.js', data: Buffer.from('console.log(1)\n') }])],
    config: appImageConfig(APP_IMAGES[0]!),
  });

  it('is reproducible: the same inputs give the same manifest digest and archive bytes', () => {
    const a = buildImage(spec());
    const b = buildImage(spec());
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b.digest).toBe(a.digest);
    expect(sha256Hex(b.archive)).toBe(sha256Hex(a.archive));
  });

  it('writes a valid OCI layout: index -> manifest -> config and layers, every blob named by its digest', () => {
    const image = buildImage(spec());
    const { dir } = gnuTar(image.archive, 'layout');
    expect(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const blob = (digest: string): Buffer => {
      const data = readFileSync(join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
      expect(`sha256:${sha256Hex(data)}`).toBe(digest);
      return data;
    };
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(index.mediaType).toBe(MEDIA.index);
    expect(index.manifests).toHaveLength(1);
    const [desc] = index.manifests;
    expect(desc.annotations[CONTAINERD_NAME]).toBe('docker.io/aviary/pilot:0.1.0');
    expect(desc.digest).toBe(image.digest);
    const manifestBytes = blob(desc.digest);
    expect(manifestBytes.length).toBe(desc.size);
    const manifest = JSON.parse(manifestBytes.toString('utf8'));
    expect(manifest.mediaType).toBe(MEDIA.manifest);
    const config = JSON.parse(blob(manifest.config.digest).toString('utf8'));
    expect(config.config).toMatchObject({ User: '1337:1337', WorkingDir: '/app', Entrypoint: ['/usr/local/bin/node', '--enable-source-maps', '/app/dist/apps/pilot/main.js'] });
    expect(config.config.ExposedPorts).toEqual({ '15010/tcp': {}, '15014/tcp': {} });
    expect(manifest.layers).toHaveLength(2);
    manifest.layers.forEach((l: { digest: string; size: number; mediaType: string }, i: number) => {
      expect(l.mediaType).toBe(MEDIA.layerGzip);
      const data = blob(l.digest);
      expect(data.length).toBe(l.size);
      expect(`sha256:${sha256Hex(gunzipSync(data))}`).toBe(config.rootfs.diff_ids[i]);
    });
  });

  it('refuses names that are not fully qualified, and images without layers', () => {
    expect(() => checkImageName('aviary/pilot:0.1.0')).toThrow(/must be fully qualified/);
    expect(() => checkImageName('docker.io/aviary/pilot')).toThrow(/must be fully qualified/);
    expect(checkImageName('localhost:5000/a/b:v1')).toEqual({ repository: 'localhost:5000/a/b', tag: 'v1' });
    expect(() => buildImage({ ...spec(), layers: [] })).toThrow(/at least one layer/);
  });
});

describe('the demo-service image (the walkthrough\'s hello v1/v2 and client)', () => {
  const demo = APP_IMAGES.find((a) => a.app === 'demo-service')!;
  it('runs the demo service bundle from dist/tools/demo', () => {
    expect(appImageConfig(demo).entrypoint).toEqual(['/usr/local/bin/node', '--enable-source-maps', '/app/dist/tools/demo/service.js']);
    expect(demo.proxy).toBe(false);
    // uid 1337 is the proxy's: the capture rules never redirect it, so the app must not run as it.
    expect(appImageConfig(demo).user).toBe('1000:1000');
    expect(appImageConfig(APP_IMAGES.find((a) => a.app === 'gateway')!).user).toBe('1337:1337');
  });

  it('carries the bundle (and its source map), nothing else from dist', () => {
    const dist = mkdtempSync(join(tmpdir(), 'aviary-dist-'));
    try {
      mkdirSync(join(dist, 'tools', 'demo'), { recursive: true });
      for (const f of ['service.js', 'service.js.map', 'other.js']) writeFileSync(join(dist, 'tools', 'demo', f), '//\n');
      expect(appEntries(dist, demo, '0.1.0').map((e) => e.path)).toEqual(['app/package.json', 'app/dist/tools/demo/service.js', 'app/dist/tools/demo/service.js.map']);
      rmSync(join(dist, 'tools', 'demo', 'service.js'));
      expect(() => appEntries(dist, demo, '0.1.0')).toThrow(/service\.js is missing: run node tools\/build\/build\.mjs demo-service/);
    } finally {
      rmSync(dist, { recursive: true, force: true });
    }
  });
});

describe('lddLibraries', () => {
  it('lists the dynamic loader and libc of the node binary, and nothing for a script', () => {
    const libs = lddLibraries(process.execPath);
    expect(libs.some((l) => /\/libc\.so\.6$/.test(l))).toBe(true);
    expect(libs.some((l) => /ld-linux-x86-64\.so\.2$/.test(l))).toBe(true);
    const script = join(work, 'script.sh');
    writeFileSync(script, '#!/bin/sh\n');
    expect(lddLibraries(script)).toEqual([]);
  });
});

describe('unusedAtRuntime', () => {
  it('drops declarations, TypeScript sources, maps, markdown and @types, and keeps code, JSON and licences', () => {
    for (const f of ['@types', '@types/node/index.d.ts', 'a/index.d.mts', 'a/src/x.ts', 'a/dist/x.js.map', 'a/README.md']) expect(unusedAtRuntime(f), f).toBe(true);
    for (const f of ['a/index.js', 'a/index.mjs', 'a/package.json', 'a/LICENSE.md', 'a/proto/x.proto', 'a/types']) expect(unusedAtRuntime(f), f).toBe(false);
  });
});
