import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TypeUrl, canonicalResource, encodeCanonical, encodeResource, typeNameOf } from '@aviary/xds-protos';

const goldenDir = fileURLToPath(new URL('./__golden__/', import.meta.url));
const types = { listeners: TypeUrl.Listener, routes: TypeUrl.RouteConfiguration, clusters: TypeUrl.Cluster, endpoints: TypeUrl.ClusterLoadAssignment, secrets: TypeUrl.Secret } as const;

describe('encodeCanonical on the golden translations', () => {
  it.each(readdirSync(goldenDir).filter((f) => f.endsWith('.json')))('%s: every resource encodes to the bytes of the verifying path', (file) => {
    const golden = JSON.parse(readFileSync(`${goldenDir}${file}`, 'utf8')) as Record<string, { name: string; resource: object }[]>;
    let count = 0;
    for (const [key, url] of Object.entries(types)) {
      for (const { name, resource } of golden[key] ?? []) {
        const bytes = Buffer.from(encodeCanonical(typeNameOf(url), canonicalResource(url, resource)));
        expect(bytes.equals(Buffer.from(encodeResource(url, resource))), `${key} ${name}`).toBe(true);
        count++;
      }
    }
    expect(count).toBeGreaterThan(0);
  });
});
