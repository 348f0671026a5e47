import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMeshConfig } from './mesh-config';

const dir = mkdtempSync(join(tmpdir(), 'aviary-meshconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('loadMeshConfig (pilot boot)', () => {
  it('none when no file is configured', () => {
    expect(loadMeshConfig('')).toEqual({});
  });
  it('reads extension providers from YAML', () => {
    const p = file('ok.yaml', 'extensionProviders:\n- name: authz\n  envoyExtAuthzHttp:\n    service: ext-authz.foo.svc.cluster.local\n    port: 8000\n');
    expect(loadMeshConfig(p).extensionProviders?.[0]?.name).toBe('authz');
  });
  it('refuses a field it does not implement, with its path', () => {
    const p = file('bad.yaml', 'extensionProviders:\n- name: z\n  zipkin: { service: z, port: 9411 }\n');
    expect(() => loadMeshConfig(p)).toThrow(/extensionProviders\[0\]\.zipkin: unknown field/);
  });
  it('refuses a missing file and text that is not YAML', () => {
    expect(() => loadMeshConfig(join(dir, 'absent.yaml'))).toThrow(/cannot read mesh config/);
    expect(() => loadMeshConfig(file('broken.yaml', 'a: [1, 2'))).toThrow(/is not YAML/);
  });
});
