export { parseCidr } from './cidr';
export type { Cidr } from './cidr';
export { iptablesConfig, captureSpec, proxyOwnPorts } from './flags';
export type { CaptureSpec, IptablesConfig } from './flags';
export { captureChains, captureRules, natRules, restoreInput, wantsIpv6 } from './rules';
export type { CaptureRules } from './rules';
