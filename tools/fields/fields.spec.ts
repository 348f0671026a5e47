import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kinds } from '@aviary/mesh-api';
import { fieldRegistry, istioKinds, schemaPaths } from '@aviary/mesh-validation';
import { type TSchema } from 'typebox';
import { describe, expect, it } from 'vitest';
import { FIELDS_DOC, fieldRows, renderFieldsDoc } from './fields';

const root = join(import.meta.dirname, '../..');

describe('the Istio field table', () => {
  it('gives every schema field of the nine kinds a registry entry', () => {
    const missing = fieldRows()
      .filter((r) => r.resolved === undefined)
      .map((r) => `${r.kind} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it('has no registry entry for a field the schemas do not have', () => {
    const stale = istioKinds.flatMap((kind) => {
      const spec = (kinds[kind].schema as { properties: Record<string, TSchema> }).properties['spec']!;
      const paths = new Set(schemaPaths(spec, 'spec'));
      // `x[]` / `x{}` name the items of a list or map field `x`.
      return Object.keys(fieldRegistry[kind]).filter((k) => !paths.has(k) && !paths.has(k.replace(/(\[\]|\{\})+$/, '')) && !paths.has(k.replace(/(\[\]|\{\})+$/, '').replace(/\.$/, '')));
    });
    expect(stale).toEqual([]);
  });

  it('gives every rejected field a message, every validated-only field a reason, every translated field a note', () => {
    for (const kind of istioKinds) {
      for (const [path, rule] of Object.entries(fieldRegistry[kind])) {
        if (rule.status === 'rejected') expect(rule.refuse?.message, `${kind} ${path}`).toMatch(/not supported by Aviary yet/);
        else expect(rule.note, `${kind} ${path}`).toBeTruthy();
      }
    }
  });

  it(`is up to date in ${FIELDS_DOC} (run \`node tools/fields/generate.mjs\` when this fails)`, () => {
    expect(readFileSync(join(root, FIELDS_DOC), 'utf8')).toBe(renderFieldsDoc());
  });

  it('never calls a field silently ignored', () => {
    expect(renderFieldsDoc()).not.toMatch(/silently ignored/i);
  });

  it('is linked from the README', () => {
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain(FIELDS_DOC);
  });
});
