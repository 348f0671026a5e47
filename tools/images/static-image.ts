// A one-layer OCI image of static files, for test peers built outside the repo
// (tools/k8s/ensure-conformance.sh: the Gateway API conformance suite's echo backend;
// tools/k8s/ensure-echo-advanced.sh: Istio's echo app for its mesh tests). The same writer as
// `npm run images` (ustar layer, gzip level 6 with mtime 0, sorted JSON), so the same files always
// give the same digests.
// Usage: node dist/tools/images/static-image.js --name REGISTRY/PATH:TAG --out FILE.oci.tar
//          (--binary FILE | --file SRC:/DEST[:MODE]... --entrypoint /DEST)
//          [--user UID:GID] [--port N]... [--env NAME=VALUE]...
//   --binary FILE        the image is that one program at /<basename>, which is its entrypoint
//   --file SRC:/DEST     SRC copied to the absolute path DEST (parent directories 0755), mode
//                        octal MODE (default 0755 for the entrypoint, 0644 for the others)
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, posix } from 'node:path';
import { buildImage, layerFromEntries } from './oci';
import type { TarEntry } from './tar';

interface FileSpec { readonly src: string; readonly dest: string; readonly mode: number | undefined }
interface Args { name: string; out: string; user: string; ports: number[]; env: string[]; files: FileSpec[]; entrypoint: string | undefined }

function parseFile(value: string): FileSpec {
  const [src, dest, mode, ...rest] = value.split(':');
  if (src === undefined || src === '' || dest === undefined || !posix.isAbsolute(dest) || posix.normalize(dest) !== dest || dest.endsWith('/') || rest.length > 0) {
    throw new Error(`--file ${value}: expected SRC:/ABSOLUTE/DEST[:MODE]`);
  }
  if (mode !== undefined && !/^[0-7]{3,4}$/.test(mode)) throw new Error(`--file ${value}: mode "${mode}" is not octal, e.g. 0644`);
  return { src, dest, mode: mode === undefined ? undefined : parseInt(mode, 8) };
}

function parseArgs(argv: readonly string[]): Args {
  const args: Partial<Args> & Pick<Args, 'ports' | 'env' | 'files' | 'user'> = { ports: [], env: [], files: [], user: '65534:65534' };
  let binary: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] ?? '';
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
    if (flag === '--name') args.name = value;
    else if (flag === '--binary') binary = value;
    else if (flag === '--file') args.files.push(parseFile(value));
    else if (flag === '--entrypoint') args.entrypoint = value;
    else if (flag === '--out') args.out = value;
    else if (flag === '--user') args.user = value;
    else if (flag === '--env') {
      if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(value)) throw new Error(`--env ${value}: expected NAME=VALUE`);
      args.env.push(value);
    } else if (flag === '--port') {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port ${value}: not a port number`);
      args.ports.push(port);
    } else throw new Error(`unknown option ${flag}`);
  }
  for (const required of ['name', 'out'] as const) if (args[required] === undefined) throw new Error(`--${required} is required`);
  if (binary !== undefined) {
    if (args.files.length > 0 || args.entrypoint !== undefined) throw new Error('--binary excludes --file and --entrypoint');
    const dest = `/${basename(binary)}`;
    args.files.push({ src: binary, dest, mode: undefined });
    args.entrypoint = dest;
  }
  if (args.entrypoint === undefined) throw new Error('--binary or --entrypoint is required');
  const entrypoint = args.entrypoint;
  if (!args.files.some((f) => f.dest === entrypoint)) throw new Error(`--entrypoint ${entrypoint}: no --file puts anything there`);
  const dests = args.files.map((f) => f.dest);
  const dup = dests.find((d, i) => dests.indexOf(d) !== i);
  if (dup !== undefined) throw new Error(`--file: two files at ${dup}`);
  return args as Args;
}

/** The layer's files, root-owned (writeTar adds their parent directories, 0755). */
function entries(args: Args): TarEntry[] {
  return args.files.map((f): TarEntry => ({ type: 'file', path: f.dest.slice(1), data: readFileSync(f.src), mode: f.mode ?? (f.dest === args.entrypoint ? 0o755 : 0o644) }));
}

try {
  const args = parseArgs(process.argv.slice(2));
  const layer = layerFromEntries(entries(args));
  const image = buildImage({ name: args.name, layers: [layer], config: { entrypoint: [args.entrypoint!], env: args.env, user: args.user, workingDir: '/', exposedPorts: args.ports } });
  writeFileSync(`${args.out}.tmp`, image.archive);
  renameSync(`${args.out}.tmp`, args.out);
  process.stdout.write(`${image.name} ${image.digest}\n`);
} catch (err) {
  process.stderr.write(`static-image: ${(err as Error).message}\n`);
  process.exit(2);
}
