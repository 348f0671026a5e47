import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { root } from '../support/mesh';
import { AppProcess } from '../support/processes';

// The built CLI (dist/tools/cli/main.js) against the built pilot and a real nats-server: the
// exit codes, stdout and stderr a user sees.
const token = 'e2e-token';
const dir = mkdtempSync(join(tmpdir(), 'aviary-e2e-cli-'));
let nats: NatsServer;
let pilot: AppProcess;
let pilotUrl: string;

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

interface Run {
  code: number | null;
  out: string[];
  err: string;
}

/** `aviary ARGS` with the pilot URL and token as flags (or as `env`), in a directory with no .aviary/. */
function aviary(args: string[], opts: { env?: Record<string, string>; stdin?: string; globals?: boolean } = {}): Promise<Run> {
  const globals = opts.globals === false ? [] : ['--pilot-url', pilotUrl, '--admin-token', token];
  const child = spawn(process.execPath, [join(root, 'dist/tools/cli/main.js'), ...args, ...globals], { cwd: dir, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: out.split('\n').filter((l) => l !== ''), err });
    }),
  );
}

beforeAll(async () => {
  nats = await NatsServer.start();
  const adminPort = await freePort();
  pilot = await AppProcess.start('pilot', {
    AVIARY_NATS_URL: nats.url,
    AVIARY_ADMIN_PORT: String(adminPort),
    AVIARY_XDS_PORT: String(await freePort()),
    AVIARY_ADMIN_TOKEN: token,
    AVIARY_DATA_DIR: join(dir, 'pilot-data'),
    AVIARY_LOG_LEVEL: 'info' // AppProcess waits for the 'ready' line,
  });
  pilotUrl = `http://127.0.0.1:${adminPort}`;
});

afterAll(async () => {
  await pilot?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('aviary CLI against the built pilot', () => {
  it('applies, dry-runs with a diff, gets and deletes', async () => {
    const a = await aviary(['apply', '-f', file('v1.yaml', vs([80, 20]))]);
    expect(a).toMatchObject({ code: 0, out: ['virtualservice/reviews (default) created'] });
    const d = await aviary(['apply', '--dry-run', '-f', file('v2.yaml', vs([50, 50]))]);
    expect(d).toMatchObject({ code: 0, out: ['virtualservice/reviews (default) updated (dry run)', '  spec.http[0].route[0].weight: 80 -> 50', '  spec.http[0].route[1].weight: 20 -> 50'] });
    const g = await aviary(['get', 'vs']);
    expect(g.code).toBe(0);
    expect(g.out[0]).toMatch(/^default\s+reviews\s+\d+$/);
    const y = await aviary(['get', 'vs', 'reviews', '-o', 'yaml']);
    expect(y.code).toBe(0);
    expect(y.out.join('\n')).toContain('weight: 80');
    const j = await aviary(['get', 'vs', 'reviews', '-n', 'default', '-o', 'json']);
    expect((JSON.parse(j.out.join('\n')) as { spec: { http: Array<{ route: Array<{ weight: number }> }> } }).spec.http[0]?.route[0]?.weight).toBe(80);
    const bad = await aviary(['apply', '-f', file('bad2.yaml', vs([10, -10]))]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('spec.http[0].route[1].weight');
    const del = await aviary(['delete', 'vs', 'reviews']);
    expect(del).toMatchObject({ code: 0, out: ['vs/reviews deleted'] });
    const gone = await aviary(['get', 'vs', 'reviews']);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain('404 RESOURCE_NOT_FOUND');
  });

  it('lists, gets, pauses, resumes and aborts a Canary', async () => {
    const manifests = `${vs([100, 0]).replace('  - route:', '  - name: main\n    route:')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.aviary.dev/v1alpha1
kind: Canary
metadata: {name: reviews}
spec:
  target: {virtualService: reviews, route: main}
  stable: {host: reviews.default.svc.cluster.local, subset: v1}
  canary: {host: reviews.default.svc.cluster.local, subset: v2}
  steps: [{weight: 10}, {weight: 50}]
  analysis: {interval: 10s, successRate: 99}
`;
    expect((await aviary(['apply', '-f', file('canary.yaml', manifests)])).code).toBe(0);
    // The controller starts it within a tick: 10 % to v2.
    let list: Run;
    const deadline = Date.now() + 15_000;
    do list = await aviary(['canary', 'list']);
    while (!list.out.some((l) => /Progressing\s+10%/.test(l)) && Date.now() < deadline);
    expect(list.code).toBe(0);
    expect(list.out[0]).toMatch(/^NAMESPACE\s+NAME\s+PHASE\s+WEIGHT\s+STEP\s+LAST ANALYSIS$/);
    expect(list.out[1]).toMatch(/^default\s+reviews\s+Progressing\s+10%\s+1\s+-$/);
    const vsNow = await aviary(['get', 'vs', 'reviews', '-o', 'json']);
    expect((JSON.parse(vsNow.out.join('\n')) as { spec: { http: Array<{ route: Array<{ weight: number }> }> } }).spec.http[0]?.route.map((r) => r.weight)).toEqual([90, 10]);
    expect(await aviary(['canary', 'pause', 'reviews'])).toMatchObject({ code: 0, out: ['canary/reviews (default): Paused at 10%'] });
    const again = await aviary(['canary', 'pause', 'reviews']);
    expect(again.code).toBe(1);
    expect(again.err).toContain('412 CANARY_INVALID_COMMAND');
    expect(await aviary(['canary', 'resume', 'reviews'])).toMatchObject({ code: 0, out: ['canary/reviews (default): Progressing at 10%'] });
    expect(await aviary(['canary', 'abort', 'reviews'])).toMatchObject({ code: 0, out: ['canary/reviews (default): RolledBack at 0%'] });
    const got = await aviary(['canary', 'get', 'reviews']);
    expect(got.code).toBe(0);
    expect(got.out[2]).toMatch(/^Aborted: aborted by an operator/);
    const json = await aviary(['canary', 'get', 'reviews', '-o', 'json']);
    expect(JSON.parse(json.out.join('\n'))).toMatchObject({ name: 'reviews', status: { phase: 'RolledBack', currentWeight: 0 } });
    for (const [kind, name] of [['canary', 'reviews'], ['dr', 'reviews'], ['vs', 'reviews']]) expect((await aviary(['delete', kind!, name!])).code).toBe(0);
  });

  it('reads the manifest from standard input, and the URL and token from AVIARY_* variables', async () => {
    const env = { AVIARY_PILOT_URL: pilotUrl, AVIARY_ADMIN_TOKEN: token };
    const a = await aviary(['apply', '-f', '-'], { env, stdin: vs([70, 30]), globals: false });
    expect(a).toMatchObject({ code: 0, out: ['virtualservice/reviews (default) created'] });
    const analyze = await aviary(['analyze'], { env, globals: false });
    expect(analyze.out.join('\n')).toContain('IST0101');
    expect(analyze.code).toBe(1);
    const proxies = await aviary(['proxies', '-o', 'json'], { env, globals: false });
    expect(proxies.code).toBe(0);
    expect(JSON.parse(proxies.out.join('\n'))).toHaveProperty('proxies');
    expect(await aviary(['delete', 'vs', 'reviews'], { env, globals: false })).toMatchObject({ code: 0 });
  });

  it('exits 1 on a server refusal (no token) and 2 on a usage error or a bad AVIARY_* value', async () => {
    const refused = await aviary(['apply', '-f', file('v3.yaml', vs([80, 20])), '--pilot-url', pilotUrl], { globals: false });
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^aviary: 401 /);
    const usage = await aviary(['get', 'vs', '-o', 'xml']);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("error: option '-o, --output <format>' argument 'xml' is invalid");
    const badEnv = await aviary(['get', 'vs'], { env: { AVIARY_TIMEOUT_MS: 'soon' } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.err).toContain('AVIARY_TIMEOUT_MS: must be an integer between 100 and 600000 (got "soon")');
  });

  it('reports pilot ready and the other components unreachable in `status`, exit 1', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const s = await aviary(['status', '--citadel-url', closed, '--injector-url', closed, '--telemetry-url', closed, '--gateway-url', closed, '--timeout-ms', '2000']);
    expect(s.code).toBe(1);
    expect(s.out[0]).toMatch(new RegExp(`^pilot\\s+${pilotUrl}\\s+ready$`));
    expect(s.out.slice(1).every((l) => l.endsWith(' unreachable'))).toBe(true);
  });
});
