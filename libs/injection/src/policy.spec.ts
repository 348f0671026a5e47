import { describe, expect, it } from 'vitest';
import { decideInjection, injectionValues, type InjectionDecision, type NamespaceInfo, type Pod } from './index';

const values = injectionValues();
const canary = injectionValues({ revision: 'canary', defaultRevision: false });

function pod(labels: Record<string, string> = {}, annotations: Record<string, string> = {}, hostNetwork = false): Pod {
  return { metadata: { name: 'p', labels, annotations }, spec: { containers: [{ name: 'app', image: 'app:1' }], ...(hostNetwork ? { hostNetwork } : {}) } };
}
const ns = (labels?: Record<string, string>, name = 'apps'): NamespaceInfo => (labels === undefined ? { name } : { name, labels });
const yes = (reason: string): InjectionDecision => ({ inject: true, reason }) as InjectionDecision;
const no = (reason: string): InjectionDecision => ({ inject: false, reason }) as InjectionDecision;

describe('decideInjection (Istio rules)', () => {
  const cases: [string, Pod, NamespaceInfo, InjectionDecision, typeof values?][] = [
    ['namespace istio-injection=enabled', pod(), ns({ 'istio-injection': 'enabled' }), yes('namespace-label')],
    ['namespace istio-injection=disabled', pod(), ns({ 'istio-injection': 'disabled' }), no('namespace-disabled')],
    ['namespace disabled beats pod label true', pod({ 'sidecar.istio.io/inject': 'true' }), ns({ 'istio-injection': 'disabled' }), no('namespace-disabled')],
    ['pod label false beats namespace enabled', pod({ 'sidecar.istio.io/inject': 'false' }), ns({ 'istio-injection': 'enabled' }), no('pod-opt-out')],
    ['pod annotation false beats namespace enabled', pod({}, { 'sidecar.istio.io/inject': 'false' }), ns({ 'istio-injection': 'enabled' }), no('pod-opt-out')],
    ['label wins over annotation (label true, annotation false)', pod({ 'sidecar.istio.io/inject': 'true' }, { 'sidecar.istio.io/inject': 'false' }), ns({ 'istio-injection': 'enabled' }), yes('namespace-label')],
    ['label wins over annotation (label false, annotation true)', pod({ 'sidecar.istio.io/inject': 'false' }, { 'sidecar.istio.io/inject': 'true' }), ns({ 'istio-injection': 'enabled' }), no('pod-opt-out')],
    ['YAML 1.1 truth: "yes" opts in', pod({ 'sidecar.istio.io/inject': 'yes' }), ns({}), yes('pod-label')],
    ['any other value opts out', pod({ 'sidecar.istio.io/inject': 'nope' }), ns({ 'istio-injection': 'enabled' }), no('pod-opt-out')],
    ['pod label true in unlabelled namespace', pod({ 'sidecar.istio.io/inject': 'true' }), ns({}), yes('pod-label')],
    ['pod annotation true alone does not select (Istio matches labels only)', pod({}, { 'sidecar.istio.io/inject': 'true' }), ns({}), no('namespace-not-selected')],
    ['unlabelled namespace, unlabelled pod', pod(), ns({}), no('namespace-not-selected')],
    ['enableNamespacesByDefault', pod(), ns({}), yes('namespace-default'), injectionValues({ enableNamespacesByDefault: true })],
    ['namespace istio.io/rev matches', pod(), ns({ 'istio.io/rev': 'canary' }), yes('namespace-revision'), canary],
    ['namespace istio.io/rev of another revision', pod(), ns({ 'istio.io/rev': 'stable' }), no('revision-mismatch'), canary],
    ['istio-injection=enabled belongs to the default revision', pod(), ns({ 'istio-injection': 'enabled' }), no('revision-mismatch'), canary],
    ['istio-injection wins over istio.io/rev', pod(), ns({ 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }), yes('namespace-label')],
    ['pod istio.io/rev matches in unlabelled namespace', pod({ 'istio.io/rev': 'canary' }), ns({}), yes('pod-revision'), canary],
    ['pod istio.io/rev of another revision', pod({ 'istio.io/rev': 'stable', 'sidecar.istio.io/inject': 'true' }), ns({}), no('revision-mismatch')],
    ['namespace revision wins over pod revision', pod({ 'istio.io/rev': 'canary' }), ns({ 'istio.io/rev': 'default' }), yes('namespace-revision')],
    ['pod label true is the default revision only', pod({ 'sidecar.istio.io/inject': 'true' }), ns({}), no('revision-mismatch'), canary],
    ['hostNetwork pods are never injected', pod({ 'sidecar.istio.io/inject': 'true' }, {}, true), ns({ 'istio-injection': 'enabled' }), no('host-network')],
    ['kube-system is never injected', pod({ 'sidecar.istio.io/inject': 'true' }), ns({ 'istio-injection': 'enabled' }, 'kube-system'), no('system-namespace')],
    ['kube-public is never injected', pod(), ns({ 'istio-injection': 'enabled' }, 'kube-public'), no('system-namespace')],
    ['kube-node-lease is never injected', pod(), ns({ 'istio-injection': 'enabled' }, 'kube-node-lease'), no('system-namespace')],
    ['istio-system is never injected', pod(), ns({ 'istio-injection': 'enabled' }, 'istio-system'), no('system-namespace')],
    ['namespace labels unknown: the webhook selectors chose it', pod(), ns(undefined), yes('webhook-selected')],
    ['namespace labels unknown, pod opts out', pod({}, { 'sidecar.istio.io/inject': 'false' }), ns(undefined), no('pod-opt-out')],
  ];
  for (const [name, p, n, expected, v] of cases) {
    it(name, () => expect(decideInjection(p, n, v ?? values, false)).toEqual(expected));
  }
  it('already injected pods are left alone', () => {
    expect(decideInjection(pod(), ns({ 'istio-injection': 'enabled' }), values, true)).toEqual(no('already-injected'));
  });
});
