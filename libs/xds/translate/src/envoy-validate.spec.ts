import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initXdsRoot } from '@aviary/xds-protos';
import { envoyValidate, testEnvoy } from '@aviary/testing';
import { describe, expect, it } from 'vitest';
import { staticBootstrap, type NamedResources } from './__fixtures__/static-bootstrap';

/**
 * Every golden file of an Envoy proxy (sidecar, router) runs through `envoy --mode validate`
 * (upstream Envoy 1.40, as the data plane runs it): rejected config or any warning, deprecated
 * fields included, fails. Proxyless goldens are gRPC-client config (certificate provider
 * instances, gRPC's untyped SAN matchers) that Envoy is never given. Outside CI a missing Envoy
 * skips this file; in CI it is installed (tools/setup/ensure-envoy.mjs).
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto'] });

const goldenDir = fileURLToPath(new URL('./__golden__/', import.meta.url));
const goldens = readdirSync(goldenDir)
  .filter((f) => f.endsWith('.json') && !f.includes('.proxyless'))
  .sort();
const envoy = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });

/** Envoy's warning lines without timestamps, once each, trimmed to the point. */
function distinct(lines: readonly string[]): string[] {
  return [...new Set(lines.map((l) => l.replace(/^\[[^\]]*\]\[\d+\]/, '').replace(/ This configuration will be removed.*$/, '')))];
}

describe('golden xDS files are accepted by upstream Envoy with no warning', () => {
  if (envoy.skip !== undefined) {
    it.skip(envoy.skip, () => undefined);
    return;
  }
  it('finds golden files to check', () => {
    expect(goldens.length).toBeGreaterThan(0);
  });
  for (const file of goldens) {
    it(file, () => {
      const resources = JSON.parse(readFileSync(`${goldenDir}${file}`, 'utf8')) as NamedResources;
      const kind = file.includes('.router') ? 'router' : 'sidecar';
      const result = envoyValidate(envoy.path, staticBootstrap(`${kind}~10.0.0.1~validate.default~default.svc.cluster.local`, resources));
      expect(result.ok, result.output).toBe(true);
      expect(distinct(result.warnings)).toEqual([]);
    });
  }
});
