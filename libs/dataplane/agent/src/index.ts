export { agentNode, interceptionModeOf, parseLabels } from './node';
export type { AgentMode, AgentNode, NodeConfig, Platform } from './node';
export { envoyBootstrap, parseHostPort, XDS_CLUSTER, SDS_CLUSTER, ALS_CLUSTER } from './bootstrap';
export type { BootstrapInput, HostPort, XdsProtocol } from './bootstrap';
export { envoyPath, ENVOY_VERSION } from './envoy-path';
