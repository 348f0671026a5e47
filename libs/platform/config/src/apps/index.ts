import { citadelConfig } from './citadel';
import { gatewayConfig } from './gateway';
import { injectorConfig } from './injector-webhook';
import { pilotConfig } from './pilot';
import { telemetryConfig } from './telemetry-collector';

export { citadelConfig, gatewayConfig, injectorConfig, pilotConfig, telemetryConfig };

/** Every app's config spec, in start order. */
export const appConfigs = [pilotConfig, citadelConfig, injectorConfig, telemetryConfig, gatewayConfig] as const;
