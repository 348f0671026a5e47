import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { parseConfig } from '@aviary/config';
import { captureSpec, iptablesConfig, parseCidr } from './index';

function spec(argv: readonly string[]) {
  const result = parseConfig(iptablesConfig, argv, {});
  if (result.kind !== 'config') throw new Error('unexpected --help');
  return captureSpec(result.config);
}

function errorOf(argv: readonly string[]): string {
  try {
    spec(argv);
  } catch (err) {
    if (!isAviaryError(err)) throw err;
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).not.toContain('\n');
    return err.message;
  }
  throw new Error(`accepted ${JSON.stringify(argv)}`);
}

describe('aviary-iptables flags', () => {
  it('defaults are the template defaults', () => {
    expect(spec([])).toEqual({
      inboundCapturePort: 15006,
      outboundCapturePort: 15001,
      proxyUid: 1337,
      proxyGid: 1337,
      includeInboundPorts: '*',
      excludeInboundPorts: [],
      includeOutboundIpRanges: '*',
      excludeOutboundIpRanges: [],
      excludeOutboundPorts: [],
    });
  });

  it('parses lists (spaces, duplicates, --flag=value) and CIDRs', () => {
    const s = spec(['--include-inbound-ports= 80 , 80,443', '--exclude-outbound-ip-ranges', '10.0.0.1, fd00::/8', '--dry-run']);
    expect(s.includeInboundPorts).toEqual([80, 443]);
    expect(s.excludeOutboundIpRanges).toEqual([
      { family: 4, text: '10.0.0.1/32' },
      { family: 6, text: 'fd00::/8' },
    ]);
  });

  it('--help is help', () => {
    const result = parseConfig(iptablesConfig, ['--help'], {});
    expect(result.kind).toBe('help');
    if (result.kind === 'help') expect(result.text).toContain('--include-outbound-ip-ranges');
  });

  it.each([
    [['--inbound-capture-port', '0'], '--inbound-capture-port: must be an integer between 1 and 65535'],
    [['--inbound-capture-port', 'http'], '--inbound-capture-port: must be an integer between 1 and 65535'],
    [['--outbound-capture-port', '65536'], '--outbound-capture-port: must be an integer between 1 and 65535'],
    [['--proxy-uid', '-1'], '--proxy-uid: must be an integer between 0 and 4294967294'],
    [['--proxy-gid', 'istio'], '--proxy-gid: must be an integer between 0 and 4294967294'],
    [['--include-inbound-ports', '80,http'], '--include-inbound-ports: "http" is not a port 1-65535'],
    [['--include-inbound-ports', '0'], '--include-inbound-ports: "0" is not a port 1-65535'],
    [['--include-inbound-ports', '80,,90'], '--include-inbound-ports: empty item in "80,,90"'],
    [['--exclude-inbound-ports', '*'], '--exclude-inbound-ports: "*" is not a port 1-65535'],
    [['--exclude-inbound-ports', '70000'], '--exclude-inbound-ports: "70000" is not a port 1-65535'],
    [['--exclude-outbound-ports', '22,-1'], '--exclude-outbound-ports: "-1" is not a port 1-65535'],
    [['--include-outbound-ip-ranges', '10.0.0.0/33'], '--include-outbound-ip-ranges: "10.0.0.0/33" is not a CIDR'],
    [['--include-outbound-ip-ranges', '10.0.0/8'], '--include-outbound-ip-ranges: "10.0.0/8" is not a CIDR'],
    [['--include-outbound-ip-ranges', 'example.com'], '--include-outbound-ip-ranges: "example.com" is not a CIDR'],
    [['--exclude-outbound-ip-ranges', 'fd00::/129'], '--exclude-outbound-ip-ranges: "fd00::/129" is not a CIDR'],
    [['--exclude-outbound-ip-ranges', '1::2::3'], '--exclude-outbound-ip-ranges: "1::2::3" is not a CIDR'],
    [['--exclude-outbound-ip-ranges', '10.0.0.0/08'], '--exclude-outbound-ip-ranges: "10.0.0.0/08" is not a CIDR'],
    [['--capture-everything'], 'unknown flag --capture-everything'],
    [['--proxy-uid'], 'flag --proxy-uid needs a value'],
    [['iptables'], 'unexpected argument "iptables"'],
  ])('rejects %j naming the flag', (argv, message) => {
    expect(errorOf(argv)).toContain(message);
  });
});

describe('parseCidr', () => {
  it.each([
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['192.168.1.130/25', '192.168.1.128/25'],
    ['10.0.0.1', '10.0.0.1/32'],
    ['::1', '::1/128'],
    ['::/0', '::/0'],
    ['FD00:0:0:0:0:0:0:1/8', 'fd00::/8'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1/128'],
    ['2001:0:0:1:0:0:0:0/64', '2001:0:0:1::/64'],
    ['::ffff:10.1.2.3/128', '::ffff:a01:203/128'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8/128'],
  ])('%s → %s', (input, text) => expect(parseCidr(input)?.text).toBe(text));

  it.each(['', '10.0.0.0/', '256.0.0.0/8', '10.0.0.0/-1', '1:2:3:4:5:6:7:8:9', ':::', 'fd00::/x', '1.2.3.4/32/1'])('rejects %j', (input) =>
    expect(parseCidr(input)).toBeUndefined(),
  );
});
