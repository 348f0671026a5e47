// OCI image layout writer: blobs (gzip layers, config, manifest) plus index.json, packed as one
// tar that `ctr -n k8s.io images import` (containerd) and `skopeo copy oci-archive:` read.
// Deterministic: no timestamps, sorted JSON keys as written here, gzip with a zero mtime.
import { gzipSync } from 'node:zlib';
import { sha256Hex, writeTar, type TarEntry } from './tar';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** The annotation containerd's importer reads the image name from. */
export const CONTAINERD_NAME = 'io.containerd.image.name';
export const OCI_REF_NAME = 'org.opencontainers.image.ref.name';

export interface Layer {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  readonly diffId: string;
  /** sha256 of the gzip blob. */
  readonly digest: string;
  readonly blob: Buffer;
}

export interface ImageConfig {
  readonly entrypoint: readonly string[];
  readonly cmd?: readonly string[];
  readonly env: readonly string[];
  readonly user: string;
  readonly workingDir: string;
  readonly exposedPorts?: readonly number[];
  readonly labels?: Readonly<Record<string, string>>;
}

export interface ImageSpec {
  /** Fully qualified, e.g. docker.io/aviary/pilot:0.1.0 (kubelet does not normalise names). */
  readonly name: string;
  readonly layers: readonly Layer[];
  readonly config: ImageConfig;
}

const NAME = /^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*:[\w][\w.-]{0,127}$/;

/** Refuses names containerd would normalise or reject: they must read registry/path:tag. */
export function checkImageName(name: string): { readonly repository: string; readonly tag: string } {
  const firstSlash = name.indexOf('/');
  const registry = firstSlash === -1 ? '' : name.slice(0, firstSlash);
  if (!NAME.test(name) || !(registry.includes('.') || registry.includes(':') || registry === 'localhost')) {
    throw new Error(`image name "${name}" must be fully qualified: <registry>/<path>:<tag>, e.g. docker.io/aviary/pilot:0.1.0`);
  }
  const colon = name.lastIndexOf(':');
  return { repository: name.slice(0, colon), tag: name.slice(colon + 1) };
}

/** Names the compression settings (zlib level 6): part of any cache key for layer blobs. */
export const GZIP_KEY = 'gzip-6';

/** Gzips a layer tar (level 6, header mtime 0: the same tar always gives the same blob). */
export function layerFromTar(tar: Buffer): Layer {
  const blob = gzipSync(tar, { level: 6 });
  return { diffId: `sha256:${sha256Hex(tar)}`, digest: `sha256:${sha256Hex(blob)}`, blob };
}

export function layerFromEntries(entries: readonly TarEntry[]): Layer {
  return layerFromTar(writeTar(entries));
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export interface BuiltImage {
  readonly name: string;
  /** The manifest digest: what `ctr images ls` and the kubelet report. */
  readonly digest: string;
  /** The OCI layout as one tar (oci-layout, index.json, blobs/sha256/*). */
  readonly archive: Buffer;
  /** Sum of the compressed layer sizes. */
  readonly compressedSize: number;
  readonly uncompressedSize: number;
}

export function buildImage(spec: ImageSpec, uncompressedSizes: readonly number[] = []): BuiltImage {
  const { tag } = checkImageName(spec.name);
  if (spec.layers.length === 0) throw new Error(`image ${spec.name}: at least one layer is required`);
  if (spec.config.entrypoint.length === 0) throw new Error(`image ${spec.name}: entrypoint must not be empty`);
  const c = spec.config;
  const config = json({
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: c.user,
      Env: [...c.env],
      Entrypoint: [...c.entrypoint],
      ...(c.cmd ? { Cmd: [...c.cmd] } : {}),
      WorkingDir: c.workingDir,
      ...(c.exposedPorts && c.exposedPorts.length > 0
        ? { ExposedPorts: Object.fromEntries([...c.exposedPorts].sort((a, b) => a - b).map((p) => [`${p}/tcp`, {}])) }
        : {}),
      ...(c.labels ? { Labels: Object.fromEntries(Object.entries(c.labels).sort(([a], [b]) => (a < b ? -1 : 1))) } : {}),
    },
    rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
  });
  const configDigest = `sha256:${sha256Hex(config)}`;
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: configDigest, size: config.length },
    layers: spec.layers.map((l) => ({ mediaType: MEDIA.layerGzip, digest: l.digest, size: l.blob.length })),
  });
  const manifestDigest = `sha256:${sha256Hex(manifest)}`;
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: manifestDigest,
        size: manifest.length,
        annotations: { [CONTAINERD_NAME]: spec.name, [OCI_REF_NAME]: tag },
        platform: { architecture: 'amd64', os: 'linux' },
      },
    ],
  });
  const blobs = new Map<string, Buffer>();
  for (const l of spec.layers) blobs.set(l.digest, l.blob);
  blobs.set(configDigest, config);
  blobs.set(manifestDigest, manifest);
  const entries: TarEntry[] = [
    { type: 'file', path: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }) },
    { type: 'file', path: 'index.json', data: index },
    ...[...blobs].map(([digest, data]): TarEntry => ({ type: 'file', path: `blobs/sha256/${digest.slice('sha256:'.length)}`, data })),
  ];
  return {
    name: spec.name,
    digest: manifestDigest,
    archive: writeTar(entries),
    compressedSize: spec.layers.reduce((n, l) => n + l.blob.length, 0),
    uncompressedSize: uncompressedSizes.reduce((n, s) => n + s, 0),
  };
}
