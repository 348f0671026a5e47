import { JOIN_TOKEN_ISSUER, JoinTokenValidator } from '@aviary/ca';
import { citadelConfig, configFromProcess } from '@aviary/config';
import { joinTokensOr, loadKubeConfig, SecretCaStateStore, TokenReviewValidator, tokenReviewer, TrustBundleConfigMaps } from '@aviary/k8s';
import type { Logger } from '@aviary/observability';
import { runComponent } from '@aviary/runtime';
import { buildCitadel, type CitadelAdapters, type CitadelConfig } from './lib/component';

const config = configFromProcess(citadelConfig);

/** Kubernetes adapters, when any Kubernetes feature is on: TokenReview, the CA Secret, the root-cert ConfigMaps. */
function kubernetesAdapters(cfg: CitadelConfig, logger: Logger): CitadelAdapters {
  if (!cfg.tokenReview && !cfg.trustBundleConfigMaps && cfg.caSecret === '') return {};
  const kubeConfig = loadKubeConfig(cfg.kubeconfig);
  const tokenReview = cfg.tokenReview ? new TokenReviewValidator(tokenReviewer(kubeConfig)) : undefined;
  const configMaps = cfg.trustBundleConfigMaps ? new TrustBundleConfigMaps({ kubeConfig, logger: logger.child({ component: 'kubernetes' }), name: cfg.rootCertConfigMap }) : undefined;
  let started: Promise<void> | undefined;
  const [secretNs = '', secretName = ''] = cfg.caSecret.split('/');
  logger.info({ server: kubeConfig.getCurrentCluster()?.server, tokenReview: cfg.tokenReview, trustBundleConfigMaps: cfg.trustBundleConfigMaps, caSecret: cfg.caSecret }, 'kubernetes adapters on');
  return {
    ...(tokenReview === undefined ? {} : { validator: (key) => joinTokensOr(new JoinTokenValidator([key]), tokenReview, JOIN_TOKEN_ISSUER) }),
    ...(cfg.caSecret === '' ? {} : { stateStore: new SecretCaStateStore(kubeConfig, secretNs, secretName) }),
    ...(configMaps === undefined
      ? {}
      : {
          bundleSink: {
            publish: async (bundle) => {
              started ??= configMaps.start();
              await started;
              await configMaps.setRoots(bundle.roots);
            },
          },
          stop: () => configMaps.stop(),
        }),
  };
}

await runComponent({
  spec: citadelConfig,
  config,
  description: 'Certificate authority for SPIFFE workload identities (Istio CA API over gRPC and REST).',
  build: (ctx) => buildCitadel(ctx, kubernetesAdapters(ctx.config, ctx.logger)),
});
