// In-process micro-benchmark of encodeCanonical: the two-pass writer (../canonical-writer.ts)
// against the one on protobufjs's Writer before it (./canonical-writer-before.ts), on every
// listener, cluster and ClusterLoadAssignment (and, on a line of its own, RouteConfiguration) of
// the translate goldens, canonicalized. Each round encodes every resource with each writer, in
// ABBA order, after a full GC; it reports the median ms per resource and bytes allocated per
// resource (V8 heap growth over the batch, with a young generation large enough that no GC
// runs inside a batch; a batch during which one ran anyway is not counted), and new/old.
// Not a test (no assertions). Run from the repository root:
//   node_modules/.bin/esbuild libs/xds/protos/src/testing/canonical-writer-bench.ts --bundle --platform=node --format=esm \
//     "--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" \
//     --outfile=dist/canonical-writer-bench.mjs
//   node_modules/.bin/node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 dist/canonical-writer-bench.mjs [rounds] [fresh|same]
import { readdirSync, readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { TypeUrl, canonicalResource, encodeCanonical, typeNameOf } from '../index';
import type { CanonicalMessage } from '../canonical';
import { encodeCanonicalBefore } from './canonical-writer-before';

const goldenDir = 'libs/xds/translate/src/__golden__/';
const rounds = Number(process.argv[2] ?? 20);
/**
 * `fresh`: each batch canonicalizes the resources again, as pilot does per proxy: the Anys
 * canonicalMessage caches by JSON are the same objects each time (their bytes cached by the
 * writer after the first batch), larger ones (an HCM with its routes) are new and encoded again;
 * `same`: the same canonical objects each batch (every Any's bytes cached).
 */
const mode = (process.argv[3] ?? 'fresh') as 'fresh' | 'same';
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const groups = { 'listeners+clusters+endpoints': ['listeners', 'clusters', 'endpoints'], routes: ['routes'] } as const;
const urls = { listeners: TypeUrl.Listener, clusters: TypeUrl.Cluster, endpoints: TypeUrl.ClusterLoadAssignment, routes: TypeUrl.RouteConfiguration } as const;
type Key = keyof typeof urls;
const resources: Record<Key, string[]> = { listeners: [], clusters: [], endpoints: [], routes: [] };
for (const file of readdirSync(goldenDir).filter((f) => f.endsWith('.json'))) {
  const golden = JSON.parse(readFileSync(goldenDir + file, 'utf8')) as Record<string, { resource: object }[] | undefined>;
  for (const key of Object.keys(resources) as Key[]) for (const { resource } of golden[key] ?? []) resources[key].push(JSON.stringify(resource));
}

type Impl = (typeName: string, canonical: CanonicalMessage) => Uint8Array;
const impls: Record<'old' | 'new', Impl> = { old: encodeCanonicalBefore, new: encodeCanonical };

let gcs = 0;
new PerformanceObserver((list) => (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });

interface Input {
  typeName: string;
  canonical: CanonicalMessage;
}

function inputsOf(keys: readonly Key[]): Input[] {
  return keys.flatMap((key) => resources[key].map((text) => ({ typeName: typeNameOf(urls[key]), canonical: canonicalResource(urls[key], JSON.parse(text)) })));
}

/** Waits for the observer's gc entries, which arrive on a timer. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** One batch: ms per resource and bytes allocated per resource (NaN when a GC ran inside). */
async function batch(impl: Impl, inputs: Input[]): Promise<[number, number]> {
  gc!();
  await settle(); // the gc entries of gc() are delivered
  const before = gcs;
  const h0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  for (const { typeName, canonical } of inputs) impl(typeName, canonical);
  const t1 = process.hrtime.bigint();
  const h1 = process.memoryUsage().heapUsed;
  await settle();
  return [Number(t1 - t0) / 1e6 / inputs.length, gcs === before ? (h1 - h0) / inputs.length : NaN];
}

const median = (xs: number[]) => {
  const kept = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return kept[Math.floor(kept.length / 2)] ?? NaN;
};

for (const [label, keys] of Object.entries(groups)) {
  const same = inputsOf(keys);
  const inputsFor = () => (mode === 'same' ? same : inputsOf(keys));
  const ms: Record<'old' | 'new', number[]> = { old: [], new: [] };
  const bytes: Record<'old' | 'new', number[]> = { old: [], new: [] };
  for (let i = 0; i < 5; i++) for (const impl of Object.values(impls)) await batch(impl, inputsFor());
  for (let i = 0; i < rounds; i++) {
    const order: ('old' | 'new')[] = i % 2 === 0 ? ['old', 'new', 'new', 'old'] : ['new', 'old', 'old', 'new'];
    for (const name of order) {
      const [t, b] = await batch(impls[name], inputsFor());
      ms[name].push(t);
      bytes[name].push(b);
    }
  }
  const [mo, mn, bo, bn] = [median(ms.old), median(ms.new), median(bytes.old), median(bytes.new)];
  const dropped = [...bytes.old, ...bytes.new].filter(Number.isNaN).length;
  console.log(
    `${mode}: ${label} (${same.length} resources): ms/resource old ${(mo * 1e3).toFixed(1)} µs, new ${(mn * 1e3).toFixed(1)} µs, new/old ${(mn / mo).toFixed(2)}; ` +
      `bytes/resource old ${bo.toFixed(0)}, new ${bn.toFixed(0)}, new/old ${(bn / bo).toFixed(2)}${dropped ? ` (${dropped} batches with a GC not weighed)` : ''}`,
  );
}
