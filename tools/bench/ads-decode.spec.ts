import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TypeUrl, typeNameOf } from '@aviary/xds-api';
import { encodeResource, lookupType } from '@aviary/xds-protos';
import { TRIMMED, trimmedType } from './ads-decode';

const golden = (name: string): Record<string, Array<{ name: string; resource: unknown }>> =>
  JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'libs', 'xds', 'translate', 'src', '__golden__', name), 'utf8')) as Record<string, Array<{ name: string; resource: unknown }>>;

describe('trimmed xDS types', () => {
  it.each(Object.keys(TRIMMED))('%s: every field has the Envoy field number, type and cardinality', (envoyName) => {
    const full = lookupType(envoyName);
    const trimmed = trimmedType(envoyName);
    for (const f of trimmed.fieldsArray) {
      const e = full.fields[f.name];
      expect(e, `${envoyName}.${f.name}`).toBeDefined();
      expect(f.id).toBe(e!.id);
      expect(f.repeated).toBe(e!.repeated);
      f.resolve();
      e!.resolve();
      if (f.resolvedType) expect(TRIMMED[e!.resolvedType!.fullName.slice(1)]).toBe(f.resolvedType.name);
      else if (e!.resolvedType) expect([f.type, e!.resolvedType.constructor.name]).toEqual(['int32', 'Enum']);
      else expect(f.type).toBe(e!.type);
    }
  });

  it('reads what the full Envoy types read from the translator golden resources', () => {
    const byName = (o: unknown): Record<string, unknown> => o as Record<string, unknown>;
    for (const file of ['bookinfo.sidecar-reviews.json', 'bookinfo.proxyless.json', 'features.sidecar-shop.json']) {
      const g = golden(file);
      for (const [kind, url] of [['clusters', TypeUrl.Cluster], ['listeners', TypeUrl.Listener], ['endpoints', TypeUrl.ClusterLoadAssignment], ['routes', TypeUrl.RouteConfiguration]] as const) {
        for (const r of g[kind] ?? []) {
          const bytes = encodeResource(url, r.resource);
          const full = lookupType(typeNameOf(url)).toObject(lookupType(typeNameOf(url)).decode(bytes), { defaults: true });
          const trimmed = byName(trimmedType(typeNameOf(url)).toObject(trimmedType(typeNameOf(url)).decode(bytes), { defaults: true }));
          if (kind === 'clusters') {
            expect(trimmed['name']).toBe(full['name']);
            expect(trimmed['type']).toBe(full['type']);
            expect(byName(trimmed['eds_cluster_config'] ?? {})['service_name']).toBe(byName(full['eds_cluster_config'] ?? {})['service_name']);
          } else if (kind === 'endpoints') {
            const addresses = (o: Record<string, unknown>): unknown =>
              (o['endpoints'] as Array<{ lb_endpoints?: Array<{ endpoint?: { address?: { socket_address?: { address?: string } } } }> }>).flatMap((l) => (l.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address?.address));
            expect(trimmed['cluster_name']).toBe(full['cluster_name']);
            expect(addresses(trimmed)).toEqual(addresses(full));
          } else {
            expect(trimmed['name']).toBe(full['name']);
            if (kind === 'listeners') {
              const any = (o: Record<string, unknown>): unknown =>
                (o['filter_chains'] as Array<{ filters?: Array<{ typed_config?: { type_url: string; value: Uint8Array } }> }>).flatMap((c) => (c.filters ?? []).map((f) => [f.typed_config?.type_url, Buffer.from(f.typed_config?.value ?? []).toString('hex')]));
              expect(any(trimmed)).toEqual(any(full));
            }
          }
        }
      }
    }
  });
});
