import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '@aviary/config';
import { cliConfig } from './config';
import { runCommand } from './program';

// Offline commands; the commands that talk to pilot run against the built pilot in
// e2e/cli/cli.e2e.ts.

const dir = mkdtempSync(join(tmpdir(), 'aviary-cli-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const vs = (weights: [number, number]) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v1}
      weight: ${weights[0]}
    - destination: {host: reviews.default.svc.cluster.local, subset: v2}
      weight: ${weights[1]}
`;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l) }, out, err };
}

function config(pilotUrl = 'http://127.0.0.1:1') {
  const r = parseConfig(cliConfig, ['--pilot-url', pilotUrl, '--admin-token', 'tok'], {});
  if (r.kind !== 'config') throw new Error('config');
  return r.config;
}

describe('aviary CLI, offline', () => {
  it('validates with the same paths as pilot and exits 1 on errors', async () => {
    const c = capture();
    expect(await runCommand(['validate', '-f', file('bad.yaml', vs([60, -30]))], config(), c.io)).toBe(1);
    expect(c.err.join('\n')).toContain('document 0 (line 1): spec.http[0].route[1].weight: weight -30 must not be negative');
    const ok = capture();
    expect(await runCommand(['validate', '-f', file('good.yaml', vs([80, 20]))], config(), ok.io)).toBe(0);
    expect(ok.out).toEqual(['1 document(s) valid']);
  });

  it('analyzes a file: a route to subsets no DestinationRule defines', async () => {
    const c = capture();
    expect(await runCommand(['analyze', '-f', file('a.yaml', vs([80, 20]))], config(), c.io)).toBe(1);
    expect(c.out.join('\n')).toContain('IST0101');
  });

  it('analyzes files with their workloads: --complete adds the checks that need every Service and Pod', async () => {
    const text = `${vs([80, 20])}---
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: web, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: ""}]
`;
    const path = file('complete.yaml', text);
    const partial = capture();
    expect(await runCommand(['analyze', '-f', path], config(), partial.io)).toBe(1);
    expect(partial.out.map((l) => l.split(' ')[0])).toEqual(['IST0106', 'IST0101', 'IST0101', 'IST0118']);
    expect(partial.out[0]).toMatch(/^IST0106 \[Error\] \(DestinationRule\/default\/reviews\) Schema validation error: spec\.subsets\[0\]\.name: /);
    const complete = capture();
    expect(await runCommand(['analyze', '-f', path, '--complete'], config(), complete.io)).toBe(1);
    // The Service provides the host: no host finding; the subsets are still undefined.
    expect(complete.out.map((l) => l.split(' ')[0])).toEqual(['IST0106', 'IST0101', 'IST0101', 'IST0118']);
    const missing = capture();
    expect(await runCommand(['analyze', '-f', file('missing.yaml', vs([80, 20])), '--complete'], config(), missing.io)).toBe(1);
    expect(missing.out.filter((l) => l.includes('Referenced host not found'))).toHaveLength(2);
  });

  it('explains an unknown command', async () => {
    const c = capture();
    expect(await runCommand(['frobnicate'], config(), c.io)).toBe(2);
    expect(c.err[0]).toContain('unknown command "frobnicate"');
  });
});
