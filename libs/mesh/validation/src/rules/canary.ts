import { type Canary } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkDuration, isDns1123Label, isDns1123Subdomain, wildcardDomainError } from './checks';

/** The shortest analysis interval: summaries come from the collector every few seconds at best. */
export const MIN_CANARY_INTERVAL_MS = 1000;
/** At most this many steps (a weight step of 1 % gives 100). */
export const MAX_CANARY_STEPS = 100;

function checkDestination(r: Report, path: string, d: { host: string; subset?: string }): void {
  if (d.host.includes('*')) r.error(key(path, 'host'), 'host must not be a wildcard');
  else {
    const err = wildcardDomainError(d.host);
    if (err !== undefined) r.error(key(path, 'host'), err);
  }
  if (d.subset !== undefined && !isDns1123Label(d.subset)) r.error(key(path, 'subset'), `subset ${JSON.stringify(d.subset)} must be a DNS-1123 label`);
}

export function validateCanary(c: Canary, r: Report): void {
  const spec = c.spec;
  const t = spec.target;
  if ((t.virtualService === undefined) === (t.httpRoute === undefined)) r.error('spec.target', 'exactly one of virtualService or httpRoute must be set');
  if (t.virtualService !== undefined && !isDns1123Subdomain(t.virtualService)) r.error('spec.target.virtualService', `invalid name ${JSON.stringify(t.virtualService)}`);
  if (t.httpRoute !== undefined && !isDns1123Subdomain(t.httpRoute)) r.error('spec.target.httpRoute', `invalid name ${JSON.stringify(t.httpRoute)}`);
  if (t.httpRoute !== undefined) {
    // A backendRef names a Service: versions are Services, not DestinationRule subsets.
    for (const side of ['stable', 'canary'] as const) {
      if (spec[side].subset !== undefined) r.error(`spec.${side}.subset`, 'an httpRoute target has no subsets: a backendRef names a Service (one Service per version); set host to that Service');
    }
  }
  if (t.namespace !== undefined && !isDns1123Label(t.namespace)) r.error('spec.target.namespace', `invalid namespace ${JSON.stringify(t.namespace)}`);
  if ((t.route === undefined) === (t.routeIndex === undefined)) r.error('spec.target', 'exactly one of route or routeIndex must be set');
  if (t.route !== undefined && t.route === '') r.error('spec.target.route', 'route name must not be empty');

  checkDestination(r, 'spec.stable', spec.stable);
  checkDestination(r, 'spec.canary', spec.canary);
  if (spec.stable.host === spec.canary.host && spec.stable.subset === spec.canary.subset) {
    r.error('spec.canary', 'canary must differ from stable (another subset or another host)');
  }

  const hasSteps = spec.steps !== undefined;
  const hasStepWeight = spec.stepWeight !== undefined || spec.maxWeight !== undefined;
  if (hasSteps === hasStepWeight) r.error('spec', 'exactly one of steps or stepWeight (with maxWeight) must be set');
  if (spec.steps !== undefined) {
    if (spec.steps.length === 0) r.error('spec.steps', 'at least one step is required');
    if (spec.steps.length > MAX_CANARY_STEPS) r.error('spec.steps', `at most ${MAX_CANARY_STEPS} steps are allowed`);
    let previous = 0;
    spec.steps.forEach((s, i) => {
      const p = idx('spec.steps', i);
      if (s.weight < 1 || s.weight > 100) r.error(key(p, 'weight'), `weight ${s.weight} must be in the range [1, 100]`);
      else if (s.weight <= previous) r.error(key(p, 'weight'), `weight ${s.weight} must be greater than the previous step's (${previous})`);
      previous = Math.max(previous, s.weight);
    });
  }
  if (hasStepWeight) {
    if (spec.stepWeight === undefined) r.error('spec.stepWeight', 'stepWeight is required with maxWeight');
    else if (spec.stepWeight < 1 || spec.stepWeight > 100) r.error('spec.stepWeight', `stepWeight ${spec.stepWeight} must be in the range [1, 100]`);
    if (spec.maxWeight === undefined) r.error('spec.maxWeight', 'maxWeight is required with stepWeight');
    else if (spec.maxWeight < 1 || spec.maxWeight > 100) r.error('spec.maxWeight', `maxWeight ${spec.maxWeight} must be in the range [1, 100]`);
    else if (spec.stepWeight !== undefined && spec.stepWeight > spec.maxWeight) r.error('spec.stepWeight', `stepWeight ${spec.stepWeight} must not exceed maxWeight (${spec.maxWeight})`);
  }

  const a = spec.analysis;
  if (a !== undefined) {
    const interval = checkDuration(r, 'spec.analysis.interval', a.interval, { min: MIN_CANARY_INTERVAL_MS });
    const maxAge = checkDuration(r, 'spec.analysis.maxDataAge', a.maxDataAge, { min: MIN_CANARY_INTERVAL_MS });
    if (interval !== undefined && maxAge !== undefined && maxAge < interval) r.error('spec.analysis.maxDataAge', 'maxDataAge must be at least the analysis interval');
    if (a.successRate !== undefined && !(a.successRate >= 0 && a.successRate <= 100)) r.error('spec.analysis.successRate', `successRate ${a.successRate} must be a percentage in [0, 100]`);
    if (a.p99LatencyMs !== undefined && !(a.p99LatencyMs > 0)) r.error('spec.analysis.p99LatencyMs', `p99LatencyMs ${a.p99LatencyMs} must be greater than 0`);
    if (a.failedChecksLimit !== undefined && a.failedChecksLimit < 1) r.error('spec.analysis.failedChecksLimit', 'failedChecksLimit must be at least 1');
    const cmp = a.compareToStable;
    if (cmp !== undefined) {
      if (cmp.maxSuccessRateDrop === undefined && cmp.maxLatencyRatio === undefined) r.error('spec.analysis.compareToStable', 'set maxSuccessRateDrop, maxLatencyRatio or both');
      if (cmp.maxSuccessRateDrop !== undefined && !(cmp.maxSuccessRateDrop >= 0 && cmp.maxSuccessRateDrop <= 100)) {
        r.error('spec.analysis.compareToStable.maxSuccessRateDrop', `maxSuccessRateDrop ${cmp.maxSuccessRateDrop} must be in [0, 100] percentage points`);
      }
      if (cmp.maxLatencyRatio !== undefined && !(cmp.maxLatencyRatio >= 1)) r.error('spec.analysis.compareToStable.maxLatencyRatio', `maxLatencyRatio ${cmp.maxLatencyRatio} must be at least 1`);
    }
  }
  if (a?.successRate === undefined && a?.p99LatencyMs === undefined && a?.compareToStable === undefined) {
    r.warn('spec.analysis', 'no gate is set (successRate, p99LatencyMs or compareToStable): every step passes once it has minRequests');
  }
}
