import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';
import { boundaries, deepImportPatterns, translateFiles, translateImportPatterns } from './boundaries.mjs';

// The lint that encodes ARCHITECTURE.md: every project carries its tags, and each rule refuses a
// planted violation. Planted files are linted from text (lintText) at a path inside the project
// they pretend to belong to; nothing is written to the tree.

const root = join(import.meta.dirname, '..', '..');

interface Project {
  readonly dir: string;
  readonly name: string;
  readonly tags: readonly string[];
}

function projects(): Project[] {
  const found: Project[] = [];
  const visit = (dir: string, depth: number): void => {
    const pkg = join(root, dir, 'package.json');
    const proj = join(root, dir, 'project.json');
    if (existsSync(pkg) && dir !== '.') {
      const j = JSON.parse(readFileSync(pkg, 'utf8')) as { name: string; nx?: { tags?: string[] } };
      found.push({ dir, name: j.name, tags: j.nx?.tags ?? [] });
      return;
    }
    if (existsSync(proj)) {
      const j = JSON.parse(readFileSync(proj, 'utf8')) as { name: string; tags?: string[] };
      found.push({ dir, name: j.name, tags: j.tags ?? [] });
      return;
    }
    if (depth === 0) return;
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules' && e.name !== 'src') visit(join(dir, e.name), depth - 1);
    }
  };
  for (const top of ['apps', 'libs', 'tools']) visit(top, 2);
  visit('e2e', 0);
  return found;
}

describe('project tags', () => {
  const all = projects();

  it('finds every app, lib, tool and the e2e project', () => {
    const dirs = all.map((p) => relative(root, join(root, p.dir)));
    for (const d of ['apps/pilot', 'libs/mesh/api', 'libs/xds/server', 'libs/k8s', 'tools/cli', 'tools/crds', 'e2e']) expect(dirs).toContain(d);
  });

  it.each(all.map((p) => [p.dir, p] as const))('%s has exactly one type:* tag', (_dir, p) => {
    expect(p.tags.filter((t) => t.startsWith('type:')), `${p.dir} (${p.name}) must declare one type:* tag`).toHaveLength(1);
  });

  it('apps are type:app, tools and e2e type:tooling, wire contracts type:api', () => {
    for (const p of all) {
      if (p.dir.startsWith('apps/')) expect(p.tags, p.dir).toContain('type:app');
      if (p.dir.startsWith('tools/') || p.dir === 'e2e') expect(p.tags, p.dir).toContain('type:tooling');
    }
    const byName = new Map(all.map((p) => [p.name, p]));
    for (const api of ['@aviary/mesh-api', '@aviary/ca-api', '@aviary/xds-api']) expect(byName.get(api)?.tags).toContain('type:api');
  });

  it('the xDS pipeline carries its layer tags', () => {
    const byName = new Map(all.map((p) => [p.name, p]));
    expect(byName.get('@aviary/mesh-model')?.tags).toContain('layer:model');
    expect(byName.get('@aviary/xds-translate')?.tags).toContain('layer:translate');
    expect(byName.get('@aviary/xds-cache')?.tags).toContain('layer:serve');
    expect(byName.get('@aviary/xds-server')?.tags).toContain('layer:serve');
  });
});

describe('the lint refuses a planted violation of each rule', () => {
  // Only the architecture rules, without type information (planted files are not on disk).
  const eslint = new ESLint({
    cwd: root,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { '@nx': nx as unknown as ESLint.Plugin },
        rules: {
          '@nx/enforce-module-boundaries': ['error', boundaries(false)],
          'no-restricted-imports': ['error', { patterns: deepImportPatterns }],
        },
      },
      { files: translateFiles, rules: { 'no-restricted-imports': ['error', { patterns: translateImportPatterns }] } },
    ],
  });

  async function messages(file: string, code: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath: join(root, file) });
    return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
  }

  const planted: ReadonlyArray<readonly [rule: string, file: string, code: string, expected: RegExp]> = [
    ['type:api depends on no internal lib', 'libs/mesh/api/src/planted.ts', "import { AviaryError } from '@aviary/errors';\nexport const x = AviaryError;\n", /tagged with "type:api" cannot depend on any libs/],
    ['the serving layer does not import translation', 'libs/xds/server/src/planted.ts', "import { translate } from '@aviary/xds-translate';\nexport const x = translate;\n", /tagged with "layer:serve" can not depend on libs tagged with "layer:translate", "layer:model"/],
    ['the serving layer does not import the model', 'libs/xds/cache/src/planted.ts', "import { SnapshotBuilder } from '@aviary/mesh-model';\nexport const x = SnapshotBuilder;\n", /tagged with "layer:serve" can not depend on libs tagged with "layer:translate", "layer:model"/],
    ['translation does not import the serving layer', 'libs/xds/translate/src/planted.ts', "import { Snapshot } from '@aviary/xds-cache';\nexport const x = Snapshot;\n", /Translation returns plain resources/],
    ['the model does not import the serving layer', 'libs/mesh/model/src/planted.ts', "import { XdsServer } from '@aviary/xds-server';\nexport const x = XdsServer;\n", /tagged with "layer:model" can not depend on libs tagged with "layer:translate", "layer:serve"|tagged with "type:domain" can only depend/],
    ['domain libs import no transport', 'libs/mesh/model/src/planted.ts', "import fastify from 'fastify';\nexport const x = fastify;\n", /"type:domain" is not allowed to import "fastify"/],
    ['domain libs import no transport lib', 'libs/mesh/validation/src/planted.ts', "import { Bus } from '@aviary/events';\nexport const x = Bus;\n", /tagged with "type:domain" can only depend on libs tagged with/],
    ['libs never import apps', 'libs/telemetry/model/src/planted.ts', "import { configApi } from '../../../../apps/pilot/src/lib/config-api';\nexport const x = configApi;\n", /relative or absolute path|Imports of apps are forbidden/],
    ['tools never import an app\'s src', 'tools/bench/planted.ts', "import { configApi } from '../../apps/pilot/src/lib/config-api';\nexport const x = configApi;\n", /relative or absolute path|Imports of apps are forbidden/],
    ['e2e never imports an app\'s src', 'e2e/pilot/planted.ts', "import { configApi } from '../../apps/pilot/src/lib/config-api';\nexport const x = configApi;\n", /relative or absolute path|Imports of apps are forbidden/],
    ['apps never import each other', 'apps/citadel/src/planted.ts', "import { configApi } from '../../pilot/src/lib/config-api';\nexport const x = configApi;\n", /relative or absolute path|Imports of apps are forbidden/],
    ['a lib is imported through its index', 'apps/pilot/src/planted.ts', "import { translate } from '@aviary/xds-translate/src/translate';\nexport const x = translate;\n", /through its index/],
  ];

  it.each(planted)('%s', async (_rule, file, code, expected) => {
    const found = await messages(file, code);
    expect(found.join('\n')).toMatch(expected);
  });

  it('accepts an allowed import (control)', async () => {
    expect(await messages('libs/xds/server/src/planted.ts', "import { AviaryError } from '@aviary/errors';\nexport const x = AviaryError;\n")).toEqual([]);
  });
});
