import Type from 'typebox';
import { AviaryError } from '@aviary/errors';
import { defineConfig, option, Port, type ConfigOf } from '@aviary/config';
import { parseCidr, type Cidr } from './cidr';

/**
 * The flags of `aviary-iptables`, the init container's command (the injection template passes
 * them). Parsed by @aviary/config like every app's options (flags win over AVIARY_* variables);
 * the list-valued ones are then checked by `captureSpec`.
 */
export const iptablesConfig = defineConfig({
  app: 'iptables',
  summary: "aviary-iptables: installs the sidecar's traffic capture rules (nat table) in the pod's network namespace.",
  options: {
    inboundCapturePort: option(Port, 15006, 'port the proxy listens on for captured inbound TCP'),
    outboundCapturePort: option(Port, 15001, 'port the proxy listens on for captured outbound TCP'),
    proxyUid: option(Type.Integer({ minimum: 0, maximum: 4294967294 }), 1337, "the proxy's UID: its own traffic is never captured"),
    proxyGid: option(Type.Integer({ minimum: 0, maximum: 4294967294 }), 1337, "the proxy's GID: its own traffic is never captured"),
    includeInboundPorts: option(Type.String(), '*', 'inbound TCP ports to capture, comma-separated, "*" for all, "" for none'),
    excludeInboundPorts: option(Type.String(), '', 'inbound TCP ports never captured (with "*"); the proxy ports are always excluded'),
    includeOutboundIpRanges: option(Type.String(), '*', 'destination CIDRs whose outbound TCP is captured, "*" for all, "" for none'),
    excludeOutboundIpRanges: option(Type.String(), '', 'destination CIDRs never captured'),
    excludeOutboundPorts: option(Type.String(), '', 'outbound TCP destination ports never captured'),
    dryRun: option(Type.Boolean(), false, 'print the iptables-restore input instead of applying it'),
  },
});

export type IptablesConfig = ConfigOf<typeof iptablesConfig>;

/** Ports the proxy itself listens on (admin, status, Envoy's readiness, stats); never captured inbound. */
export const proxyOwnPorts: readonly number[] = [15000, 15020, 15021, 15090];

/** What to capture, validated: the input of `captureRules`. */
export interface CaptureSpec {
  readonly inboundCapturePort: number;
  readonly outboundCapturePort: number;
  readonly proxyUid: number;
  readonly proxyGid: number;
  readonly includeInboundPorts: '*' | readonly number[];
  readonly excludeInboundPorts: readonly number[];
  readonly includeOutboundIpRanges: '*' | readonly Cidr[];
  readonly excludeOutboundIpRanges: '*' | readonly Cidr[];
  readonly excludeOutboundPorts: readonly number[];
}

function invalid(flag: string, message: string): AviaryError {
  return new AviaryError('INVALID_ARGUMENT', 'CONFIG_INVALID', `${flag}: ${message}`, { flag });
}

/** Comma-separated items, whitespace around them ignored; "" is the empty list. */
function items(flag: string, value: string): string[] {
  const trimmed = value.trim();
  if (trimmed === '') return [];
  const list = trimmed.split(',').map((s) => s.trim());
  if (list.includes('')) throw invalid(flag, `empty item in ${JSON.stringify(value)} (a comma-separated list)`);
  return list;
}

function ports(flag: string, value: string): number[] {
  const out: number[] = [];
  for (const item of items(flag, value)) {
    if (!/^[0-9]{1,5}$/.test(item) || Number(item) < 1 || Number(item) > 65535) {
      throw invalid(flag, `${JSON.stringify(item)} is not a port 1-65535 (in ${JSON.stringify(value)})`);
    }
    if (!out.includes(Number(item))) out.push(Number(item));
  }
  return out;
}

function portsOrAll(flag: string, value: string): '*' | number[] {
  return value.trim() === '*' ? '*' : ports(flag, value);
}

function rangesOrAll(flag: string, value: string): '*' | Cidr[] {
  if (value.trim() === '*') return '*';
  const out: Cidr[] = [];
  for (const item of items(flag, value)) {
    const cidr = parseCidr(item);
    if (cidr === undefined) throw invalid(flag, `${JSON.stringify(item)} is not a CIDR such as 10.0.0.0/8 or fd00::/8 (in ${JSON.stringify(value)})`);
    if (!out.some((c) => c.text === cidr.text)) out.push(cidr);
  }
  return out;
}

/** Validates the list-valued flags. Throws CONFIG_INVALID with a one-line message naming the flag. */
export function captureSpec(config: Omit<IptablesConfig, 'dryRun'>): CaptureSpec {
  return {
    inboundCapturePort: config.inboundCapturePort,
    outboundCapturePort: config.outboundCapturePort,
    proxyUid: config.proxyUid,
    proxyGid: config.proxyGid,
    includeInboundPorts: portsOrAll('--include-inbound-ports', config.includeInboundPorts),
    excludeInboundPorts: ports('--exclude-inbound-ports', config.excludeInboundPorts),
    includeOutboundIpRanges: rangesOrAll('--include-outbound-ip-ranges', config.includeOutboundIpRanges),
    excludeOutboundIpRanges: rangesOrAll('--exclude-outbound-ip-ranges', config.excludeOutboundIpRanges),
    excludeOutboundPorts: ports('--exclude-outbound-ports', config.excludeOutboundPorts),
  };
}
