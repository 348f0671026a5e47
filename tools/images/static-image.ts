// A one-layer OCI image of one static binary at the image's root, for test peers built outside
// the repo (tools/k8s/ensure-conformance.sh: the Gateway API conformance suite's echo backend).
// The same writer as `npm run images` (ustar layer, gzip level 6 with mtime 0, sorted JSON), so
// the same binary always gives the same digests.
// Usage: node dist/tools/images/static-image.js --name REGISTRY/PATH:TAG --binary FILE --out FILE.oci.tar
//          [--user UID:GID] [--port N]...
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { buildImage, layerFromEntries } from './oci';

interface Args { name: string; binary: string; out: string; user: string; ports: number[] }

function parseArgs(argv: readonly string[]): Args {
  const args: Partial<Args> & { ports: number[] } = { ports: [], user: '65534:65534' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] ?? '';
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
    if (flag === '--name') args.name = value;
    else if (flag === '--binary') args.binary = value;
    else if (flag === '--out') args.out = value;
    else if (flag === '--user') args.user = value;
    else if (flag === '--port') {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port ${value}: not a port number`);
      args.ports.push(port);
    } else throw new Error(`unknown option ${flag}`);
  }
  for (const required of ['name', 'binary', 'out'] as const) if (args[required] === undefined) throw new Error(`--${required} is required`);
  return args as Args;
}

try {
  const args = parseArgs(process.argv.slice(2));
  const file = basename(args.binary);
  const layer = layerFromEntries([{ type: 'file', path: file, data: readFileSync(args.binary), mode: 0o755 }]);
  const image = buildImage({ name: args.name, layers: [layer], config: { entrypoint: [`/${file}`], env: [], user: args.user, workingDir: '/', exposedPorts: args.ports } });
  writeFileSync(`${args.out}.tmp`, image.archive);
  renameSync(`${args.out}.tmp`, args.out);
  process.stdout.write(`${image.name} ${image.digest}\n`);
} catch (err) {
  process.stderr.write(`static-image: ${(err as Error).message}\n`);
  process.exit(2);
}
