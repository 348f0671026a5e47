import { type RateLimitPolicy } from '@aviary/mesh-api';
import { idx, key, type Report } from '../finding';
import { checkDuration, checkHeaderOps, checkLabels, isDns1123Label, isDns1123Subdomain } from './checks';

/** Envoy's local_ratelimit requires fill_interval >= 50ms. */
export const MIN_FILL_INTERVAL_MS = 50;

export function validateRateLimitPolicy(rl: RateLimitPolicy, r: Report): void {
  const spec = rl.spec;
  const hasSelector = spec.workloadSelector !== undefined;
  const hasRefs = (spec.targetRefs ?? []).length > 0;
  if (hasSelector === hasRefs) r.error('spec', 'exactly one of workloadSelector or targetRefs must be set');
  if (spec.workloadSelector !== undefined) checkLabels(r, 'spec.workloadSelector.labels', spec.workloadSelector.labels);
  (spec.targetRefs ?? []).forEach((ref, i) => {
    const p = idx('spec.targetRefs', i);
    if (!isDns1123Subdomain(ref.name)) r.error(key(p, 'name'), `invalid name ${JSON.stringify(ref.name)}`);
    if (ref.namespace !== undefined && !isDns1123Label(ref.namespace)) r.error(key(p, 'namespace'), `invalid namespace ${JSON.stringify(ref.namespace)}`);
  });
  if (spec.rules.length === 0) r.error('spec.rules', 'at least one rule is required');
  const names = new Set<string>();
  spec.rules.forEach((rule, i) => {
    const p = idx('spec.rules', i);
    if (!isDns1123Label(rule.name)) r.error(key(p, 'name'), `rule name ${JSON.stringify(rule.name)} must be a DNS-1123 label`);
    if (names.has(rule.name)) r.error(key(p, 'name'), `duplicate rule name ${JSON.stringify(rule.name)}`);
    names.add(rule.name);
    const tb = rule.tokenBucket;
    const bp = key(p, 'tokenBucket');
    if (tb.maxTokens < 1) r.error(key(bp, 'maxTokens'), 'maxTokens must be at least 1');
    if (tb.tokensPerFill !== undefined && (tb.tokensPerFill < 1 || tb.tokensPerFill > tb.maxTokens)) {
      r.error(key(bp, 'tokensPerFill'), `tokensPerFill must be between 1 and maxTokens (${tb.maxTokens})`);
    }
    checkDuration(r, key(bp, 'fillInterval'), tb.fillInterval, { min: MIN_FILL_INTERVAL_MS });
    if (rule.statusCode !== undefined && (rule.statusCode < 400 || rule.statusCode > 599)) r.error(key(p, 'statusCode'), 'statusCode must be in the range [400, 599]');
    checkHeaderOps(r, key(p, 'responseHeaders'), rule.responseHeaders, 'response');
  });
}
