import type { CaptureSpec } from './flags';
import { proxyOwnPorts } from './flags';

/**
 * The capture rules, as Istio's istio-iptables (REDIRECT mode) installs them, for the nat table:
 *
 *   PREROUTING ─tcp─> ISTIO_INBOUND ─(included ports minus excluded and proxy ports)─> ISTIO_IN_REDIRECT ─> :inbound
 *   OUTPUT ─tcp─> ISTIO_OUTPUT ─(included CIDRs minus excluded, not the proxy's UID/GID)─> ISTIO_REDIRECT ─> :outbound
 *
 * In ISTIO_OUTPUT, before any redirect: excluded destination ports return; 127.0.0.6 (the
 * proxy's inbound passthrough source) returns; the proxy calling its own pod on lo (not
 * 127.0.0.1) goes to ISTIO_IN_REDIRECT so inbound policy applies; other processes on lo return;
 * the proxy's UID and GID return; 127.0.0.1 returns.
 *
 * Every rule is written exactly as iptables-save prints it, so the result can be compared with
 * the kernel's table line by line. Pure and deterministic.
 */
export const captureChains = ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT'] as const;

/** The `-A` lines (iptables-save form) of one address family's nat table. */
export function natRules(spec: CaptureSpec, family: 4 | 6): string[] {
  const loopback = family === 4 ? '127.0.0.1/32' : '::1/128';
  const passthrough = family === 4 ? '127.0.0.6/32' : '::6/128';
  const rules: string[] = [
    `-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${spec.inboundCapturePort}`,
    `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${spec.outboundCapturePort}`,
  ];

  // Inbound.
  const neverInbound = [...new Set([...proxyOwnPorts, spec.inboundCapturePort, spec.outboundCapturePort, ...spec.excludeInboundPorts])].sort((a, b) => a - b);
  if (spec.includeInboundPorts === '*') {
    rules.push('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    for (const port of neverInbound) rules.push(`-A ISTIO_INBOUND -p tcp -m tcp --dport ${port} -j RETURN`);
    rules.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
  } else {
    const included = spec.includeInboundPorts.filter((p) => !neverInbound.includes(p));
    if (included.length > 0) {
      rules.push('-A PREROUTING -p tcp -j ISTIO_INBOUND');
      for (const port of included) rules.push(`-A ISTIO_INBOUND -p tcp -m tcp --dport ${port} -j ISTIO_IN_REDIRECT`);
    }
  }

  // Outbound.
  rules.push('-A OUTPUT -p tcp -j ISTIO_OUTPUT');
  for (const port of spec.excludeOutboundPorts) rules.push(`-A ISTIO_OUTPUT -p tcp -m tcp --dport ${port} -j RETURN`);
  rules.push(`-A ISTIO_OUTPUT -s ${passthrough} -o lo -j RETURN`);
  for (const owner of [`--uid-owner ${spec.proxyUid}`, `--gid-owner ${spec.proxyGid}`]) {
    rules.push(`-A ISTIO_OUTPUT ! -d ${loopback} -o lo -m owner ${owner} -j ISTIO_IN_REDIRECT`);
    rules.push(`-A ISTIO_OUTPUT -o lo -m owner ! ${owner} -j RETURN`);
    rules.push(`-A ISTIO_OUTPUT -m owner ${owner} -j RETURN`);
  }
  rules.push(`-A ISTIO_OUTPUT -d ${loopback} -j RETURN`);
  const excluded = spec.excludeOutboundIpRanges;
  if (excluded !== '*') {
    for (const cidr of excluded) if (cidr.family === family) rules.push(`-A ISTIO_OUTPUT -d ${cidr.text} -j RETURN`);
    const included = spec.includeOutboundIpRanges;
    if (included === '*') {
      rules.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
    } else {
      const mine = included.filter((c) => c.family === family);
      for (const cidr of mine) rules.push(`-A ISTIO_OUTPUT -d ${cidr.text} -j ISTIO_REDIRECT`);
      if (mine.length > 0) rules.push('-A ISTIO_OUTPUT -j RETURN');
    }
  }
  return rules;
}

/** True when an IPv6 range is given: only then are the IPv6 rules installed (as istio-iptables does). */
export function wantsIpv6(spec: CaptureSpec): boolean {
  const six = (r: CaptureSpec['includeOutboundIpRanges']) => r !== '*' && r.some((c) => c.family === 6);
  return six(spec.includeOutboundIpRanges) || six(spec.excludeOutboundIpRanges);
}

/**
 * `iptables-restore --noflush` input for the nat table. Declaring a chain creates it or flushes
 * it, so a second run replaces our chains' rules; the jumps from the built-in PREROUTING and
 * OUTPUT chains are left out when `saved` (the current `iptables-save -t nat`) already has them.
 */
export function restoreInput(rules: readonly string[], saved = ''): string {
  const present = new Set(saved.split('\n').map((l) => l.trim()));
  const builtinJump = (r: string) => r.startsWith('-A PREROUTING ') || r.startsWith('-A OUTPUT ');
  return [
    '*nat',
    ...captureChains.map((c) => `:${c} - [0:0]`),
    ...rules.filter((r) => !(builtinJump(r) && present.has(r))),
    'COMMIT',
    '',
  ].join('\n');
}

/** What `aviary-iptables` installs: IPv4 always, IPv6 only when an IPv6 range is given. */
export interface CaptureRules {
  readonly ipv4: string;
  readonly ipv6: string | undefined;
}

export function captureRules(spec: CaptureSpec, saved: { ipv4?: string; ipv6?: string } = {}): CaptureRules {
  return {
    ipv4: restoreInput(natRules(spec, 4), saved.ipv4),
    ipv6: wantsIpv6(spec) ? restoreInput(natRules(spec, 6), saved.ipv6) : undefined,
  };
}
