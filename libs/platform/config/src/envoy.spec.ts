import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultEnvoyPath, envoyPath, findEnvoy } from './envoy';

describe('envoyPath', () => {
  it('defaults to the pinned venv under ~/.cache/aviary-envoy', () => {
    expect(defaultEnvoyPath('/home/u')).toBe('/home/u/.cache/aviary-envoy/1.40.0/bin/envoy');
  });

  it('returns an executable override', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aviary-envoy-'));
    const bin = join(dir, 'envoy');
    writeFileSync(bin, '#!/bin/sh\n');
    chmodSync(bin, 0o755);
    expect(envoyPath(bin)).toBe(bin);
    expect(findEnvoy(bin)).toBe(bin);
  });

  it('refuses an override that is not executable, naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aviary-envoy-'));
    const file = join(dir, 'envoy');
    writeFileSync(file, 'not a program');
    expect(() => envoyPath(file)).toThrow(expect.objectContaining({ code: 'ENVOY_NOT_FOUND', message: expect.stringContaining('AVIARY_ENVOY_PATH') }));
    expect(findEnvoy(join(dir, 'missing'))).toBeUndefined();
  });
});
