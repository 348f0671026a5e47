import { configFromProcess, injectorConfig } from '@aviary/config';
import { loadKubeConfig, WebhookCaBundlePatcher } from '@aviary/k8s';
import { runComponent } from '@aviary/runtime';
import { buildInjector } from './lib/component';
import { meshValidator } from './lib/validator';

const config = configFromProcess(injectorConfig);
await runComponent({
  spec: injectorConfig,
  config,
  description: 'Sidecar injection and mesh config validation webhooks.',
  build: async (ctx) => {
    const names = config.webhookConfigNames.split(',').filter((n) => n !== '');
    if (names.length === 0) return buildInjector(ctx);
    // The serving CA goes into the webhooks' caBundle at start, on every renewal, and back after a reset.
    const patcher = new WebhookCaBundlePatcher(loadKubeConfig(config.kubeconfig), names);
    const component = await buildInjector(ctx, meshValidator, async (caPem) => {
      const results = await patcher.track(caPem);
      ctx.logger.info({ webhooks: results }, 'webhook caBundle set to the serving CA');
    });
    patcher.startResync(config.webhookCaResyncMs, (err, results) => {
      if (err !== undefined) ctx.logger.warn({ err }, 'webhook caBundle check failed');
      else if (results?.some((r) => r.outcome === 'patched')) ctx.logger.warn({ webhooks: results }, 'webhook caBundle had been reset; patched it back');
    });
    return {
      ...component,
      stop: async () => {
        patcher.stop();
        await component.stop?.();
      },
    };
  },
});
