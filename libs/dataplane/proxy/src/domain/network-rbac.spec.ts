import { describe, expect, it } from 'vitest';
import { compileListener } from './listener';
import { compileRegex } from './matchers';
import { evaluateRbac } from './rbac';

const T = 'type.googleapis.com/';
const listener = (filters: unknown[]) =>
  compileListener({ name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 9000 } }, filter_chains: [{ filters }] });
const rbac = (rules: unknown) => ({ name: 'envoy.filters.network.rbac', typed_config: { '@type': `${T}envoy.extensions.filters.network.rbac.v3.RBAC`, stat_prefix: 'tcp.', rules } });
const tcp = { name: 'tcp', typed_config: { '@type': `${T}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`, stat_prefix: 'x', cluster: 'c' } };
const conn = (sourceIp: string) => ({ header: () => undefined, path: '', principal: undefined, sourceIp, destinationPort: 9000 });

describe('network RBAC before tcp_proxy (what pilot sends for AuthorizationPolicy on TCP ports)', () => {
  it('is compiled onto the TCP proxy and decides per connection', () => {
    const l = listener([rbac({ action: 'DENY', policies: { p: { permissions: [{ destination_port: 9000 }], principals: [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] } } }), tcp]);
    const terminal = l.filterChains[0]!.terminal;
    if (terminal.kind !== 'tcp') throw new Error('expected tcp');
    expect(terminal.rbac).toHaveLength(1);
    expect(evaluateRbac(terminal.rbac[0]!, conn('10.1.2.3')).allowed).toBe(false);
    expect(evaluateRbac(terminal.rbac[0]!, conn('192.168.0.1')).allowed).toBe(true);
  });
  it('an ALLOW without policies denies every connection', () => {
    const terminal = listener([rbac({ action: 'ALLOW' }), tcp]).filterChains[0]!.terminal;
    expect(terminal.kind === 'tcp' && evaluateRbac(terminal.rbac[0]!, conn('127.0.0.1')).allowed).toBe(false);
  });
  it('is refused where it cannot be enforced (shadow rules)', () => {
    expect(() => listener([{ ...rbac(undefined), typed_config: { ...rbac(undefined).typed_config, shadow_rules: { action: 'DENY' } } }, tcp])).toThrow(/rules` only/);
  });
});

describe("RE2's leading (?i) (pilot's AuthorizationPolicy host matcher)", () => {
  it('is a case-insensitive match', () => {
    const re = compileRegex('(?i)^blocked\\.example(?::\\d+)?$', 'r');
    expect(re.test('Blocked.Example:8080')).toBe(true);
    expect(re.test('other.example')).toBe(false);
  });
});
