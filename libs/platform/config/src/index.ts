export { defineConfig, option, envName, flagName } from './spec';
export type { AppConfigSpec, ConfigOf, OptionSpec, OptionSpecs } from './spec';
export { parseConfig, renderHelp } from './load';
export type { ConfigResult } from './load';
export { configFromProcess } from './process';
export { aviaryVersion } from './version';
export type { CommonConfig } from './common';
export { commonOptions, Host, Port, PortOrZero, NatsUrl, TrustDomain, LogLevel, Millis } from './common';
export { appConfigs, citadelConfig, gatewayConfig, injectorConfig, pilotConfig, telemetryConfig } from './apps/index';
