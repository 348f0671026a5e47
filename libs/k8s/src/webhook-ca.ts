import { AdmissionregistrationV1Api, type KubeConfig, type V1MutatingWebhookConfiguration, type V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { AviaryError } from '@aviary/errors';
import { messageOf, statusOf } from './kube-config';

export type WebhookPatchOutcome = 'patched' | 'unchanged' | 'missing';

export interface WebhookPatchResult {
  readonly kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';
  readonly name: string;
  readonly outcome: WebhookPatchOutcome;
}

type Outcome = WebhookPatchOutcome | 'forbidden';
type WebhookConfiguration = V1MutatingWebhookConfiguration | V1ValidatingWebhookConfiguration;

/** JSON-patch ops that set `webhooks[*].clientConfig.caBundle` (guarded by a resourceVersion test); empty when already set. */
export function caBundlePatch(config: WebhookConfiguration, caBundleBase64: string): object[] {
  const ops: object[] = [];
  (config.webhooks ?? []).forEach((w, i) => {
    if (w.clientConfig.caBundle === caBundleBase64) return;
    ops.push({ op: w.clientConfig.caBundle === undefined ? 'add' : 'replace', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundleBase64 });
  });
  if (ops.length === 0) return ops;
  return [{ op: 'test', path: '/metadata/resourceVersion', value: config.metadata?.resourceVersion }, ...ops];
}

/**
 * Writes the injector's serving CA into `clientConfig.caBundle` of every webhook of the named
 * Mutating/ValidatingWebhookConfigurations (Istio's webhook controller does the same), so the
 * API server trusts a serving certificate signed by citadel. A name that exists in neither kind
 * is reported `missing` (the chart may not have installed it). Retries a lost race (409/422 on
 * the resourceVersion test) a few times.
 */
export class WebhookCaBundlePatcher {
  private readonly api: AdmissionregistrationV1Api;
  private caPem: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    kc: KubeConfig,
    private readonly names: readonly string[],
  ) {
    this.api = kc.makeApiClient(AdmissionregistrationV1Api);
  }

  /**
   * Patches now and remembers the CA, so that `startResync` puts it back if something (a
   * `helm upgrade` without the value, a hand edit) resets a caBundle.
   */
  async track(caPem: string): Promise<WebhookPatchResult[]> {
    this.caPem = caPem;
    return this.patch(caPem);
  }

  /** Re-applies the tracked CA every `intervalMs` (a no-op read when nothing changed). */
  startResync(intervalMs: number, onResult: (err: unknown, results?: WebhookPatchResult[]) => void): void {
    this.stop();
    this.timer = setInterval(() => {
      if (this.caPem === undefined) return;
      this.patch(this.caPem).then(
        (results) => onResult(undefined, results),
        (err: unknown) => onResult(err),
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  async patch(caPem: string): Promise<WebhookPatchResult[]> {
    const caBundle = Buffer.from(caPem.trim() + '\n').toString('base64');
    const results: WebhookPatchResult[] = [];
    for (const name of this.names) {
      const mutating = await this.patchOne('MutatingWebhookConfiguration', name, caBundle);
      const validating = await this.patchOne('ValidatingWebhookConfiguration', name, caBundle);
      const found = (o: Outcome): o is WebhookPatchOutcome => o !== 'missing' && o !== 'forbidden';
      if (found(mutating)) results.push({ kind: 'MutatingWebhookConfiguration', name, outcome: mutating });
      if (found(validating)) results.push({ kind: 'ValidatingWebhookConfiguration', name, outcome: validating });
      if (found(mutating) || found(validating)) continue;
      if (mutating === 'forbidden' && validating === 'forbidden') {
        throw new AviaryError('PERMISSION_DENIED', 'WEBHOOK_PATCH_FORBIDDEN', `not allowed to read webhook configuration ${name} (RBAC: get/patch on that name)`);
      }
      results.push({ kind: 'MutatingWebhookConfiguration', name, outcome: 'missing' });
    }
    return results;
  }

  /** A 403 on the read counts as "not this kind": RBAC grants each name only for the kind it is. */
  private async patchOne(kind: WebhookPatchResult['kind'], name: string, caBundle: string): Promise<Outcome> {
    for (let attempt = 0; ; attempt++) {
      let current: WebhookConfiguration;
      try {
        current = kind === 'MutatingWebhookConfiguration' ? await this.api.readMutatingWebhookConfiguration({ name }) : await this.api.readValidatingWebhookConfiguration({ name });
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) return 'missing';
        if (status === 403) return 'forbidden';
        throw new AviaryError('UNAVAILABLE', 'WEBHOOK_PATCH_FAILED', `could not read ${kind} ${name}: ${messageOf(err)}`, undefined, { cause: err });
      }
      const body = caBundlePatch(current, caBundle);
      if (body.length === 0) return 'unchanged';
      try {
        if (kind === 'MutatingWebhookConfiguration') await this.api.patchMutatingWebhookConfiguration({ name, body });
        else await this.api.patchValidatingWebhookConfiguration({ name, body });
        return 'patched';
      } catch (err) {
        const status = statusOf(err);
        // A lost race fails the resourceVersion test (422) or conflicts (409): read again.
        if ((status === 409 || status === 422) && attempt < 4) continue;
        throw new AviaryError('UNAVAILABLE', 'WEBHOOK_PATCH_FAILED', `could not patch the caBundle of ${kind} ${name}: ${messageOf(err)}`, undefined, { cause: err });
      }
    }
  }
}
