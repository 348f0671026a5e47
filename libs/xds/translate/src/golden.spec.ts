import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bookinfo, featureProxies, featuresMesh, gatewayApiL4Mesh, gatewayApiL4Proxies, gatewayApiMesh, gatewayApiProxies, localMesh, localProxies, proxies } from './__fixtures__/fixture';
import { translate } from './index';

const goldenDir = fileURLToPath(new URL('./__golden__/', import.meta.url));
const meshes = [
  { mesh: 'bookinfo', snapshot: bookinfo(), proxies },
  { mesh: 'local', snapshot: localMesh(), proxies: localProxies },
  { mesh: 'features', snapshot: featuresMesh(), proxies: featureProxies },
  { mesh: 'gateway-api', snapshot: gatewayApiMesh(), proxies: gatewayApiProxies },
  { mesh: 'gateway-api-l4', snapshot: gatewayApiL4Mesh(), proxies: gatewayApiL4Proxies },
];

describe('xds-translate golden files (UPDATE_GOLDEN=1 rewrites them)', () => {
  for (const { mesh, snapshot, proxies: list } of meshes) {
    for (const [name, proxy] of Object.entries(list)) {
      it(`translates ${mesh} for ${name}`, () => {
        const text = `${JSON.stringify(translate(proxy, snapshot), null, 2)}\n`;
        const file = `${goldenDir}${mesh}.${name}.json`;
        if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
        expect(text).toBe(readFileSync(file, 'utf8'));
      });
    }
  }
});
