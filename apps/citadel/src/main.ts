import { citadelConfig, configFromProcess } from '@aviary/config';
import { runComponent } from '@aviary/runtime';
import { buildCitadel } from './lib/component';

const config = configFromProcess(citadelConfig);
await runComponent({
  spec: citadelConfig,
  config,
  description: 'Certificate authority for SPIFFE workload identities (Istio CA API over gRPC and REST).',
  build: buildCitadel,
});
