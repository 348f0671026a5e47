import { isAviaryError } from '@aviary/errors';
import { planInjection, type InjectionHints, type InjectionPlan, type InjectionTemplate, type InjectionValues, type NamespaceInfo } from '@aviary/injection';
import type { Logger } from '@aviary/observability';
import type { InjectorMetrics, ReviewReason, ReviewResult, Webhook } from './metrics';

export interface InjectOutcome {
  readonly result: ReviewResult;
  readonly reason: ReviewReason;
  readonly plan?: InjectionPlan;
  readonly error?: unknown;
}

/** Maps the injection library's error codes to the closed set of metric reasons. */
export function errorReason(err: unknown): ReviewReason {
  if (!isAviaryError(err)) return 'internal';
  switch (err.code) {
    case 'POD_INVALID':
      return 'invalid-pod';
    case 'ANNOTATION_INVALID':
      return 'invalid-annotation';
    case 'POD_CONFLICT':
      return 'name-conflict';
    case 'INJECTION_LIMITS_EXCEEDED':
      return 'limits-exceeded';
    case 'ADMISSION_REVIEW_INVALID':
      return 'malformed-review';
    default:
      return 'internal';
  }
}

/**
 * The injection service both the webhook and the preview route use: runs the pure planner,
 * then logs and counts the decision with its reason. Never throws.
 */
export class Injector {
  constructor(
    private readonly template: InjectionTemplate,
    readonly values: InjectionValues,
    private readonly metrics: InjectorMetrics,
    private readonly logger: Logger,
  ) {}

  inject(webhook: Webhook, pod: unknown, namespace: NamespaceInfo, who: Record<string, unknown>, hints?: InjectionHints): InjectOutcome {
    let outcome: InjectOutcome;
    try {
      const plan = planInjection(pod, namespace, this.template, this.values, hints);
      outcome = { result: plan.decision.inject ? 'injected' : 'skipped', reason: plan.decision.reason, plan };
    } catch (err) {
      outcome = { result: 'error', reason: errorReason(err), error: err };
    }
    this.record(webhook, outcome.result, outcome.reason, { ...who, namespace: namespace.name }, outcome.error);
    return outcome;
  }

  /** Counts and logs one review outcome (injected/skipped at debug, errors at warn). */
  record(webhook: Webhook, result: ReviewResult, reason: ReviewReason, who: Record<string, unknown>, error?: unknown): void {
    this.metrics.reviews.inc({ webhook, result, reason });
    if (result === 'error' || result === 'denied') {
      const message = isAviaryError(error) ? error.message : error instanceof Error ? error.message : undefined;
      if (reason === 'internal') this.logger.error({ err: error, webhook, result, reason, ...who }, 'admission review failed');
      else this.logger.warn({ webhook, result, reason, message, ...who }, 'admission review refused');
    } else {
      this.logger.info({ webhook, result, reason, ...who }, 'admission review');
    }
  }
}
