import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bookinfo, proxies } from './__fixtures__/fixture';
import { translate } from './index';

const goldenDir = fileURLToPath(new URL('./__golden__/', import.meta.url));
const snapshot = bookinfo();

describe('xds-translate golden files (UPDATE_GOLDEN=1 rewrites them)', () => {
  for (const [name, proxy] of Object.entries(proxies)) {
    it(`translates Bookinfo for ${name}`, () => {
      const text = `${JSON.stringify(translate(proxy, snapshot), null, 2)}\n`;
      const file = `${goldenDir}bookinfo.${name}.json`;
      if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
      expect(text).toBe(readFileSync(file, 'utf8'));
    });
  }
});
