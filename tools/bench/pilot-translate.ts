import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { parse } from 'yaml';
import { buildSnapshot, parseNode, type MeshSnapshot, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';
import { ResourceEncoder, TranslatingSource } from '@aviary/xds-cache';
import { resourceTypeUrls } from '@aviary/xds-protos';
import { cachedTranslation, proxyGroupKey } from '@aviary/xds-translate';
import { benchMesh } from './bench-mesh';
import { benchArgs } from './cli';
import { median } from './dataplane-parse';

const USAGE = `Pilot's translation in process: the cold start of tools/bench/pilot.js without the transport.
The same generated mesh (tools/bench/bench-mesh.ts) is built into a model once; each round then
gives every stream's node, as pilot parses it, a fresh translating source and encoder (as a
fresh pilot has) and asks it for the node's resources: translation, canonical form, encoding,
versions, consistency checks. No xDS stream, no framing, no NATS.

Usage: node tools/build/build.mjs bench-pilot-translate &&
       node dist/tools/bench/pilot-translate.js [--rounds 6] [--alloc] [--services 1000]
         [--endpoints 10] [--streams 1000] [--namespaces 10] [--visibility namespace|mesh]
--alloc: the last round runs under V8's sampling heap profiler (every 4 KiB, young-generation
  garbage included) and reports the MiB it allocated; that round's time is then not comparable.
Round 0 runs on a cold JIT, as pilot's cold start does; later rounds show the warm cost. Compare
builds by running them alternately (A B B A …): the machine is shared and noisy.
`;
const cli = benchArgs(USAGE, { rounds: 'string', alloc: 'boolean', services: 'string', endpoints: 'string', streams: 'string', namespaces: 'string', visibility: 'string' });
const ROUNDS = cli.int('rounds', 6, 1);
const mesh = benchMesh({
  services: cli.int('services', 1000, 1),
  endpoints: cli.int('endpoints', 10, 1),
  namespaces: cli.int('namespaces', 10, 1),
  streams: cli.int('streams', 1000, 1),
  visibility: cli.str('visibility', 'namespace'),
});

interface SampleNode {
  readonly selfSize: number;
  readonly children?: readonly SampleNode[];
}
const sampledBytes = (n: SampleNode): number => n.selfSize + (n.children ?? []).reduce((sum, c) => sum + sampledBytes(c), 0);

function source(model: MeshSnapshot, encoder: ResourceEncoder): TranslatingSource<MeshSnapshot, ProxyInfo> {
  const translation = cachedTranslation();
  return new TranslatingSource<MeshSnapshot, ProxyInfo>(model, { translate: translation.translate, translateEndpoints: translation.translateEndpoints, groupOf: proxyGroupKey, encoder });
}

const model = buildSnapshot(
  mesh.allDocuments().map((d) => parse(d) as ModelObject),
  { trustDomain: 'cluster.local' },
);
const session = new Session();
session.connect();
const rounds: Record<string, number>[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const sampled = cli.flag('alloc') && r === ROUNDS - 1;
  if (sampled) {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  const encoder = new ResourceEncoder();
  const src = source(model, encoder);
  const proxies = mesh.loadNodes().map((n) => parseNode(n));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let resources = 0;
  for (const p of proxies) {
    const snapshot = src.resourcesFor(p);
    for (const t of resourceTypeUrls) resources += snapshot.resources(t).size;
  }
  const cpu = process.cpuUsage(cpu0);
  const round: Record<string, number> = { round: r, ms: Math.round(performance.now() - t0), cpuMs: Math.round((cpu.user + cpu.system) / 1000), resources, encoded: encoder.encoded, reused: encoder.reused, digested: encoder.digested };
  if (sampled) {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SampleNode } };
    round['allocatedMiB'] = Math.round(sampledBytes(profile.head) / 1048576);
  }
  rounds.push(round);
  process.stderr.write(`${JSON.stringify(round)}\n`);
}
session.disconnect();
const warm = rounds.slice(1).filter((r) => r['allocatedMiB'] === undefined);
console.log(
  JSON.stringify(
    {
      machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version },
      streams: mesh.loadNodes().length,
      coldJit: rounds[0],
      warmMedian: warm.length > 0 ? { ms: median(warm.map((r) => r['ms']!)), cpuMs: median(warm.map((r) => r['cpuMs']!)) } : undefined,
      allocatedMiB: rounds.at(-1)?.['allocatedMiB'],
    },
    null,
    2,
  ),
);
