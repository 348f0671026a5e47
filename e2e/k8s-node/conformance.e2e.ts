// The upstream Gateway API conformance suite (sigs.k8s.io/gateway-api v1.6.0, its `conformance`
// Go test package, built by tools/k8s/ensure-conformance.sh) against Aviary on the real node:
// the standard CRDs applied, `helm install` of the chart (automated Gateway deployment on), the
// suite's echo backend image imported, then `conformance.test -test.run TestConformance` with
// Aviary's GatewayClass and the GATEWAY-HTTP profile's core features. Opt-in (a run takes many
// minutes): AVIARY_CONFORMANCE=1, as root. AVIARY_CONFORMANCE_RUN_TEST=<name>[,<name>…] runs
// those tests, each alone (the suite's -run-test, one suite run per name) on the one node.
// AVIARY_CONFORMANCE_TRY_FEATURES=<feature>[,…] claims more features than SUPPORTED_FEATURES for
// one run (to find out which extended features pass before claiming them). The report (YAML) and
// the per-test results go to dist/conformance/ (dist/conformance/mesh-http/ for MESH-HTTP);
// docs/gateway-api.md "Conformance" has the last numbers.
// AVIARY_CONFORMANCE_PROFILE=MESH-HTTP runs the mesh (GAMMA) profiles instead, MESH-HTTP and
// MESH-GRPC: HTTPRoutes and GRPCRoutes with a Service parent, routed by injected sidecars. Its pods run Istio's echo app
// (tools/k8s/ensure-echo-advanced.sh builds the image the suite's mesh manifests name), and every
// namespace the suite creates is labelled istio-injection=enabled (-namespace-labels, as Istio's
// own conformance runner does), so the sidecar injector meshes its pods.
//   AVIARY_CONFORMANCE=1 flock /tmp/aviary-e2e.lock npx vitest run --project e2e e2e/k8s-node/conformance.e2e.ts
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { join, relative } from 'node:path';
import { repoRoot, run } from '../k8s/cluster';
import { buildImages, canRunNode, installAviary, kubectlOk, startNode, stopNode, waitForInjector, type KubeNode } from './node';

/**
 * The suite's base manifests run CoreDNS (`registry.k8s.io/coredns/coredns:v1.12.2`, for its DNS
 * and UDP tests) and wait for every pod: the node tier's own CoreDNS binary (v1.15.0, from
 * tools/k8s/ensure-peers.sh) as a one-layer image under that name, running as root (the pod adds
 * only NET_BIND_SERVICE to bind :53; the upstream image sets a file capability instead).
 */
export const SUITE_COREDNS_IMAGE = 'registry.k8s.io/coredns/coredns:v1.12.2';

const enabled = canRunNode && process.env['AVIARY_CONFORMANCE'] === '1';
const list = (v: string | undefined): string[] => (v ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');
const runTests = list(process.env['AVIARY_CONFORMANCE_RUN_TEST']);
const tryFeatures = list(process.env['AVIARY_CONFORMANCE_TRY_FEATURES']);
const PROFILES = ['GATEWAY-HTTP', 'MESH-HTTP'] as const;
type Profile = (typeof PROFILES)[number];
const profileEnv = process.env['AVIARY_CONFORMANCE_PROFILE'] ?? 'GATEWAY-HTTP';
if (!(PROFILES as readonly string[]).includes(profileEnv)) throw new Error(`AVIARY_CONFORMANCE_PROFILE=${profileEnv}: expected one of ${PROFILES.join(', ')}`);
const profile = profileEnv as Profile;
const mesh = profile === 'MESH-HTTP';
/** The suite's profiles in this run: the mesh run also runs MESH-GRPC (its one test, MeshGRPCRouteWeight, needs nothing more). */
const suiteProfiles: readonly string[] = mesh ? ['MESH-HTTP', 'MESH-GRPC'] : [profile];
const outDir = join(repoRoot, 'dist', 'conformance', ...(mesh ? ['mesh-http'] : []));
/** The GATEWAY-HTTP profile's core features. */
export const CORE_FEATURES = ['Gateway', 'HTTPRoute', 'ReferenceGrant'] as const;
/** The extended features Aviary claims: each passed its tests in the run docs/gateway-api.md records. */
export const EXTENDED_FEATURES = [
  'GatewayAddressEmpty',
  'GatewayHTTPListenerIsolation',
  'GatewayInfrastructurePropagation',
  'GatewayPort8080',
  'HTTPRoute303RedirectStatusCode',
  'HTTPRoute307RedirectStatusCode',
  'HTTPRoute308RedirectStatusCode',
  'HTTPRouteBackendProtocolH2C',
  'HTTPRouteBackendProtocolWebSocket',
  'HTTPRouteBackendRequestHeaderModification',
  'HTTPRouteBackendTimeout',
  'HTTPRouteCORS',
  'HTTPRouteDestinationPortMatching',
  'HTTPRouteHostRewrite',
  'HTTPRouteMethodMatching',
  'HTTPRouteNamedRouteRule',
  'HTTPRouteParentRefPort',
  'HTTPRoutePathRedirect',
  'HTTPRoutePathRewrite',
  'HTTPRoutePortRedirect',
  'HTTPRouteQueryParamMatching',
  'HTTPRouteRequestMirror',
  'HTTPRouteRequestMultipleMirrors',
  'HTTPRouteRequestPercentageMirror',
  'HTTPRouteRequestTimeout',
  'HTTPRouteResponseHeaderModification',
  'HTTPRouteSchemeRedirect',
] as const;
export const SUPPORTED_FEATURES = [...CORE_FEATURES, ...EXTENDED_FEATURES] as const;
/** The MESH-HTTP and MESH-GRPC profiles' core features. */
export const MESH_CORE_FEATURES = ['Mesh', 'HTTPRoute', 'GRPCRoute'] as const;
/**
 * The extended features Aviary claims in the MESH-HTTP run (mesh ones, and the HTTPRoute ones the
 * mesh tests also need): each passed its tests in the run docs/gateway-api.md records.
 */
export const MESH_EXTENDED_FEATURES: readonly string[] = [
  'HTTPRoute303RedirectStatusCode', // MeshHTTPRoute303Redirect
  'HTTPRoute307RedirectStatusCode', // MeshHTTPRoute307Redirect
  'HTTPRoute308RedirectStatusCode', // MeshHTTPRoute308Redirect
  'HTTPRouteParentRefPort', // MeshPorts
  'HTTPRouteResponseHeaderModification', // MeshFrontend, MeshPorts, MeshConsumerRoute
  'MeshConsumerRoute',
  'MeshHTTPRouteBackendRequestHeaderModification',
  'MeshHTTPRouteNamedRouteRule',
  'MeshHTTPRouteQueryParamMatching',
  'MeshHTTPRouteRedirectPath',
  'MeshHTTPRouteRedirectPort',
  'MeshHTTPRouteRewritePath',
  'MeshHTTPRouteSchemeRedirect',
];
export const MESH_SUPPORTED_FEATURES = [...MESH_CORE_FEATURES, ...MESH_EXTENDED_FEATURES] as const;
/**
 * The suite's mesh setup waits for the pods of the base manifests' backend namespaces too, and it
 * applies those manifests only when `Gateway` is supported: the MESH-HTTP run claims Gateway and
 * skips every test outside tests/mesh (gatewayTestNames), so it runs the mesh tests only.
 */
export const MESH_SETUP_FEATURES = ['Gateway'] as const;
/** The ShortNames of the suite's tests outside tests/mesh, read from its source (`src/conformance/tests/*.go`). */
export function gatewayTestNames(testsDir: string): string[] {
  const names = readdirSync(testsDir)
    .filter((f) => f.endsWith('.go') && !f.endsWith('_test.go'))
    .flatMap((f) => [...readFileSync(join(testsDir, f), 'utf8').matchAll(/ShortName:\s*"([A-Za-z0-9]+)"/g)].map((m) => m[1]!));
  if (names.length === 0) throw new Error(`no conformance test ShortName in ${testsDir}`);
  return [...new Set(names)].sort();
}
/**
 * Each test's features (ShortName → the names in its `Features` list, `features.SupportX` → `X`),
 * read from the suite source: a test runs when all of them are claimed, so a failing test whose
 * features are all claimed is a failure of a claim, whether or not the report counts it (the
 * parallel tests run after the report is written).
 */
export function testFeatures(testsDir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of readdirSync(testsDir).filter((n) => n.endsWith('.go') && !n.endsWith('_test.go'))) {
    const src = readFileSync(join(testsDir, f), 'utf8');
    for (const m of src.matchAll(/ShortName:\s*"([A-Za-z0-9]+)"[\s\S]*?Features:\s*\[\]features\.FeatureName\{([^}]*)\}/g)) {
      out.set(m[1]!, [...m[2]!.matchAll(/features\.Support([A-Za-z0-9]+)/g)].map((x) => x[1]!));
    }
  }
  if (out.size === 0) throw new Error(`no conformance test Features in ${testsDir}`);
  return out;
}
/** The label that turns on sidecar injection for a namespace (the chart's webhook selector). */
export const MESH_NAMESPACE_LABELS = 'istio-injection=enabled';
/** Core tests per profile in suite v1.6.0: a full run must pass them all. */
const CORE_TESTS: Readonly<Record<string, number>> = { 'GATEWAY-HTTP': 37, 'MESH-HTTP': 7, 'MESH-GRPC': 2 };
const SUITE_TIMEOUT_MS = 40 * 60_000;
/** Core tests known to fail (docs/gateway-api.md "Conformance" says why): any other failure is a regression. */
export const KNOWN_FAILING: readonly string[] = [];

interface Status {
  result: string;
  failedTests?: string[];
  skippedTests?: string[];
  statistics: { Passed: number; Failed: number; Skipped: number };
}
interface Report {
  profiles?: { name: string; core?: Status; extended?: Status & { supportedFeatures?: string[]; unsupportedFeatures?: string[] } }[];
}

let node: KubeNode | undefined;
let cache = '';

/** Test name → result, from `go test -v` output (`--- PASS: TestConformance/Name (1.2s)`). */
export function parseResults(output: string): Map<string, 'PASS' | 'FAIL' | 'SKIP'> {
  const out = new Map<string, 'PASS' | 'FAIL' | 'SKIP'>();
  for (const m of output.matchAll(/^\s*--- (PASS|FAIL|SKIP): TestConformance\/([A-Za-z0-9]+)\s/gm)) out.set(m[2]!, m[1] as 'PASS' | 'FAIL' | 'SKIP');
  return out;
}

describe.skipIf(!enabled)(`Gateway API conformance v1.6.0 (${profile}) on the node`, () => {
  beforeAll(async () => {
    const ensured = await run('bash', [join(repoRoot, 'tools', 'k8s', 'ensure-conformance.sh')]);
    if (ensured.code !== 0) throw new Error(`ensure-conformance.sh failed: ${ensured.stderr}`);
    cache = ensured.stdout.trim();
    let echoAdvanced: string[] = [];
    if (mesh) {
      const echo = await run('bash', [join(repoRoot, 'tools', 'k8s', 'ensure-echo-advanced.sh')]);
      if (echo.code !== 0) throw new Error(`ensure-echo-advanced.sh failed: ${echo.stderr}`);
      echoAdvanced = [join(echo.stdout.trim(), 'echo-advanced.oci.tar')];
    }
    const images = await buildImages();
    node = await startNode();
    await node.importImages([...images.map((i) => i.file), join(cache, 'echo-basic.oci.tar'), ...echoAdvanced]);
    // The other tags the suite's manifests name for the same echo program.
    const [first, ...others] = readFileSync(join(cache, 'echo-image.txt'), 'utf8').split('\n').filter((l) => l !== '');
    for (const name of others) {
      const res = await run('ctr', ['--address', node.containerdSocket, '-n', 'k8s.io', 'images', 'tag', '--force', first!, name]);
      if (res.code !== 0) throw new Error(`ctr images tag ${name}: ${res.stderr}`);
    }
    const coredns = join(node.dir, 'images', 'suite-coredns.oci.tar');
    const built = await run('node', [join(repoRoot, 'dist', 'tools', 'images', 'static-image.js'), '--name', SUITE_COREDNS_IMAGE, '--binary', join(node.binDir, 'coredns'), '--user', '0:0', '--port', '53', '--out', coredns]);
    if (built.code !== 0) throw new Error(`static-image (CoreDNS): ${built.stderr}`);
    await node.importImages([coredns]);
    await kubectlOk(node, ['apply', '--server-side', '-f', join(cache, 'crds', 'standard-install.yaml')]);
    await installAviary(node, images, { valuesFiles: [join(repoRoot, 'e2e', 'k8s-node', 'values', mesh ? 'conformance-mesh.yaml' : 'conformance-gateway.yaml')] });
    await kubectlOk(node, ['apply', '-f', '-'], 'apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: { name: aviary }\nspec: { controllerName: aviary.dev/gateway-controller }\n');
    // The suite creates its namespaces labelled for injection and waits for their pods: the webhook must answer first.
    if (mesh) {
      await kubectlOk(node, ['apply', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata: { name: injector-probe, labels: { ${MESH_NAMESPACE_LABELS.replace('=', ': ')} } }\n`);
      await waitForInjector(node, 'injector-probe');
      await kubectlOk(node, ['delete', 'namespace', 'injector-probe', '--wait=false']);
    }
  }, 1_200_000);

  afterAll(async () => {
    if (node !== undefined && process.env['AVIARY_CONFORMANCE_KEEP'] !== '1') await stopNode(node);
  }, 300_000);

  const suite = async (report: string, runTest: string): Promise<{ code: number; output: string }> => {
    const args = [
      '-test.run',
      '^TestConformance$', // not TestConformanceOptions*: they read an options file
      '-test.v',
      '-test.timeout',
      `${SUITE_TIMEOUT_MS / 60_000}m`,
      '-gateway-class=aviary',
      `-conformance-profiles=${suiteProfiles.join(',')}`,
      `-supported-features=${[...new Set([...(mesh ? [...MESH_SETUP_FEATURES, ...MESH_SUPPORTED_FEATURES] : SUPPORTED_FEATURES), ...tryFeatures])].join(',')}`,
      ...(mesh ? [`-namespace-labels=${MESH_NAMESPACE_LABELS}`, `-skip-tests=${gatewayTestNames(join(cache, 'src', 'conformance', 'tests')).join(',')}`] : []),
      `-report-output=${report}`,
      '-organization=aviary',
      '-project=aviary',
      '-url=https://github.com/aviary/aviary',
      '-version=0.1.0',
      '-contact=aviary',
      '-cleanup-base-resources=false',
      ...(runTest === '' ? [] : [`-run-test=${runTest}`]),
    ];
    const res = await run(join(cache, 'bin', 'conformance.test'), args, { KUBECONFIG: node!.kubeconfig, NO_PROXY: '127.0.0.1,localhost,10.244.0.1,10.96.0.0/16' });
    return { code: res.code, output: `${res.stdout}\n${res.stderr}` };
  };

  it.runIf(runTests.length > 0)('runs the named tests, each alone', async () => {
    mkdirSync(outDir, { recursive: true });
    const lines: string[] = [];
    for (const name of runTests) {
      const { code, output } = await suite(join(outDir, `report-${name}.yaml`), name);
      writeFileSync(join(outDir, `output-${name}.txt`), output);
      const result = parseResults(output).get(name) ?? 'MISSING';
      lines.push(`${result} ${name}`);
      process.stderr.write(`[conformance] ${name}: ${result} (exit ${code}; ${relative(repoRoot, join(outDir, `output-${name}.txt`))})\n`);
    }
    writeFileSync(join(outDir, 'results.txt'), `${lines.join('\n')}\n`);
    expect(lines.filter((l) => !l.startsWith('PASS'))).toEqual([]);
  }, SUITE_TIMEOUT_MS + 60_000);

  it.runIf(runTests.length === 0)('runs the suite; every core test result is recorded', async () => {
    mkdirSync(outDir, { recursive: true });
    const report = join(outDir, 'report.yaml');
    const { code, output } = await suite(report, '');
    writeFileSync(join(outDir, 'output.txt'), output);
    const results = parseResults(output);
    const lines = [...results].sort(([a], [b]) => a.localeCompare(b)).map(([name, r]) => `${r} ${name}`);
    writeFileSync(join(outDir, 'results.txt'), `${lines.join('\n')}\n`);
    process.stderr.write(`[conformance] exit ${code}; ${lines.filter((l) => l.startsWith('PASS')).length} passed, ${lines.filter((l) => l.startsWith('FAIL')).length} failed, ${lines.filter((l) => l.startsWith('SKIP')).length} skipped (${relative(repoRoot, join(outDir, 'results.txt'))})\n`);
    expect(results.size, output.slice(-4000)).toBeGreaterThan(0);
    expect(existsSync(report), output.slice(-4000)).toBe(true);
    const profiles = (parse(readFileSync(report, 'utf8')) as Report).profiles ?? [];
    for (const name of suiteProfiles) {
      const reported = profiles.find((p) => p.name === name);
      const core = reported?.core;
      process.stderr.write(`[conformance] ${name} core: ${JSON.stringify(core?.statistics)} failed: ${(core?.failedTests ?? []).join(', ')}\n`);
      const extended = reported?.extended;
      if (extended !== undefined) process.stderr.write(`[conformance] ${name} extended (${(extended.supportedFeatures ?? []).join(', ')}): ${JSON.stringify(extended.statistics)} failed: ${(extended.failedTests ?? []).join(', ')}\n`);
      expect(core?.statistics.Passed, name).toBeGreaterThanOrEqual(CORE_TESTS[name]!); // every core test
      expect((core?.failedTests ?? []).filter((t) => !KNOWN_FAILING.includes(t)), name).toEqual([]);
      // Only claimed features must pass; a run that tries more reports them without failing on them.
      if (tryFeatures.length === 0) expect(extended?.failedTests ?? [], name).toEqual([]);
    }
    // The report leaves out tests of features outside the profile and failed provisional ones: in
    // the mesh run (only mesh tests, only claimed features) every test that ran must pass.
    if (mesh && tryFeatures.length === 0) expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    // Every test of claimed features only, the parallel ones the report leaves out included.
    if (!mesh && tryFeatures.length === 0) {
      const claimed = new Set<string>(SUPPORTED_FEATURES);
      const byTest = testFeatures(join(cache, 'src', 'conformance', 'tests'));
      const failedClaims = [...results].filter(([name, r]) => r === 'FAIL' && !KNOWN_FAILING.includes(name) && (byTest.get(name) ?? []).every((f) => claimed.has(f)));
      expect(failedClaims.map(([name]) => `${name} (${(byTest.get(name) ?? []).join(', ')})`)).toEqual([]);
    }
  }, SUITE_TIMEOUT_MS + 60_000);
});
