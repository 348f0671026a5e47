import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chartTemplatePath, resolveTemplateFile } from './template-file';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

describe('resolveTemplateFile', () => {
  it('finds the chart file from the source tree and from the dist layout', () => {
    const expected = join(root, chartTemplatePath);
    expect(existsSync(expected)).toBe(true);
    expect(resolveTemplateFile('', fileURLToPath(new URL('.', import.meta.url)))).toBe(expected);
    expect(resolveTemplateFile('', join(root, 'dist', 'apps', 'injector-webhook'))).toBe(expected);
  });

  it('uses the configured path when there is one', () => {
    expect(resolveTemplateFile('/etc/aviary/injection-template.yaml')).toBe('/etc/aviary/injection-template.yaml');
  });
});
