/**
 * Differential check of Aviary's analyzers against Istio's own (the pinned istio.io/istio build of
 * tools/istio/ensure-istiod.sh), over the scenarios in ./corpus (one per file). For each file the
 * set of (code, resource) pairs from both sides must be equal, except for the pairs allow-listed
 * below with a reason. For the codes whose message Aviary renders exactly as Istio (`sameMessage`)
 * the message is part of the key, so that two findings of one code on one resource (two missing
 * gateways, two port names) are told apart. Only codes Aviary implements are compared: Istio has
 * analyzers Aviary never will (its injector's ConfigMap, webhooks, image versions, ...).
 *
 * Two references:
 * - `istioctl analyze --use-kube=false -A` over the file. istioctl drops Services, Pods,
 *   Namespaces, Nodes and Secrets read from files and skips every analyzer that reads them
 *   (`istioctl analyze -v` lists them), so Aviary is given the same documents without the core
 *   kinds and `complete: false`.
 * - Istio's analyzers over the file with its runtime kinds kept (tools/istio/analyze-files, built
 *   by `ensure-istiod.sh --analyzer` from the same module), against Aviary with every document and
 *   `complete: true`. This is the reference for the codes that read Services, Pods and Namespaces.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeManifests } from './manifests';
import { codes } from './model';

const repoRoot = join(import.meta.dirname, '../../../../..');
const corpus = join(import.meta.dirname, 'corpus');
const files = readdirSync(corpus).filter((f) => f.endsWith('.yaml')).sort();
const aviaryCodes = new Set<string>(Object.values(codes).map((c) => c.code));

type Mode = 'istioctl' | 'runtime';

/** Codes whose messages Aviary renders with Istio's template and the same arguments. */
const sameMessage = new Set(['IST0101', 'IST0107', 'IST0108', 'IST0109', 'IST0111', 'IST0118', 'IST0127', 'IST0128', 'IST0130', 'IST0131', 'IST0134', 'IST0135', 'IST0150', 'IST0162', 'IST0174']);

function key(code: string, resource: string, message: string): string {
  return sameMessage.has(code) ? `${code} ${resource} ${message}` : `${code} ${resource}`;
}

const SKIPPED_OVER_FILES = "Istio's analyzer for this code also reads Pods, so istioctl skips it over files; Aviary's check needs no Pod";
const MATCH_GATEWAYS =
  'Aviary also checks the gateways named in http[].match[].gateways (a rule bound to a missing gateway never applies); Istio checks spec.gateways only';

/** Disagreements known and explained: mode → file → `CODE Kind/namespace/name` → reason. */
const allowed: Record<Mode, Record<string, Record<string, string>>> = {
  istioctl: {
    'ist0101-gateway-ref-forms.yaml': {
      'IST0101 VirtualService/frontend/forms Referenced gateway not found: "edge"': MATCH_GATEWAYS,
    },
    'ist0111-multiple-sidecars.yaml': {
      'IST0111 Sidecar/bookinfo/default The Sidecars [default other] in namespace "bookinfo" have no workload selector, which can lead to undefined behavior.': SKIPPED_OVER_FILES,
      'IST0111 Sidecar/bookinfo/other The Sidecars [default other] in namespace "bookinfo" have no workload selector, which can lead to undefined behavior.': SKIPPED_OVER_FILES,
    },
    'ist0145-conflicting-gateways.yaml': {
      'IST0145 Gateway/bookinfo/a': SKIPPED_OVER_FILES,
      'IST0145 Gateway/bookinfo/b': SKIPPED_OVER_FILES,
    },
  },
  runtime: {
    'ist0101-gateway-ref-forms.yaml': {
      'IST0101 VirtualService/frontend/forms Referenced gateway not found: "edge"': MATCH_GATEWAYS,
    },
    'ist0106-invalid-resources.yaml': {
      'IST0174 DestinationRule/bookinfo/reviews The host reviews defined in the DestinationRule does not match any services in the mesh.':
        'Aviary leaves a resource that fails validation (IST0106) out of the cross-resource analysis, its analyzers rely on validated specs; Istio analyzes it anyway',
    },
  },
};

function istioPairs(json: string): Set<string> {
  const messages = JSON.parse(json) as { code: string; origin?: string; message: string }[];
  const pairs = new Set<string>();
  for (const m of messages) {
    if (!aviaryCodes.has(m.code)) continue;
    // origin is `Kind namespace/name` (`Kind name` when cluster-scoped).
    const [kind, rest = ''] = (m.origin ?? '').split(' ', 2) as [string, string?];
    const [namespace, name] = rest.includes('/') ? (rest.split('/', 2) as [string, string]) : ['', rest];
    pairs.add(key(m.code, `${kind}/${namespace}/${name}`, m.message));
  }
  return pairs;
}

/**
 * What Istio adds to files it analyzes (pkg/config/analysis/local/defaults.go): the default ingress
 * gateway's Pod and Service in its namespace. Aviary is given the same documents in runtime mode.
 */
const istioFileDefaults = `
apiVersion: v1
kind: Pod
metadata: { name: istio-ingressgateway-dummypod, namespace: istio-system, labels: { istio: ingressgateway } }
spec:
  containers: [{ name: istio-proxy }]
---
apiVersion: v1
kind: Service
metadata: { name: istio-ingressgateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  ports:
  - { name: http2, port: 80, targetPort: 80, protocol: TCP }
  - { name: https, port: 443, targetPort: 443, protocol: TCP }
  - { name: tcp, port: 31400, targetPort: 31400, protocol: TCP }
  - { name: tls, port: 15443, targetPort: 15443, protocol: TCP }
`;

function aviaryPairs(file: string, mode: Mode): Set<string> {
  const docs = parseAllDocuments(readFileSync(join(corpus, file), 'utf8')).map((d) => d.toJS() as unknown);
  const dropped = new Set(['Service', 'Pod', 'Namespace', 'Deployment']);
  const defaults = parseAllDocuments(istioFileDefaults).map((d) => d.toJS() as unknown);
  const input = mode === 'istioctl' ? docs.filter((d) => !dropped.has((d as { kind?: string }).kind ?? '')) : [...defaults, ...docs];
  return new Set(analyzeManifests(input, { complete: mode === 'runtime' }).map((f) => key(f.code, f.resources[0] ?? '', f.message)));
}

const tally: Record<Mode, { files: number; agreed: number; allowed: number }> = {
  istioctl: { files: 0, agreed: 0, allowed: 0 },
  runtime: { files: 0, agreed: 0, allowed: 0 },
};

function compare(mode: Mode, file: string, istio: Set<string>): void {
  const aviary = aviaryPairs(file, mode);
  const allow = allowed[mode][file] ?? {};
  const unexplained: string[] = [];
  for (const p of new Set([...istio, ...aviary])) {
    const side = istio.has(p) && aviary.has(p) ? 'both' : istio.has(p) ? 'istio only' : 'aviary only';
    if (side === 'both') tally[mode].agreed++;
    else if (allow[p] !== undefined) tally[mode].allowed++;
    else unexplained.push(`${p} (${side})`);
  }
  const stale = Object.keys(allow).filter((p) => istio.has(p) === aviary.has(p));
  tally[mode].files++;
  expect({ unexplained, stale }).toEqual({ unexplained: [], stale: [] });
}

function ensure(flag: string): string {
  return execFileSync('bash', ['tools/istio/ensure-istiod.sh', flag], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

function run(binary: string, args: string[]): string {
  const r = spawnSync(binary, args, { cwd: corpus, encoding: 'utf8', timeout: 120_000 });
  // istioctl exits non-zero when it reports findings; its JSON is the whole of stdout either way.
  if (!r.stdout.trim().startsWith('[')) throw new Error(`${binary} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const BUILD_TIMEOUT = 40 * 60_000; // a cold build of Istio on 2 shared cores

describe('analyzers vs istioctl analyze --use-kube=false', () => {
  let istioctl = '';
  beforeAll(() => {
    istioctl = ensure('--istioctl');
  }, BUILD_TIMEOUT);

  it.each(files)('%s', (file) => {
    compare('istioctl', file, istioPairs(run(istioctl, ['analyze', '--use-kube=false', '-A', '--output-threshold', 'Info', '-o', 'json', file])));
  });
});

describe("analyzers vs Istio's analyzers with runtime kinds (Services, Pods, Namespaces)", () => {
  let analyzer = '';
  beforeAll(() => {
    analyzer = ensure('--analyzer');
  }, BUILD_TIMEOUT);

  it.each(files)('%s', (file) => {
    compare('runtime', file, istioPairs(run(analyzer, [file])));
  });
});

afterAll(() => {
  for (const [mode, t] of Object.entries(tally)) console.log(`differential ${mode}: ${t.files} files, ${t.agreed} pairs agreed, ${t.allowed} allow-listed`);
});
