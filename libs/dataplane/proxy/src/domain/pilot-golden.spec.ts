import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileResources, type ResourceKind } from './table';

/**
 * Compatibility with what pilot actually sends: every resource in pilot's golden xDS output
 * (libs/xds-translate golden files, read as data) must compile without a NACK.
 */
const goldenDir = join(import.meta.dirname, '..', '..', '..', '..', 'xds', 'translate', 'src', '__golden__');
const files = ['bookinfo.router.json', 'bookinfo.sidecar-productpage.json', 'bookinfo.sidecar-reviews.json'].filter((f) => existsSync(join(goldenDir, f)));
const kinds: [string, ResourceKind][] = [['listeners', 'lds'], ['routes', 'rds'], ['clusters', 'cds'], ['endpoints', 'eds'], ['secrets', 'sds']];

describe.skipIf(files.length === 0)("pilot's golden xDS output", () => {
  it.each(files)('%s compiles without errors', (file) => {
    const golden = JSON.parse(readFileSync(join(goldenDir, file), 'utf8')) as Record<string, { resource: unknown }[] | undefined>;
    let total = 0;
    for (const [key, kind] of kinds) {
      const list = (golden[key] ?? []).map((x) => x.resource);
      const r = compileResources(kind, list);
      expect(r.errors).toEqual([]);
      total += r.resources.size;
    }
    expect(total).toBeGreaterThan(5);
  });
});
