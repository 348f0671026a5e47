import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kinds } from '@aviary/mesh-api';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartKinds, CRDS_DIR, renderCrds } from './crds';

const root = join(import.meta.dirname, '../..');
const rendered = renderCrds();

/** Every node of a structural schema, with its path. */
function* nodes(schema: Record<string, unknown>, path = ''): Generator<[string, Record<string, unknown>]> {
  yield [path, schema];
  for (const [k, v] of Object.entries((schema['properties'] as Record<string, Record<string, unknown>> | undefined) ?? {})) yield* nodes(v, `${path}.${k}`);
  if (typeof schema['items'] === 'object') yield* nodes(schema['items'] as Record<string, unknown>, `${path}[]`);
  if (typeof schema['additionalProperties'] === 'object') yield* nodes(schema['additionalProperties'] as Record<string, unknown>, `${path}{}`);
}

describe('generated CRDs', () => {
  it('are up to date in charts/aviary/crds (run `node tools/crds/generate.mjs` when this fails)', () => {
    const onDisk = readdirSync(join(root, CRDS_DIR)).filter((f) => f.endsWith('.yaml')).sort();
    expect(onDisk).toEqual([...rendered.keys()].sort());
    for (const [file, text] of rendered) {
      expect(readFileSync(join(root, CRDS_DIR, file), 'utf8'), `${file} is stale`).toBe(text);
    }
  });

  it('leave the Gateway API kinds to the upstream CRDs (required, not shipped)', () => {
    expect([...rendered.keys()].filter((f) => f.includes('gateway.networking.k8s.io'))).toEqual([]);
    expect(chartKinds().length).toBe(Object.values(kinds).filter((k) => k.group !== 'gateway.networking.k8s.io').length);
  });

  it('render deterministically', () => {
    expect(renderCrds()).toEqual(rendered);
  });

  it.each(chartKinds().map((k) => [k.kind, k] as const))('%s: one CRD, all versions served, first version stored', (_kind, info) => {
    const crd = parse(rendered.get(`${info.plural}.${info.group}.yaml`)!) as {
      apiVersion: string;
      metadata: { name: string };
      spec: { group: string; names: { kind: string; plural: string }; versions: { name: string; served: boolean; storage: boolean; schema: { openAPIV3Schema: Record<string, unknown> } }[] };
    };
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.metadata.name).toBe(`${info.plural}.${info.group}`);
    expect(crd.spec.names).toMatchObject({ kind: info.kind, plural: info.plural });
    expect(crd.spec.versions.map((v) => v.name)).toEqual([...info.versions]);
    expect(crd.spec.versions.every((v) => v.served)).toBe(true);
    expect(crd.spec.versions.filter((v) => v.storage).map((v) => v.name)).toEqual([info.versions.includes('v1') ? 'v1' : info.versions[0]]);
  });

  it('schemas are structural: typed nodes, no $ref/anyOf/patternProperties, preserve-unknown-fields only for free-form values', () => {
    for (const [file, text] of rendered) {
      expect(text).not.toMatch(/\$ref|anyOf|oneOf|patternProperties|\$id|\[Kind\]|~kind/);
      const crd = parse(text) as { spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] } };
      const preserved: string[] = [];
      for (const [path, node] of nodes(crd.spec.versions[0]!.schema.openAPIV3Schema)) {
        if (node['x-kubernetes-preserve-unknown-fields'] === true) {
          preserved.push(path);
          continue;
        }
        expect(node['type'], `${file} ${path}`).toBeTypeOf('string');
        expect(node['additionalProperties'], `${file} ${path}`).not.toBe(false);
        if (node['type'] === 'object' && path !== '.metadata') {
          expect(node['properties'] !== undefined || node['additionalProperties'] !== undefined, `${file} ${path}`).toBe(true);
        }
      }
      expect(preserved, file).toEqual(['.status']);
    }
  });

  it('keeps the enums and required fields of the TypeBox schemas', () => {
    const crd = parse(rendered.get('destinationrules.networking.istio.io.yaml')!) as unknown;
    const dig = (v: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((cur, k) => (cur as Record<string | number, unknown> | undefined)?.[k], v);
    const spec = dig(crd, 'spec', 'versions', 0, 'schema', 'openAPIV3Schema', 'properties', 'spec');
    expect(dig(spec, 'required')).toEqual(['host']);
    expect(dig(spec, 'properties', 'trafficPolicy', 'properties', 'tls', 'properties', 'mode', 'enum')).toEqual(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']);
    expect(dig(spec, 'properties', 'subsets', 'items', 'properties', 'labels')).toEqual({ type: 'object', additionalProperties: { type: 'string' } });
  });
});
