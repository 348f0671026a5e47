// In-process micro-benchmark of canonicalMessage: the planned one (../canonical.ts) against the
// one before it (./canonical-before.ts), on resources of a translate golden: a sidecar's
// virtualInbound listener, its inbound and an outbound cluster, and a ClusterLoadAssignment.
// Each round times a batch with each, in ABBA order; it prints the median µs per resource.
// Not a test (no timing assertions). Run from the repository root:
//   node_modules/.bin/esbuild libs/xds/protos/src/testing/canonical-bench.ts --bundle --platform=node --format=esm \
//     "--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" \
//     --outfile=dist/canonical-bench.mjs && node dist/canonical-bench.mjs [golden.json] [rounds] [fresh|same]
import { readFileSync } from 'node:fs';
import { TypeUrl, lookupType, typeNameOf } from '../index';
import { canonicalMessage } from '../canonical';
import { canonicalMessageBefore } from './canonical-before';

const golden = JSON.parse(readFileSync(process.argv[2] ?? 'libs/xds/translate/src/__golden__/bookinfo.sidecar-reviews.json', 'utf8')) as Record<string, { name: string; resource: object }[]>;
const rounds = Number(process.argv[3] ?? 30);
const batch = 200;
const pick = (key: string, test: (name: string) => boolean) => golden[key]!.find((r) => test(r.name))!;
const cases = [
  { label: 'virtualInbound listener', url: TypeUrl.Listener, r: pick('listeners', (n) => n === 'virtualInbound') },
  { label: 'inbound cluster', url: TypeUrl.Cluster, r: pick('clusters', (n) => n.startsWith('inbound|')) },
  { label: 'outbound cluster', url: TypeUrl.Cluster, r: pick('clusters', (n) => n.startsWith('outbound|')) },
  { label: 'ClusterLoadAssignment', url: TypeUrl.ClusterLoadAssignment, r: golden.endpoints![0]! },
];

type Impl = (type: Parameters<typeof canonicalMessage>[0], value: unknown) => unknown;
const impls: Record<'before' | 'after', Impl> = { before: canonicalMessageBefore, after: canonicalMessage };

/**
 * `fresh`: new objects each time, as a translator hands them over per proxy (nested Anys are then
 * found by JSON or, when larger than the cache takes, verified again); `same`: one object again
 * (nested Anys found by object, as when a translator shares them between proxies).
 */
const mode = (process.argv[4] ?? 'fresh') as 'fresh' | 'same';

function timeBatch(impl: Impl, type: Parameters<typeof canonicalMessage>[0], text: string): number {
  const one = JSON.parse(text) as unknown;
  const inputs = Array.from({ length: batch }, () => (mode === 'same' ? one : (JSON.parse(text) as unknown)));
  const t0 = process.hrtime.bigint();
  for (const input of inputs) impl(type, input);
  return Number(process.hrtime.bigint() - t0) / batch / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const { label, url, r } of cases) {
  const type = lookupType(typeNameOf(url));
  const text = JSON.stringify(r.resource);
  const us: Record<'before' | 'after', number[]> = { before: [], after: [] };
  for (let i = 0; i < 5; i++) for (const impl of Object.values(impls)) timeBatch(impl, type, text);
  for (let i = 0; i < rounds; i++) {
    const order: ('before' | 'after')[] = i % 2 === 0 ? ['before', 'after', 'after', 'before'] : ['after', 'before', 'before', 'after'];
    for (const name of order) us[name].push(timeBatch(impls[name], type, text));
  }
  const [b, a] = [median(us.before), median(us.after)];
  console.log(`${mode}: ${label} (${r.name}, ${text.length} B JSON): before ${b.toFixed(1)} µs, after ${a.toFixed(1)} µs, after/before ${(a / b).toFixed(2)}`);
}
