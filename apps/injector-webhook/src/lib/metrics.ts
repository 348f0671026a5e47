import { Counter, Histogram, type Registry } from 'prom-client';
import type { injectReasons, skipReasons } from '@aviary/injection';

/** Outcomes of a review. Closed sets: both are metric labels. */
export const reviewResults = ['injected', 'skipped', 'allowed', 'denied', 'error'] as const;
export type ReviewResult = (typeof reviewResults)[number];

export const errorReasons = [
  'malformed-review', // not an admission.k8s.io/v1 AdmissionReview with a request.uid
  'body-too-large',
  'invalid-pod',
  'invalid-annotation',
  'name-conflict',
  'limits-exceeded',
  'internal',
] as const;

/** /inject requests that are allowed untouched without asking the policy (result "skipped"). */
export const passReasons = ['not-a-pod', 'not-create'] as const;

export const validateReasons = ['valid', 'invalid', 'delete'] as const;

export type ReviewReason =
  | (typeof injectReasons)[number]
  | (typeof skipReasons)[number]
  | (typeof errorReasons)[number]
  | (typeof passReasons)[number]
  | (typeof validateReasons)[number];

export const webhooks = ['inject', 'validate', 'preview'] as const;
export type Webhook = (typeof webhooks)[number];

export interface InjectorMetrics {
  readonly reviews: Counter<'webhook' | 'result' | 'reason'>;
  readonly duration: Histogram<'webhook'>;
}

/** aviary_injector_reviews_total{webhook,result,reason} and aviary_injector_review_duration_seconds{webhook}. */
export function injectorMetrics(registry: Registry): InjectorMetrics {
  const existing = registry.getSingleMetric('aviary_injector_reviews_total');
  if (existing !== undefined) {
    return { reviews: existing as InjectorMetrics['reviews'], duration: registry.getSingleMetric('aviary_injector_review_duration_seconds') as InjectorMetrics['duration'] };
  }
  return {
    reviews: new Counter({
      name: 'aviary_injector_reviews_total',
      help: 'Admission reviews by webhook, result and reason',
      labelNames: ['webhook', 'result', 'reason'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'aviary_injector_review_duration_seconds',
      help: 'Time to answer an admission review, from parsed body to serialized answer',
      labelNames: ['webhook'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
  };
}
