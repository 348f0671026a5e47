import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fjp, { type Operation } from 'fast-json-patch';
import { parseAllDocuments, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseInjectionTemplate, planInjection, injectionValues, type NamespaceInfo, type Pod } from './index';

const templateFile = fileURLToPath(new URL('../../../charts/aviary/charts/injector-webhook/files/injection-template.yaml', import.meta.url));
const fixturesDir = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
const goldenDir = fileURLToPath(new URL('./__golden__/', import.meta.url));
const template = parseInjectionTemplate(readFileSync(templateFile, 'utf8'));
const values = injectionValues({ proxyImage: 'aviary/gateway:0.1.0' });

function loadFixture(file: string): { pod: Pod; namespace: NamespaceInfo } {
  const docs = parseAllDocuments(readFileSync(fixturesDir + file, 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
  const pod = docs.find((d) => d['kind'] === 'Pod') as unknown as Pod;
  const ns = docs.find((d) => d['kind'] === 'Namespace') as { metadata: { name: string; labels?: Record<string, string> } } | undefined;
  const namespace: NamespaceInfo =
    ns === undefined ? { name: pod.metadata?.namespace ?? 'default' } : { name: ns.metadata.name, labels: ns.metadata.labels ?? {} };
  return { pod, namespace };
}

function apply(pod: Pod, patch: readonly unknown[]): Pod {
  // validate=true: every operation must be legal against the document (paths exist, etc.).
  return fjp.applyPatch(structuredClone(pod), structuredClone(patch) as Operation[], true, false).newDocument;
}

const fixtures = readdirSync(fixturesDir).filter((f) => f.endsWith('.yaml')).sort();

describe('injection golden files', () => {
  it('has fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(4));

  for (const file of fixtures) {
    describe(file, () => {
      const { pod, namespace } = loadFixture(file);
      const plan = planInjection(pod, namespace, template, values);
      const injected = apply(pod, plan.patch);

      it('is injected and matches the golden pod (UPDATE_GOLDEN=1 rewrites it)', () => {
        expect(plan.decision.inject).toBe(true);
        const text = stringify(injected, { lineWidth: 0 });
        const golden = goldenDir + file;
        if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(golden, text);
        expect(text).toBe(readFileSync(golden, 'utf8'));
      });

      it('preserves every container, init container, volume and security context of the pod', () => {
        const byName = new Map([...injected.spec.containers, ...(injected.spec.initContainers ?? [])].map((c) => [c.name, c]));
        for (const original of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
          const now = byName.get(original.name)!;
          const { livenessProbe: _l, readinessProbe: _r, startupProbe: _s, ...rest } = now;
          const { livenessProbe: _ol, readinessProbe: _or, startupProbe: _os, ...originalRest } = original;
          expect(rest).toEqual(originalRest);
          for (const p of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
            if (original[p] === undefined) continue;
            // Only the handler changes (an httpGet or tcpSocket probe becomes an httpGet of the proxy's /app-health/ path).
            const { httpGet: _a, tcpSocket: _t, ...probeRest } = now[p]!;
            const { httpGet: _b, tcpSocket: _ot, ...originalProbeRest } = original[p]!;
            expect(probeRest).toEqual(originalProbeRest);
          }
        }
        for (const v of pod.spec.volumes ?? []) expect(injected.spec.volumes).toContainEqual(v);
        expect(injected.spec['securityContext']).toEqual(pod.spec['securityContext']);
        for (const [k, v] of Object.entries(pod.metadata?.annotations ?? {})) expect(injected.metadata?.annotations?.[k]).toBe(v);
        for (const [k, v] of Object.entries(pod.metadata?.labels ?? {})) expect(injected.metadata?.labels?.[k]).toBe(v);
        // The pod's own init containers keep their relative order.
        const own = (pod.spec.initContainers ?? []).map((c) => c.name);
        expect((injected.spec.initContainers ?? []).map((c) => c.name).filter((n) => own.includes(n))).toEqual(own);
      });

      it('is idempotent: a second pass yields no patch', () => {
        const again = planInjection(injected, namespace, template, values);
        expect(again.decision).toEqual({ inject: false, reason: 'already-injected' });
        expect(again.patch).toEqual([]);
      });

      it('is deterministic', () => {
        expect(JSON.stringify(planInjection(pod, namespace, template, values))).toBe(JSON.stringify(plan));
      });
    });
  }
});
